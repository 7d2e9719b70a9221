from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaosrunner import __version__
from chaosrunner.cli import cli
from tests.unit.scenario_factory import scenario_data, write_scenario


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_validate_bundled_scenarios_and_library(repo: Path) -> None:
    result = run("validate", str(repo / "scenarios"), str(repo / "abort_conditions"))
    assert result.exit_code == 0, result.stderr
    assert "0 invalid" in result.stdout
    assert result.stdout.count("ok  ") >= 6


def test_validate_reports_every_bad_file_and_exits_2(tmp_path: Path) -> None:
    good = write_scenario(tmp_path, name="good.yaml")
    bad = write_scenario(tmp_path, scenario_data(gameday={"max_duration": "soon"}), name="bad.yaml")
    result = run("validate", str(good), str(bad))
    assert result.exit_code == 2
    assert f"ok  {good}" in result.stdout
    assert f"error: {bad}:" in result.stderr and "gameday.max_duration" in result.stderr
    assert "1 valid, 1 invalid" in result.stderr


def test_validate_json(tmp_path: Path) -> None:
    bad = write_scenario(tmp_path, scenario_data(gameday={"max_duration": "soon"}))
    result = run("validate", "--json", str(bad))
    assert result.exit_code == 2
    [entry] = json.loads(result.stdout)
    assert entry["valid"] is False and "gameday.max_duration" in entry["problems"][0]


def test_validate_a_missing_path_is_a_usage_error() -> None:
    result = run("validate", "/nonexistent/scenario.yaml")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_plan_prints_timeline_conditions_and_checks(tmp_path: Path) -> None:
    result = run("plan", str(write_scenario(tmp_path)))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "dry run" in out
    assert "0s -> until mitigated (at most 15m)" in out  # gameday mode holds faults
    automated = scenario_data()
    automated["gameday"]["mode"] = "automated"
    timed = run("plan", str(write_scenario(tmp_path, automated, name="automated.yaml"))).stdout
    assert "0s -> 30s" in timed and "10s -> 1m10s" in timed
    assert 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[1m]))' in out
    assert "OK    production guard" in out


def test_plan_json_is_complete(tmp_path: Path) -> None:
    result = run("plan", "--json", str(write_scenario(tmp_path)))
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert [fault["name"] for fault in plan["faults"]] == ["flag", "late-flag"]
    assert plan["abort_conditions"][1]["threshold"] == 0.2
    assert plan["settings"]["unreachable_grace"] == "2s"
    assert {check["name"] for check in plan["checks"]} >= {
        "production guard",
        "blast radius",
        "abort conditions",
    }


def test_plan_refuses_production_without_the_flag(tmp_path: Path) -> None:
    data = scenario_data(target={"prometheus": "http://127.0.0.1:19090", "production": True})
    path = write_scenario(tmp_path, data)
    refused = run("plan", str(path))
    assert refused.exit_code == 2 and "FAIL  production guard" in refused.stdout
    allowed = run("plan", "--allow-production", str(path))
    assert allowed.exit_code == 0 and "WARN  production guard" in allowed.stdout


def test_plan_of_an_invalid_file_is_exit_2_without_traceback(tmp_path: Path) -> None:
    result = run("plan", str(write_scenario(tmp_path, scenario_data(faults=[]))))
    assert result.exit_code == 2
    assert "faults: expected" in result.stderr or "faults: List should have at least 1 item" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_targets_asks_each_fault_what_it_would_hit(tmp_path: Path) -> None:
    result = run("plan", "--targets", str(write_scenario(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert "Targets (asked the live systems; nothing was touched)" in result.stdout
    listed = json.loads(run("plan", "--targets", "--json", str(write_scenario(tmp_path))).stdout)["targets"]
    assert [(fault["refused"], len(fault["targets"])) for fault in listed] == [(None, 1), (None, 1)]


def test_plan_targets_exit_2_on_a_refusal_and_3_on_an_unreachable_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrunner.errors import PlanRefused, ServiceUnreachable
    from chaosrunner.faults import inprocess

    def refuse(self: object, request: object) -> None:
        raise PlanRefused("fault 'f': the selector matched no targets")

    monkeypatch.setattr(inprocess.FlagFault, "plan", refuse)
    refused = run("plan", "--targets", str(write_scenario(tmp_path)))
    assert refused.exit_code == 2
    # Both faults are listed as refused, each with the reason the fault gave, and the command
    # ended by choosing its exit code (SystemExit), not by an exception escaping it.
    for name in ("flag", "late-flag"):
        assert f"  REFUSED  {name}: fault 'f': the selector matched no targets\n" in refused.stdout
    assert type(refused.exception) is SystemExit and refused.exception.code == 2

    def unreachable(self: object, request: object) -> None:
        raise ServiceUnreachable("dockerd at unix:///nowhere did not answer")

    monkeypatch.setattr(inprocess.FlagFault, "plan", unreachable)
    down = run("plan", "--targets", str(write_scenario(tmp_path)))
    assert down.exit_code == 3 and "UNREACHABLE  " in down.stdout and "did not answer" in down.stdout


def test_faults_catalog_documents_params() -> None:
    result = run("faults")
    assert result.exit_code == 0
    assert "inprocess.flag" in result.stdout
    assert "inject_delay  duration  default '0s'" in result.stdout
    catalog = json.loads(run("faults", "--json").stdout)
    flag = next(entry for entry in catalog if entry["kind"] == "inprocess.flag")
    assert flag["params"][0] == {
        "name": "flag",
        "type": "str",
        "required": True,
        "default": None,
        "description": "name of the in-process flag to raise",
    }


def test_schema_describes_kinds_and_library_references() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    fault = schema["$defs"]["FaultSpec"]
    assert "inprocess.flag" in fault["properties"]["kind"]["enum"]
    branch = next(b for b in fault["allOf"] if b["if"]["properties"]["kind"]["const"] == "inprocess.flag")
    assert "flag" in branch["then"]["properties"]["params"]["properties"]
    assert {"$ref": "#/$defs/ConditionReference"} in schema["properties"]["abort_conditions"]["items"][
        "anyOf"
    ]
    assert schema["$defs"]["GamedaySettings"]["properties"]["check_interval"]["default"] == "250ms"


def test_every_listed_command_loads_and_says_what_it_does() -> None:
    from chaosrunner.cli import COMMANDS

    for name, (_, summary) in COMMANDS.items():
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name and summary
    assert cli.get_command(None, "no-such-command") is None  # type: ignore[arg-type]
    listing = run("--help").stdout
    assert all(f"  {name}" in listing for name in COMMANDS)
