"""Loading a schedule file and every scenario it names, with located errors.

A schedule is only as good as its scenarios, so they are loaded here too: a
mistake in one is reported with the scenario's own file:line:column, before
the daemon ever starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from chaosrunner.errors import ScenarioError
from chaosrunner.scenario.document import read_model
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.scenario.models import Scenario
from chaosrunner.scenario.problems import ProblemList
from chaosrunner.schedule.models import ResolvedEntry, Schedule, resolve


@dataclass
class LoadedSchedule:
    path: Path
    schedule: Schedule
    entries: list[ResolvedEntry]
    scenarios: dict[str, Scenario]  # by entry name
    scenario_paths: dict[str, Path]

    @property
    def name(self) -> str:
        return self.schedule.name


def target_lock(scenario: Scenario) -> str:
    """The default lock: one per distinct target, so two entries on one target never overlap."""
    target = json.dumps(scenario.target.model_dump(mode="json"), sort_keys=True)
    return "target-" + hashlib.sha256(target.encode()).hexdigest()[:12]


def load_schedule(path: Path) -> LoadedSchedule:
    scenarios: dict[str, Scenario] = {}
    scenario_paths: dict[str, Path] = {}
    nested: list[ScenarioError] = []

    def check(schedule: Schedule, problems: ProblemList) -> None:
        seen: set[str] = set()
        for index, entry in enumerate(schedule.entries):
            if entry.name in seen:
                problems.add(("entries", index, "name"), f"duplicate entry name {entry.name!r}")
            seen.add(entry.name)
            scenario_path = (path.parent / entry.scenario).resolve()
            if not scenario_path.is_file():
                problems.add(("entries", index, "scenario"), f"no scenario file at {scenario_path}")
                continue
            try:
                scenarios[entry.name] = load_scenario(scenario_path)
                scenario_paths[entry.name] = scenario_path
            except ScenarioError as error:
                nested.append(error)
                problems.add(("entries", index, "scenario"), f"{entry.scenario} is invalid (see below)")
        if nested:
            problems.problems.extend(problem for error in nested for problem in error.problems)

    schedule = read_model(path, Schedule, check=check)
    entries = [
        resolve(entry, schedule.defaults, target_lock(scenarios[entry.name])) for entry in schedule.entries
    ]
    return LoadedSchedule(path, schedule, entries, scenarios, scenario_paths)
