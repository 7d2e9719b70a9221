from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from chaosrunner.errors import ScenarioError
from chaosrunner.faults.inprocess import FlagParams
from chaosrunner.scenario.library import ConditionLibrary, escape_label_value
from chaosrunner.scenario.loader import load_document, load_scenario
from chaosrunner.scenario.models import Comparator, LibraryCondition, Mode, Scenario
from tests.unit.scenario_factory import scenario_data, write_scenario


def test_a_valid_scenario_loads_typed(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    assert scenario.metadata.title == "Checkout pool exhausted"
    assert isinstance(scenario.faults[0].params, FlagParams)
    assert scenario.faults[1].start == timedelta(seconds=10)
    assert scenario.gameday.mode is Mode.GAMEDAY
    assert scenario.scoring.weights.status_updates == 20
    assert scenario.scoring.weights.escalation == 5  # untouched weights keep their defaults


def test_library_reference_is_expanded_with_overrides(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    condition = scenario.abort_conditions[1]
    assert condition.name == "error-rate-above"
    assert 'job="checkout"' in condition.expr and "${" not in condition.expr
    assert condition.threshold == 0.2  # overridden
    assert condition.comparator is Comparator.GT and condition.for_ == timedelta(
        seconds=5
    )  # from the library
    assert condition.origin.endswith("error-rate-above.yaml")


def test_library_values_are_escaped_for_promql_strings() -> None:
    assert escape_label_value('a"b\\c') == 'a\\"b\\\\c'


def test_library_from_an_explicit_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "conditions"
    library.mkdir()
    (library / "mine.yaml").write_text(
        "kind: AbortCondition\nname: mine\ndescription: d\nparams: {svc: {}}\n"
        'expr: up{job="${svc}"}\ncomparator: "<"\nthreshold: 1\n'
    )
    monkeypatch.setenv("CHAOSRUNNER_LIBRARY", str(library))
    data = scenario_data(abort_conditions=[{"use": "mine", "params": {"svc": 'we"ird'}, "name": "renamed"}])
    scenario = load_scenario(write_scenario(tmp_path, data))
    assert scenario.abort_conditions[0].name == "renamed"
    assert scenario.abort_conditions[0].expr == 'up{job="we\\"ird"}'


def test_the_shipped_library_is_found_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no abort_conditions/ here, nor above the scenario
    data = scenario_data(abort_conditions=[{"use": "scrape-target-down", "params": {"job": "checkout"}}])
    scenario = load_scenario(write_scenario(elsewhere, data))
    assert scenario.abort_conditions[0].expr == 'min(up{job="checkout"})'


def test_a_broken_library_file_is_reported_at_its_own_location(tmp_path: Path) -> None:
    folder = tmp_path / "abort_conditions"
    folder.mkdir()
    (folder / "bad.yaml").write_text(
        "kind: AbortCondition\nname: bad\ndescription: d\nexpr: up\ncomparator: '~'\nthreshold: 1\n"
    )
    data = scenario_data(abort_conditions=[{"use": "bad"}])
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_scenario(tmp_path, data), ConditionLibrary([folder]))
    assert any(problem.file.endswith("bad.yaml") and problem.line == 5 for problem in caught.value.problems)


def test_library_placeholders_must_be_declared(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "kind: AbortCondition\nname: c\ndescription: d\n"
        "expr: up{job=\"${job}\"}\ncomparator: '<'\nthreshold: 1\n"
    )
    with pytest.raises(ScenarioError, match=r"placeholder \$\{job\} is not declared"):
        load_document(path)
    assert isinstance(load_document(Path("abort_conditions/error-rate-above.yaml")), LibraryCondition)


def test_every_mistake_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    data = scenario_data()
    data["metadata"]["expected_severity"] = "P9"
    data["faults"][0]["kind"] = "nope.nothing"
    data["gameday"]["max_duration"] = "forever"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_scenario(tmp_path, data))
    fields = sorted(problem.field for problem in caught.value.problems)
    assert fields == ["faults[0].kind", "gameday.max_duration", "metadata.expected_severity"]


def test_unknown_kind_suggests_the_closest(tmp_path: Path) -> None:
    data = scenario_data()
    data["faults"][0]["kind"] = "inprocess.flg"
    with pytest.raises(ScenarioError, match=r"did you mean .inprocess\.flag."):
        load_scenario(write_scenario(tmp_path, data))


def test_automated_mode_requires_fault_durations(tmp_path: Path) -> None:
    data = scenario_data()
    data["gameday"]["mode"] = "automated"
    del data["faults"][0]["duration"]
    with pytest.raises(ScenarioError, match="needs a duration in automated mode"):
        load_scenario(write_scenario(tmp_path, data))


def test_gameday_mode_allows_open_ended_faults(tmp_path: Path) -> None:
    data = scenario_data()
    del data["faults"][0]["duration"]
    assert load_scenario(write_scenario(tmp_path, data)).faults[0].duration is None


def test_prometheus_is_required_when_conditions_need_it(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"need target\.prometheus"):
        load_scenario(write_scenario(tmp_path, scenario_data(target={})))


def test_merge_keys_and_anchors_work(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "metadata: {title: t, owner: o, expected_severity: P3, hypothesis: h}\n"
        "faults:\n"
        "  - &base {name: first, kind: inprocess.flag, params: {flag: a}, duration: 5s}\n"
        "  - {<<: *base, name: second, start: 5s}\n"
    )
    scenario = load_scenario(path)
    assert [fault.name for fault in scenario.faults] == ["first", "second"]
    assert scenario.faults[1].params == scenario.faults[0].params


def test_an_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError, match="document too large"):
        load_document(path)


def test_model_round_trips_through_json(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    dumped = scenario.model_dump(mode="json", by_alias=True)
    assert dumped["faults"][0]["params"] == {"flag": "x", "inject_delay": "0s", "revert_delay": "0s"}
    assert dumped["abort_conditions"][0]["for"] == "5s"
    assert isinstance(Scenario.model_json_schema(), dict)
