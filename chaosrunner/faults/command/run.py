"""``command.run``: run a program to inject a fault and another to revert it.

For the failures no backend models - ``stress-ng``, ``tc``, a vendor's CLI, a
team's own script - and for Chaos Toolkit ``process`` actions brought over by
``chaosrunner import ctk``. It is held to the same rules as every other kind:

- **No shell.** ``inject`` and ``revert`` are argv lists, run as given; a
  scenario value never reaches ``sh -c``. (A team that wants a shell writes
  ``[sh, -c, "..."]`` and owns that choice, in plain sight in the plan.)
- **A deadline** for a foreground inject (it must exit 0 in time) and for the
  revert; past it the process group is killed and the step fails.
- **Write-ahead.** The planned revert record holds both argvs and a label;
  every process started carries the label in its environment
  (``execution.MARKER_VARIABLE``), so a revert from the planned record alone
  finds and ends what an interrupted inject started.
- **A dead-man's switch.** A background inject runs inside a holder
  (``chaosrunner.faults.holder``: own session, pid plus start time, survives
  our ``kill -9``) that ends it at ``duration + grace``. A foreground inject
  with a revert argv arms a holder too, which runs the revert argv at that
  deadline unless the engine reverted first. ``chaosrunner recover`` reverts
  from the journal like any other kind.
- **Revert** runs the revert argv (if any), then ends every process still
  carrying the label, with its process group (SIGTERM, SIGKILL after 5 s),
  then stops the holder. The revert argv may run more than once (retries,
  ``recover`` after a revert that died half-way): it must be idempotent.
- **Secrets** come by variable name (``env_from``), read when a program
  starts, never journaled; a tail of stderr is journaled, bounded and with
  those values masked.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from chaosrunner.durations import Duration, format_duration
from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults import holder
from chaosrunner.faults.base import Fault, FaultParams, FaultPlan, FaultRequest, RevertRecord, TargetRef
from chaosrunner.faults.command import execution
from chaosrunner.faults.connections import ENV_VAR_NAME
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.registry import register
from chaosrunner.faults.watchdog import UNBOUNDED_HOLD

HOLDER_MODULE = "chaosrunner.faults.command.run"
ENV_NAME = re.compile(ENV_VAR_NAME)
EARLY_EXIT_WINDOW = 0.3
"""A background inject that exits non-zero this soon failed to start the fault."""


class CommandParams(FaultParams):
    inject: list[str] = Field(
        min_length=1, description="argv run to inject the fault (no shell: each argument as given)"
    )
    revert: list[str] | None = Field(
        None,
        min_length=1,
        description="argv run to revert it; idempotent, it may run more than once. A background inject "
        "is ended on revert either way",
    )
    background: bool = Field(
        False,
        description="true: inject runs for the fault's duration and is killed with its process group "
        "on revert; false: inject must exit 0 within deadline",
    )
    deadline: Duration = Field(
        timedelta(seconds=30), description="the longest a foreground inject, and a revert, may run"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables (literal values: no secrets)"
    )
    env_from: dict[str, str] = Field(
        default_factory=dict,
        description="NAME: VARIABLE - NAME gets the value of our VARIABLE when the program starts; "
        "for secrets, never journaled",
    )
    cwd: str | None = Field(None, description="working directory; default: chaosrunner's")
    grace: Duration = Field(
        timedelta(seconds=10),
        description="the dead-man's switch ends the fault this long after its duration if chaosrunner "
        "is gone",
    )

    @field_validator("inject", "revert")
    @classmethod
    def _program_named(cls, argv: list[str] | None) -> list[str] | None:
        if argv is not None and not argv[0].strip():
            raise ValueError("the first element (the program) is empty")
        return argv

    @field_validator("env", "env_from")
    @classmethod
    def _variable_names(cls, mapping: dict[str, str]) -> dict[str, str]:
        for name in mapping:
            if not ENV_NAME.match(name) or name == execution.MARKER_VARIABLE:
                raise ValueError(f"{name!r} is not a usable environment variable name")
        return mapping

    @field_validator("env_from")
    @classmethod
    def _source_names(cls, mapping: dict[str, str]) -> dict[str, str]:
        for variable in mapping.values():
            if not ENV_NAME.match(variable):
                raise ValueError(f"{variable!r} is not an environment variable name such as API_TOKEN")
        return mapping

    @field_validator("deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be longer than zero")
        return value


def show_argv(argv: list[str]) -> str:
    """An argv as people read it in the plan (quoted like a shell would need; never run by one)."""
    return shlex.join(argv)


def _label(request: FaultRequest) -> str:
    return "command-" + re.sub(r"[^A-Za-z0-9_.-]", "-", f"{request.run_id}-{request.name}")


def _program_problem(argv: list[str], cwd: str | None) -> str | None:
    program = argv[0]
    if "/" in program:
        path = Path(cwd or ".", program) if not program.startswith("/") else Path(program)
        return None if path.is_file() else f"program {program!r} does not exist"
    return None if shutil.which(program) else f"program {program!r} is not on PATH"


@register
class CommandRun(Fault):
    kind = "command.run"
    summary = (
        "Run an argv (no shell) to inject - once with a deadline, or in the background for the fault's "
        "duration - and another to revert; a holder ends it if chaosrunner is gone."
    )
    Params = CommandParams
    Selector = None

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, CommandParams)
        if params.cwd is not None and not Path(params.cwd).is_dir():
            raise PlanRefused(f"fault {request.name!r}: cwd {params.cwd!r} is not a directory")
        for step, argv in (("inject", params.inject), ("revert", params.revert)):
            problem = argv and _program_problem(argv, params.cwd)
            if problem:
                raise PlanRefused(f"fault {request.name!r}: {step} {problem}")
        try:
            execution.secret_values(params.env_from)
        except FaultError as error:
            raise PlanRefused(f"fault {request.name!r}: {error}") from error
        hold_for = request.hold_for if request.hold_for is not None else UNBOUNDED_HOLD
        lifetime = hold_for + params.grace
        record: RevertRecord = {
            "label": _label(request),
            "inject": params.inject,
            "revert": params.revert,
            "background": params.background,
            "deadline": params.deadline.total_seconds(),
            "env": params.env,
            "env_from": params.env_from,  # variable names only; values are read when a program starts
            "cwd": params.cwd,
            "lifetime": lifetime.total_seconds(),
            "holder": None,
            "inject_result": None,
        }
        how = (
            f"run `{show_argv(params.inject)}` in the background (ended with its process group on revert)"
            if params.background
            else f"run `{show_argv(params.inject)}` (must exit 0 within {format_duration(params.deadline)})"
        )
        undo = f"revert: `{show_argv(params.revert)}`" if params.revert else "revert: nothing to run"
        return FaultPlan(
            fault=request.name,
            kind=self.kind,
            targets=[TargetRef(id=record["label"], name=show_argv(params.inject))],
            revert_record=record,
            summary=f"{how}; {undo}; dead-man's switch after {format_duration(lifetime)}",
        )

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        needs_holder = record["background"] or record["revert"]
        if needs_holder:
            deadline = time.time() + float(record["lifetime"])
            spec = {key: record[key] for key in ("label", "inject", "revert", "background", "deadline")}
            spec |= {key: record[key] for key in ("env", "env_from", "cwd")}
            started = holder.spawn(HOLDER_MODULE, spec, deadline=deadline, label=record["label"])
            record["holder"] = started.as_dict()
        if record["background"]:
            record["processes"] = [
                {"pid": p.pid, "start_ticks": p.start_ticks, "pgid": p.pgid}
                for p in execution.marked_processes(record["label"])
            ]
            return record
        result = _run_step(record, "inject")
        record["inject_result"] = result.as_dict()
        if result.timed_out or result.exit_code != 0:
            raise FaultError(f"inject {result.describe()}")
        return record

    def revert(self, record: RevertRecord) -> None:
        problems = []
        if record.get("revert"):
            result = _run_step(record, "revert")
            _save_revert_result(record["label"], result)
            if result.timed_out or result.exit_code != 0:
                problems.append(f"revert {result.describe()}")
        execution.terminate_marked(record["label"])
        for found in _holders(record):
            holder.stop(found)
        if problems:
            raise FaultError("; ".join(problems))

    def check(self, record: RevertRecord) -> bool:
        """Background: the inject is still running. Foreground: its revert has not run yet
        (the holder that would run it at the deadline is alive)."""
        if record.get("background"):
            return bool(execution.marked_processes(record["label"]))
        return any(holder.is_alive(found) for found in _holders(record))

    def outcome(self, record: RevertRecord) -> list[dict[str, Any]] | None:
        """The inject's and the revert's exit codes, times and stderr tails (bounded, masked)."""
        steps = []
        if record.get("inject_result"):
            steps.append({"step": "inject", **record["inject_result"]})
        saved = _read_revert_result(record["label"])
        if saved is not None:
            steps.append({"step": "revert", **saved})
        return steps or None


def _holders(record: RevertRecord) -> list[holder.HolderRecord]:
    """The record's holder, or (planned record only) any holder started under its label."""
    if record.get("holder"):
        return [holder.HolderRecord.from_dict(record["holder"])]
    return holder.find_by_label(record["label"])


def _run_step(record: RevertRecord, step: str) -> execution.CommandResult:
    secrets = execution.secret_values(record.get("env_from") or {})
    env = execution.command_env(record.get("env") or {}, record.get("env_from") or {}, record["label"])
    return execution.run_bounded(
        record[step], env, record.get("cwd"), float(record["deadline"]), list(secrets.values())
    )


def _result_path(label: str) -> Path:
    return holder.holder_log_dir() / f"{label}.revert.json"


def _save_revert_result(label: str, result: execution.CommandResult) -> None:
    from chaosrunner.private_files import write_private

    write_private(_result_path(label), json.dumps(result.as_dict()))


def _read_revert_result(label: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_result_path(label).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ----------------------------------------------------------------------------- the holder side


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    """Background: run the inject until told to stop or the deadline, then end its group.
    Foreground: only wait. At the deadline (nobody reverted: chaosrunner is gone) the revert
    argv runs here too - the dead-man's switch."""
    import logging

    log = logging.getLogger("chaosrunner.command")
    label = spec["label"]
    tail = None
    secrets: list[str] = []
    if spec["background"]:
        env = execution.command_env(spec["env"], spec["env_from"], label)
        process = execution.start(spec["inject"], env, spec["cwd"])
        assert process.stderr is not None
        tail = execution.TailReader(process.stderr)
        secrets = list(execution.secret_values(spec["env_from"]).values())
        with contextlib.suppress(subprocess.TimeoutExpired):
            # A program that fails at once (bad flag, missing file) is an inject that failed,
            # not a fault in place: say so before reporting ready.
            if process.wait(timeout=EARLY_EXIT_WINDOW) != 0:
                raise FaultError(
                    f"inject {spec['inject'][0]} exited {process.returncode} at once: {tail.text(secrets)}"
                )
    session.ready()
    session.wait()
    deadline_reached = not session.stopping.is_set()
    if spec["background"]:
        execution.terminate_marked(label)
        if tail is not None:
            log.info("inject's stderr tail: %s", tail.text(secrets))
    if deadline_reached and spec.get("revert"):
        log.warning("%s: deadline reached with nobody reverting; running the revert argv", label)
        result = _run_step(spec, "revert")
        _save_revert_result(label, result)
        log.info("dead-man's switch revert: %s", result.describe())
