"""``command.run`` without running anything: params, plan, the plan's safety checks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chaosrunner.engine.plan import plan_offline
from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.command.run import CommandParams, CommandRun
from chaosrunner.faults.registry import registry
from chaosrunner.scenario.loader import load_scenario
from tests.unit.scenario_factory import scenario_data, write_scenario


def request(**params: Any) -> FaultRequest:
    return FaultRequest(
        run_id="r1",
        name="burn cpu",
        params=CommandParams.model_validate(params),
        duration=timedelta(seconds=60),
    )


def test_the_kind_is_in_the_catalog() -> None:
    assert registry.get("command.run") is CommandRun


def test_the_plan_shows_both_argvs_and_the_dead_mans_switch() -> None:
    plan = CommandRun().plan(request(inject=["sleep", "30 s"], revert=["true"], background=True))
    assert plan.summary == (
        "run `sleep '30 s'` in the background (ended with its process group on revert); "
        "revert: `true`; dead-man's switch after 1m10s"
    )
    record = plan.revert_record
    assert record["label"] == "command-r1-burn-cpu"  # in every process's environment: found after a crash
    assert record["inject"] == ["sleep", "30 s"] and record["revert"] == ["true"]
    assert record["holder"] is None and record["lifetime"] == 70.0


def test_a_foreground_inject_states_its_deadline() -> None:
    plan = CommandRun().plan(request(inject=["true"], deadline="5s"))
    assert plan.summary.startswith("run `true` (must exit 0 within 5s); revert: nothing to run")


@pytest.mark.parametrize(
    ("params", "refusal"),
    [
        (
            {"inject": ["no-such-program"]},
            "inject program 'no-such-program' is not on PATH",
        ),
        ({"inject": ["true"], "revert": ["/no/such/file"]}, "revert program '/no/such/file' does not exist"),
        ({"inject": ["true"], "cwd": "/no/such/dir"}, "cwd '/no/such/dir' is not a directory"),
        ({"inject": ["true"], "env_from": {"TOKEN": "F_UNSET_VARIABLE"}}, "F_UNSET_VARIABLE"),
    ],
)
def test_plan_refuses_what_could_not_run(
    params: dict[str, Any], refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("F_UNSET_VARIABLE", raising=False)
    with pytest.raises(PlanRefused, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        CommandRun().plan(request(**params))


def test_secrets_are_named_never_valued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F_API_TOKEN", "tok-123456")
    plan = CommandRun().plan(request(inject=["true"], env_from={"TOKEN": "F_API_TOKEN"}))
    assert plan.revert_record["env_from"] == {"TOKEN": "F_API_TOKEN"}
    assert "tok-123456" not in plan.model_dump_json()


@pytest.mark.parametrize(
    "params",
    [
        {"inject": []},
        {"inject": [""]},
        {"inject": ["true"], "revert": []},
        {"inject": ["true"], "deadline": "0s"},
        {"inject": ["true"], "env": {"BAD NAME": "x"}},
        {"inject": ["true"], "env": {"CHAOSRUNNER_COMMAND_FAULT": "spoof"}},
        {"inject": ["true"], "env_from": {"TOKEN": "not-a-variable"}},
        {"inject": "stress-ng --cpu 2"},  # a string is not an argv: there is no shell to split it
    ],
)
def test_params_refuse_what_is_not_an_argv(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CommandParams.model_validate(params)


def command_scenario(tmp_path: Path, **target: Any) -> Path:
    data = scenario_data(
        target={"prometheus": "http://127.0.0.1:19090", **target},
        faults=[
            {
                "name": "burn",
                "kind": "command.run",
                "params": {"inject": ["sleep", "5"], "background": True},
                "duration": "30s",
            }
        ],
    )
    return write_scenario(tmp_path, data)


def test_a_production_target_refuses_command_faults_unless_allowed(tmp_path: Path) -> None:
    scenario = load_scenario(command_scenario(tmp_path, production=True))
    refused = plan_offline(scenario, "s.yaml")
    assert refused.refused
    assert any(c.name == "production guard" and c.status.value == "fail" for c in refused.checks)
    allowed = plan_offline(scenario, "s.yaml", allow_production=True)
    assert not allowed.refused


def test_the_plan_names_the_programs_it_will_run(tmp_path: Path) -> None:
    plan = plan_offline(load_scenario(command_scenario(tmp_path)), "s.yaml")
    commands = next(check for check in plan.checks if check.name == "commands")
    assert commands.detail == "runs programs on this machine, no shell (burn: sleep 5)"
    assert plan.faults[0].params["inject"] == ["sleep", "5"]
