"""Everything the team and the facilitator learn from one run, from its journal.

``debrief(run)`` is what `chaosrunner score`, the end-of-run summary and the
report all start from: the scenario as it ran (the journal's own copy, not
today's file) with the marks imported from the team's chat
(``gameday.chat.imported``), the measurement (TTD, TTM, TTR with evidence, from Prometheus
data where the scenario has it), the team's score and the experiment's
verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosrunner.engine.journal import JournalEvent
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UnknownRun
from chaosrunner.gameday.chat.imported import load as load_imported
from chaosrunner.gameday.chat.imported import with_imported
from chaosrunner.gameday.measure import Measurement, measure
from chaosrunner.gameday.scoring import Score, score
from chaosrunner.gameday.verdict import ExperimentVerdict, experiment_verdict
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.scenario.loader import scenario_from_data
from chaosrunner.scenario.models import Scenario


@dataclass
class Debrief:
    run_id: str
    scenario: Scenario
    events: list[JournalEvent]
    measurement: Measurement
    score: Score
    verdict: ExperimentVerdict


def scenario_of(events: list[JournalEvent], run_id: str) -> Scenario:
    started = next((event for event in events if event.type == "run_started"), None)
    if started is None:
        raise UnknownRun(f"run {run_id!r} has no run_started event: its journal is damaged")
    return scenario_from_data(dict(started["scenario"]), source=f"run {run_id}")


def default_metrics(scenario: Scenario) -> MetricsSource | None:
    if not scenario.target.prometheus:
        return None
    from chaosrunner.observe.prometheus import PrometheusHTTP

    return PrometheusHTTP(scenario.target.prometheus)


def debrief(run: RunDir | str, metrics: MetricsSource | None = None, *, offline: bool = False) -> Debrief:
    """Measure and score a run: with ``metrics``, or the scenario's own Prometheus,
    or - ``offline`` - from the journal alone (marks and journaled alerts)."""
    target = run if isinstance(run, RunDir) else RunDir.find(run)
    # Marks imported from the team's chat count like live ones; they stay in their own file.
    events = with_imported(target.events(), load_imported(target))
    scenario = scenario_of(events, target.run_id)
    source = None if offline else (metrics or default_metrics(scenario))
    measurement = measure(list(events), scenario, source)
    return Debrief(
        run_id=target.run_id,
        scenario=scenario,
        events=events,
        measurement=measurement,
        score=score(measurement, scenario),
        verdict=experiment_verdict(list(events)),
    )
