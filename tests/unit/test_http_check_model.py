"""HTTP steady-state checks in the scenario: the models, the loader, the plan, and ``judge``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine.plan import plan_offline
from chaosrunner.errors import ScenarioError
from chaosrunner.scenario.http_check import HttpProbe, HttpSteadyStateCheck, judge
from chaosrunner.scenario.loader import load_scenario, scenario_from_data
from chaosrunner.scenario.models import Scenario, SteadyStateCheck
from chaosrunner.scenario.schema import scenario_json_schema
from tests.unit.scenario_factory import scenario_data, write_scenario

HTTP_CHECK: dict[str, Any] = {
    "name": "checkout-responds",
    "http": {
        "url": "http://127.0.0.1:8080/health",
        "headers": {"Accept": "application/json"},
        "header_env": {"Authorization": "HEALTH_TOKEN"},
        "timeout": "3s",
        "expect_status": [200, 204],
        "expect_json": {"path": "$.status", "equals": "UP"},
    },
}
PROM_CHECK = {"name": "up", "expr": "min(up)", "comparator": "==", "threshold": 1}


def load(tmp_path: Path, steady_state: list[dict[str, Any]]) -> Scenario:
    return load_scenario(write_scenario(tmp_path, scenario_data(steady_state=steady_state)))


def problems(tmp_path: Path, steady_state: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, steady_state)
    return [f"{p.line}:{p.field}: {p.message}" for p in caught.value.problems]


def test_both_kinds_load_in_document_order_and_split_by_kind(tmp_path: Path) -> None:
    scenario = load(tmp_path, [HTTP_CHECK, PROM_CHECK])
    assert [type(c) for c in scenario.steady_state_checks] == [HttpSteadyStateCheck, SteadyStateCheck]
    assert [c.name for c in scenario.steady_state] == ["up"]  # PromQL only: what reports draw
    [http] = scenario.http_checks
    assert http.http.expect_status == [200, 204] and http.http.timeout.total_seconds() == 3
    assert http.http.expect_json is not None and http.http.expect_json.steps() == ["status"]


def test_the_journal_copy_round_trips(tmp_path: Path) -> None:
    scenario = load(tmp_path, [HTTP_CHECK, PROM_CHECK])
    dumped = scenario.model_dump(mode="json", by_alias=True)
    assert [entry["name"] for entry in dumped["steady_state"]] == ["checkout-responds", "up"]
    assert scenario_from_data(dumped) == scenario


def test_an_http_only_scenario_needs_no_prometheus(tmp_path: Path) -> None:
    data = scenario_data(steady_state=[HTTP_CHECK], abort_conditions=[], mitigation=None, target={})
    scenario = load_scenario(write_scenario(tmp_path, data))
    assert scenario.http_checks and not scenario.steady_state


def test_mistakes_are_located_at_their_own_key(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(HTTP_CHECK))
    bad["http"]["expect_status"] = [200, 700]
    bad["http"]["header_env"] = {"Authorization": "not a variable"}
    bad["http"]["expect_json"] = {"path": "status", "equals": "UP"}
    found = problems(tmp_path, [bad, {**PROM_CHECK, "treshold": 1}])
    assert any("steady_state[0].http.expect_status: 700 is not an HTTP status code" in p for p in found)
    assert any("steady_state[0].http.header_env:" in p and "not an environment variable" in p for p in found)
    assert any("steady_state[0].http.expect_json.path: expected a path such as" in p for p in found)
    assert any(
        "steady_state[1].treshold: unknown key 'treshold'; did you mean 'threshold'" in p for p in found
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"headers": {"X-A": "b\r\nX-Injected: 1"}}, "holds a line break"),
        ({"headers": {"Bad Header": "x"}}, "is not an HTTP header name"),
        ({"timeout": "5m"}, "at most 1m"),
        ({"expect_body_regex": "(unclosed"}, "not a regular expression"),
        ({"method": "HEAD", "expect_body": "ok"}, "a HEAD request gets no body"),
        ({"headers": {"authorization": "x"}}, "is in both headers and header_env"),
        ({"url": "ftp://example.org/"}, "an http:// or https:// URL"),
        ({"expect_status": []}, "at least 1 item"),
    ],
)
def test_unsafe_or_impossible_checks_are_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    check = json.loads(json.dumps(HTTP_CHECK))
    check["http"].update(change)
    assert any(message in problem for problem in problems(tmp_path, [check])), problems(tmp_path, [check])


def test_duplicate_names_across_kinds_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, [HTTP_CHECK, {**PROM_CHECK, "name": "checkout-responds"}])
    assert found == ["16:steady_state[1].name: duplicate steady-state check 'checkout-responds'"] or any(
        "duplicate steady-state check 'checkout-responds'" in p for p in found
    )


def test_the_plan_shows_each_check_in_one_line_without_header_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_TOKEN", "Bearer s3cret-value")
    scenario = load(tmp_path, [HTTP_CHECK, PROM_CHECK])
    plan = plan_offline(scenario, "scenario.yaml")
    rules = [check["rule"] for check in plan.steady_state]
    assert rules == [
        'GET http://127.0.0.1:8080/health -> status 200/204, $.status == "UP" within 3s, '
        "header Authorization from $HEALTH_TOKEN",
        "min(up) == 1",
    ]
    assert "s3cret" not in plan.model_dump_json()
    steady = next(check for check in plan.checks if check.name == "steady state")
    assert steady.detail == "2 checks before injecting and after reverting (1 HTTP)"
    assert not any(check.name == "secrets" for check in plan.checks)


def test_the_plan_warns_when_a_header_variable_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEALTH_TOKEN", raising=False)
    plan = plan_offline(load(tmp_path, [HTTP_CHECK]), "scenario.yaml")
    secrets = next(check for check in plan.checks if check.name == "secrets")
    assert secrets.status.value == "warn" and "HEALTH_TOKEN" in secrets.detail


def test_the_json_schema_offers_both_kinds() -> None:
    schema = scenario_json_schema()
    items = schema["properties"]["steady_state"]["items"]
    refs = {option["$ref"].rsplit("/", 1)[-1] for option in items["oneOf"]}
    assert refs == {"SteadyStateCheck", "HttpSteadyStateCheck"}
    assert "expect_json" in schema["$defs"]["HttpProbe"]["properties"]


def probe(**fields: Any) -> HttpProbe:
    return HttpProbe.model_validate({"url": "http://127.0.0.1/", **fields})


@pytest.mark.parametrize(
    ("fields", "status", "body", "failed"),
    [
        ({}, 200, b"", None),
        ({}, 503, b"", "expect_status: got 503, wanted 200"),
        ({"expect_status": [200, 204]}, 500, b"", "expect_status: got 500, wanted 200 or 204"),
        ({"expect_body": "ok"}, 200, b"all ok", None),
        ({"expect_body": "ok"}, 200, b"down", "expect_body: the body does not contain 'ok'"),
        ({"expect_body_regex": r"^up\b"}, 200, b"up 3", None),
        (
            {"expect_body_regex": r"^up\b"},
            200,
            b"down",
            "expect_body_regex: /^up\\b/ does not match the body",
        ),
        ({"expect_json": {"path": "$.status", "equals": "UP"}}, 200, b'{"status": "UP"}', None),
        (
            {"expect_json": {"path": '$.checks[1]["name"]', "equals": "db"}},
            200,
            b'{"checks": [{"name": "cache"}, {"name": "db"}]}',
            None,
        ),
        (
            {"expect_json": {"path": "$.ready", "equals": True}},
            200,
            b'{"ready": 1}',
            "expect_json: $.ready is 1, wanted true",
        ),
        ({"expect_json": {"path": "$.count", "equals": 3}}, 200, b'{"count": 3.0}', None),
        (
            {"expect_json": {"path": "$.status", "equals": "UP"}},
            200,
            b"<html>",
            "expect_json: the body is not JSON",
        ),
        (
            {"expect_json": {"path": "$.a[2]", "equals": 1}},
            200,
            b'{"a": [1]}',
            "expect_json: $.a[2] is not in the body",
        ),
        ({"expect_json": {"path": "$.status", "equals": None}}, 200, b'{"status": null}', None),
    ],
)
def test_judge_names_the_expectation_that_failed(
    fields: dict[str, Any], status: int, body: bytes, failed: str | None
) -> None:
    assert judge(probe(**fields), status, body) == failed
