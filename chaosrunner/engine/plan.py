"""The offline plan: what a run would do, and the safety checks that need no service.

``chaosrunner plan`` prints this (the dry run); the runner starts from it and
adds what needs the live target (resolved targets per fault). Everything here
is a pure function of the scenario and the environment variables it names.
"""

from __future__ import annotations

import os
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chaosrunner.durations import format_duration
from chaosrunner.faults.base import BlastRadiusMode
from chaosrunner.scenario.http_check import HttpSteadyStateCheck
from chaosrunner.scenario.models import Mode, RunSheet, Scenario, Severity, SteadyStateCheck

DEFAULT_UPDATE_CADENCE = {
    Severity.P1: timedelta(minutes=15),
    Severity.P2: timedelta(minutes=30),
    Severity.P3: None,
}
"""Status-update cadence by severity (incident-response practice); gamedays override it."""


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class SafetyCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    status: CheckStatus
    detail: str


class FaultWindow(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    start: str
    end: str
    blast_radius: str
    selector: dict[str, Any] | None
    params: dict[str, Any]


class OfflinePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    source: str
    mode: Mode
    settings: dict[str, Any]
    faults: list[FaultWindow]
    abort_conditions: list[dict[str, Any]]
    steady_state: list[dict[str, Any]]
    detection: dict[str, list[str]]
    mitigation: dict[str, Any] | None
    run_sheet: dict[str, Any] | None = None  # None: the scenario has none
    checks: list[SafetyCheck]

    @property
    def refused(self) -> bool:
        return any(check.status is CheckStatus.FAIL for check in self.checks)


def status_update_cadence(scenario: Scenario) -> timedelta | None:
    return scenario.gameday.status_update_every or DEFAULT_UPDATE_CADENCE[scenario.metadata.expected_severity]


def unreachable_grace(scenario: Scenario) -> timedelta:
    return max(scenario.gameday.unreachable_grace, 2 * scenario.gameday.check_interval)


def plan_offline(
    scenario: Scenario, source: str, *, allow_production: bool = False, mode: Mode | None = None
) -> OfflinePlan:
    settings = scenario.gameday
    mode = mode or settings.mode
    cadence = status_update_cadence(scenario)
    resolved_settings = {
        "target": scenario.target.model_dump(mode="json", exclude_none=True),
        "mode": mode.value,
        "max_duration": format_duration(settings.max_duration),
        "check_interval": format_duration(settings.check_interval),
        "unreachable_grace": format_duration(unreachable_grace(scenario)),
        "ttd_target": format_duration(settings.ttd_target),
        "ttm_target": format_duration(settings.ttm_target),
        "status_update_every": format_duration(cadence) if cadence else "not required",
        "steady_state_timeout": format_duration(settings.steady_state_timeout),
        "expected_severity": scenario.metadata.expected_severity.value,
    }
    faults = [
        FaultWindow(
            name=fault.name,
            kind=fault.kind,
            start=format_duration(fault.start),
            end=(
                format_duration(fault.start + fault.duration)
                if fault.duration is not None and mode is Mode.AUTOMATED
                else f"until mitigated (at most {format_duration(settings.max_duration)})"
            ),
            blast_radius=fault.blast_radius.describe(),
            selector=fault.selector.model_dump(mode="json") if fault.selector else None,
            params=fault.params.model_dump(mode="json"),
        )
        for fault in sorted(scenario.faults, key=lambda fault: fault.start)
    ]
    return OfflinePlan(
        title=scenario.metadata.title,
        source=source,
        mode=mode,
        settings=resolved_settings,
        faults=faults,
        abort_conditions=[
            condition.model_dump(mode="json", by_alias=True) for condition in scenario.abort_conditions
        ],
        steady_state=[_planned_check(check) for check in scenario.steady_state_checks],
        detection=scenario.detection.model_dump(mode="json"),
        mitigation=scenario.mitigation.model_dump(mode="json") if scenario.mitigation else None,
        run_sheet=(scenario.run_sheet.model_dump(mode="json") if scenario.run_sheet != RunSheet() else None),
        checks=offline_checks(scenario, allow_production=allow_production, mode=mode),
    )


def _planned_check(check: SteadyStateCheck | HttpSteadyStateCheck) -> dict[str, Any]:
    """A steady-state check as the plan shows it; ``rule`` says it in one line, both kinds alike.

    An HTTP check's ``header_env`` shows variable names only (its values are read when probing)."""
    return {**check.model_dump(mode="json"), "rule": check.describe()}


def command_faults_check(scenario: Scenario, add: Any) -> None:
    """Programs run on this machine: the plan names each one, and the variables they need."""
    commands = [fault for fault in scenario.faults if fault.kind.startswith("command.")]
    if not commands:
        return
    programs = "; ".join(
        f"{fault.name}: {' '.join(getattr(fault.params, 'inject', []))}" for fault in commands
    )
    add("commands", CheckStatus.OK, f"runs programs on this machine, no shell ({programs})")
    needed = {var for fault in commands for var in getattr(fault.params, "env_from", {}).values()}
    _warn_unset(needed, "env_from of command faults", add)


def http_checks_check(scenario: Scenario, add: Any) -> None:
    needed = {var for check in scenario.http_checks for var in check.http.header_env.values()}
    _warn_unset(needed, "header_env of HTTP checks", add)


def _warn_unset(needed: set[str], used_by: str, add: Any) -> None:
    missing = sorted(needed - set(os.environ))
    if missing:
        add(
            "secrets",
            CheckStatus.WARN,
            f"environment variable(s) {', '.join(missing)} ({used_by}) not set here",
        )


def offline_checks(
    scenario: Scenario, *, allow_production: bool = False, mode: Mode | None = None
) -> list[SafetyCheck]:
    """Safety rules that can be judged from the file alone."""
    checks: list[SafetyCheck] = []

    def add(name: str, status: CheckStatus, detail: str) -> None:
        checks.append(SafetyCheck(name=name, status=status, detail=detail))

    if scenario.target.production and not allow_production:
        add(
            "production guard",
            CheckStatus.FAIL,
            "target is marked production; pass --allow-production to run it",
        )
    elif scenario.target.production:
        add("production guard", CheckStatus.WARN, "production target allowed by --allow-production")
    else:
        add("production guard", CheckStatus.OK, "target is not marked production")

    unbounded = [
        fault.name
        for fault in scenario.faults
        if fault.blast_radius.mode in (BlastRadiusMode.ALL, BlastRadiusMode.PERCENT)
        and fault.blast_radius.maximum is None
        and fault.selector is not None
    ]
    if unbounded:
        add(
            "blast radius",
            CheckStatus.WARN,
            f"no maximum on {', '.join(unbounded)}: set blast_radius.maximum",
        )
    else:
        add("blast radius", CheckStatus.OK, "every fault is bounded")

    if scenario.abort_conditions:
        add(
            "abort conditions",
            CheckStatus.OK,
            f"{len(scenario.abort_conditions)} watched every "
            f"{format_duration(scenario.gameday.check_interval)}; Prometheus errors abort after "
            f"{format_duration(unreachable_grace(scenario))}",
        )
    else:
        add("abort conditions", CheckStatus.WARN, "none: only max_duration can stop this run early")

    if scenario.steady_state_checks:
        http = len(scenario.http_checks)
        add(
            "steady state",
            CheckStatus.OK,
            f"{len(scenario.steady_state_checks)} checks before injecting and after reverting"
            + (f" ({http} HTTP)" if http else ""),
        )
    else:
        add(
            "steady state",
            CheckStatus.WARN,
            "none defined: the run cannot tell whether the system recovered",
        )

    uses_postgres = any(fault.kind.startswith("postgres.") for fault in scenario.faults)
    dsn_env = scenario.target.postgres.dsn_env
    if uses_postgres and dsn_env not in os.environ:
        add(
            "secrets",
            CheckStatus.WARN,
            f"environment variable {dsn_env} (PostgreSQL DSN) is not set here",
        )
    elif uses_postgres:
        add(
            "secrets",
            CheckStatus.OK,
            f"PostgreSQL DSN read from ${dsn_env} at connect time, never stored",
        )

    command_faults_check(scenario, add)
    http_checks_check(scenario, add)
    run_sheet_check(scenario, mode or scenario.gameday.mode, add)

    if (mode or scenario.gameday.mode) is Mode.GAMEDAY:
        if scenario.mitigation is None:
            add(
                "mitigation signal",
                CheckStatus.WARN,
                "gameday mode without a mitigation SLI: only a `mitigated` mark ends a fault",
            )
        if not scenario.detection.all_alerts():
            add(
                "detection signals",
                CheckStatus.WARN,
                "no detection alerts: only a `detected` mark measures TTD",
            )
    return checks


def run_sheet_check(scenario: Scenario, mode: Mode, add: Any) -> None:
    """What the run sheet will do: the go/no-go wait and the injects, or that it is ignored."""
    sheet = scenario.run_sheet
    if sheet == RunSheet():
        return
    if mode is not Mode.GAMEDAY:
        add(
            "run sheet",
            CheckStatus.WARN,
            "ignored in automated mode: no go/no-go wait, no injects (run in gameday mode to use it)",
        )
        return
    parts = [
        (
            f"waits for go/no-go after preflight (aborted if none within {format_duration(sheet.go_timeout)})"
            if sheet.go_no_go
            else "no go/no-go wait"
        ),
        f"{len(sheet.prerequisites)} prerequisite(s)",
    ]
    parts += [
        f"inject {inject.name} at t0+{format_duration(inject.at)}"
        + (f" unless {inject.unless}" if inject.unless else "")
        + f" to {inject.audience}"
        for inject in sorted(sheet.injects, key=lambda inject: inject.at)
    ]
    add("run sheet", CheckStatus.OK, "; ".join(parts))
