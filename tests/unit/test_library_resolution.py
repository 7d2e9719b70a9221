"""Where a `use:` abort condition comes from: never from a folder above the scenario.

The tree is the attack the issue describes: a shared ancestor (think /tmp)
holds abort_conditions/error-rate-above.yaml with `expr: vector(0)`, which
can never fire; a team's scenario lives below it. The scenario must get the
shipped condition. A file in the scenario's own abort_conditions/ is an
override on purpose: it is used, and `plan` and `run` say what it shadows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from chaosrunner.scenario.library import ConditionLibrary, split_origin
from chaosrunner.scenario.loader import load_scenario
from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]
NEVER_FIRES = (
    "kind: AbortCondition\nname: error-rate-above\ndescription: planted\n"
    "params: {job: {}}\nexpr: vector(0)\ncomparator: '>'\nthreshold: 0.05\n"
)


def scenario_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scenario.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "metadata": {"title": "t", "owner": "o", "expected_severity": "P3", "hypothesis": "h"},
                # Nothing listens there: a run shows its conditions' sources before it asks Prometheus.
                "target": {"prometheus": "http://127.0.0.1:9"},
                "faults": [
                    {"name": "one", "kind": "inprocess.flag", "params": {"flag": "one"}, "duration": "1s"}
                ],
                "abort_conditions": [{"use": "error-rate-above", "params": {"job": "checkout"}}],
            }
        )
    )
    return path


@pytest.fixture
def ancestor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared folder with a planted condition; the working folder is elsewhere, with no library."""
    planted = tmp_path / "shared" / "abort_conditions"
    planted.mkdir(parents=True)
    (planted / "error-rate-above.yaml").write_text(NEVER_FIRES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CHAOSRUNNER_LIBRARY", raising=False)
    return tmp_path / "shared"


def test_a_condition_planted_in_an_ancestor_folder_is_ignored(ancestor: Path) -> None:
    scenario = load_scenario(scenario_in(ancestor / "team"))
    [condition] = scenario.abort_conditions
    assert "vector(0)" not in condition.expr and 'job="checkout"' in condition.expr
    used, shadowed = split_origin(condition.origin)
    assert Path(used).resolve() == (REPO / "abort_conditions" / "error-rate-above.yaml").resolve()
    assert shadowed == []


def test_the_scenario_folder_overrides_the_bundled_one_and_says_so(ancestor: Path) -> None:
    team = ancestor / "team"
    (team / "abort_conditions").mkdir(parents=True)
    (team / "abort_conditions" / "error-rate-above.yaml").write_text(NEVER_FIRES.replace("planted", "ours"))
    [condition] = load_scenario(scenario_in(team)).abort_conditions
    assert condition.expr == "vector(0)"
    used, shadowed = split_origin(condition.origin)
    assert Path(used) == team / "abort_conditions" / "error-rate-above.yaml"
    assert [Path(other).resolve() for other in shadowed] == [
        (REPO / "abort_conditions" / "error-rate-above.yaml").resolve()
    ]


def test_the_order_is_explicit_then_scenario_then_project_then_bundled(
    ancestor: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = scenario_in(ancestor / "team")
    library = ConditionLibrary.for_scenario(scenario, [tmp_path / "explicit"])
    assert [folder.source for folder in library.folders] == ["bundled"]  # nothing else exists yet
    for folder in (tmp_path / "explicit", ancestor / "team" / "abort_conditions", Path("abort_conditions")):
        folder.mkdir()
    library = ConditionLibrary.for_scenario(scenario, [tmp_path / "explicit"])
    assert [folder.source for folder in library.folders] == ["explicit", "scenario", "project", "bundled"]
    monkeypatch.setenv("CHAOSRUNNER_LIBRARY", str(tmp_path / "explicit"))
    assert ConditionLibrary.for_scenario(scenario).folders[0].source == "explicit"


def test_plan_says_where_each_condition_came_from_and_warns_about_shadowing(ancestor: Path) -> None:
    team = ancestor / "team"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    plain = run_chaosrunner("plan", str(scenario_in(team)), env=env, cwd=Path.cwd())
    assert plain.returncode == 0, plain.stderr
    assert "from " + str((REPO / "abort_conditions" / "error-rate-above.yaml").resolve()) in plain.stdout
    assert "WARNING" not in plain.stdout

    (team / "abort_conditions").mkdir()
    (team / "abort_conditions" / "error-rate-above.yaml").write_text(NEVER_FIRES)
    shadowing = run_chaosrunner("plan", str(team / "scenario.yaml"), env=env, cwd=Path.cwd())
    assert shadowing.returncode == 0, shadowing.stderr
    assert f"WARNING: {team / 'abort_conditions' / 'error-rate-above.yaml'} shadows " in shadowing.stdout


def test_plan_and_validate_take_an_explicit_library(ancestor: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "error-rate-above.yaml").write_text(NEVER_FIRES.replace("planted", "mine"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    scenario = scenario_in(ancestor / "team")
    planned = run_chaosrunner(
        "plan", "--library", str(mine), "--json", str(scenario), env=env, cwd=Path.cwd()
    )
    assert planned.returncode == 0, planned.stderr
    assert '"expr": "vector(0)"' in planned.stdout
    validated = run_chaosrunner("validate", "--library", str(mine), str(scenario), env=env, cwd=Path.cwd())
    assert validated.returncode == 0, validated.stderr


def test_a_run_journals_and_shows_the_source_and_the_shadowing(ancestor: Path, tmp_path: Path) -> None:
    team = ancestor / "team"
    (team / "abort_conditions").mkdir(parents=True)
    (team / "abort_conditions" / "error-rate-above.yaml").write_text(NEVER_FIRES)
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state")}
    finished = run_chaosrunner("run", "--plain", str(scenario_in(team)), env=env, cwd=Path.cwd())
    assert finished.returncode == 3, finished.stdout + finished.stderr  # then preflight finds no Prometheus
    planted = team / "abort_conditions" / "error-rate-above.yaml"
    assert f"WARNING: abort condition error-rate-above from {planted}; shadows " in finished.stdout
    [run] = list((tmp_path / "state" / "runs").iterdir())
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    [source] = [event for event in journal if event["type"] == "abort_condition_source"]
    assert split_origin(source["origin"])[0] == str(planted)
