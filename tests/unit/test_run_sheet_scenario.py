"""The scenario's `run_sheet`: its models, the loader's cross-field checks, the schema, the plan."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine.plan import plan_offline
from chaosrunner.errors import ScenarioError
from chaosrunner.gameday.responder import Mark
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.scenario.models import MARK_NAMES, Mode, RunSheet
from chaosrunner.scenario.schema import scenario_json_schema
from tests.unit.scenario_factory import scenario_data, write_scenario

SHEET: dict[str, Any] = {
    "prerequisites": ["Everyone can open the checkout dashboard", "The pager routes to the gameday channel"],
    "go_no_go": True,
    "go_timeout": "10m",
    "injects": [
        {
            "name": "customer-report",
            "at": "5m",
            "unless": "detected",
            "audience": "responders",
            "text": "Customers report failed payments",
        },
        {"name": "hint", "at": "8m", "audience": "everyone", "text": "Look at the pool"},
    ],
}


def load_with(tmp_path: Path, sheet: dict[str, Any], **overrides: Any) -> Any:
    return load_scenario(write_scenario(tmp_path, scenario_data(run_sheet=sheet, **overrides)))


def problems_of(tmp_path: Path, sheet: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as caught:
        load_with(tmp_path, sheet)
    return [(problem.field, problem.message) for problem in caught.value.problems]


def test_a_run_sheet_loads_typed(tmp_path: Path) -> None:
    sheet = load_with(tmp_path, SHEET).run_sheet
    assert sheet.go_no_go is True
    assert sheet.go_timeout == timedelta(minutes=10)
    assert sheet.prerequisites[1] == "The pager routes to the gameday channel"
    first, second = sheet.injects
    assert (first.name, first.at, first.unless, first.audience) == (
        "customer-report",
        timedelta(minutes=5),
        "detected",
        "responders",
    )
    assert (second.unless, second.audience) == (None, "everyone")


def test_no_run_sheet_means_no_gate_and_no_injects(tmp_path: Path) -> None:
    sheet = load_scenario(write_scenario(tmp_path)).run_sheet
    assert sheet == RunSheet()
    assert (sheet.go_no_go, sheet.go_timeout, sheet.prerequisites, sheet.injects) == (
        False,
        timedelta(minutes=30),
        [],
        [],
    )


def test_the_audience_defaults_to_the_responders(tmp_path: Path) -> None:
    sheet = load_with(tmp_path, {"injects": [{"name": "a", "at": "1m", "text": "t"}]}).run_sheet
    assert sheet.injects[0].audience == "responders"


def test_every_mistake_in_the_run_sheet_is_reported_at_once(tmp_path: Path) -> None:
    broken = {
        "injects": [
            {"name": "same", "at": "1m", "text": "a", "unless": "paged"},
            {"name": "same", "at": "15m", "text": "b"},  # max_duration is 15m
        ]
    }
    assert sorted(problems_of(tmp_path, broken)) == [
        ("run_sheet.injects[0].unless", f"'paged' is not a mark; expected one of: {', '.join(MARK_NAMES)}"),
        ("run_sheet.injects[1].at", "is at or after the run's max_duration; it would never fire"),
        ("run_sheet.injects[1].name", "duplicate inject name 'same'"),
    ]


@pytest.mark.parametrize(
    ("inject", "field", "start"),
    [
        (
            {"name": "a", "at": "1m", "text": ""},
            "run_sheet.injects[0].text",
            "String should have at least 1 character",
        ),
        ({"name": "a", "at": "1m", "text": "t", "audience": "bosses"}, "run_sheet.injects[0].audience", ""),
        ({"name": "Bad Name", "at": "1m", "text": "t"}, "run_sheet.injects[0].name", ""),
        ({"name": "a", "at": 60, "text": "t"}, "run_sheet.injects[0].at", "expected a duration with a unit"),
        ({"name": "a", "text": "t"}, "run_sheet.injects[0].at", ""),
    ],
)
def test_a_malformed_inject_names_its_field(
    tmp_path: Path, inject: dict[str, Any], field: str, start: str
) -> None:
    [(found_field, message)] = problems_of(tmp_path, {"injects": [inject]})
    assert found_field == field
    assert message.startswith(start), message


def test_go_timeout_must_be_longer_than_zero(tmp_path: Path) -> None:
    assert problems_of(tmp_path, {"go_no_go": True, "go_timeout": "0s"}) == [
        ("run_sheet.go_timeout", "must be longer than zero")
    ]


def test_the_scenario_s_mark_names_are_the_team_s_marks() -> None:
    # The scenario layer cannot import gameday; this keeps its copy of the list honest.
    assert list(MARK_NAMES) == [mark.value for mark in Mark]


def test_the_schema_offers_the_marks_for_unless() -> None:
    inject = scenario_json_schema()["$defs"]["Inject"]
    assert inject["properties"]["unless"]["anyOf"][0] == {"enum": list(MARK_NAMES)}
    assert inject["required"] == ["name", "at", "text"]


def test_the_plan_shows_the_run_sheet_in_gameday_mode(tmp_path: Path) -> None:
    scenario = load_with(tmp_path, SHEET)
    plan = plan_offline(scenario, "s.yaml")
    [check] = [check for check in plan.checks if check.name == "run sheet"]
    assert check.status.value == "ok"
    assert "waits for go/no-go after preflight (aborted if none within 10m)" in check.detail
    assert plan.run_sheet is not None
    assert [inject["name"] for inject in plan.run_sheet["injects"]] == ["customer-report", "hint"]


def test_the_plan_says_an_automated_run_ignores_the_run_sheet(tmp_path: Path) -> None:
    scenario = load_with(tmp_path, SHEET)
    plan = plan_offline(scenario, "s.yaml", mode=Mode.AUTOMATED)
    [check] = [check for check in plan.checks if check.name == "run sheet"]
    assert check.status.value == "warn"
    assert check.detail.startswith("ignored in automated mode")


def test_no_run_sheet_no_plan_line(tmp_path: Path) -> None:
    plan = plan_offline(load_scenario(write_scenario(tmp_path)), "s.yaml")
    assert plan.run_sheet is None
    assert "run sheet" not in [check.name for check in plan.checks]
