"""How a scenario's runs compare over time: TTD, TTM and score, run after run.

A gameday repeated every quarter should show the team getting faster; a
scheduled experiment should show when detection regressed. The runs are
the state folder's journals (``<state>/runs/*/journal.jsonl``), grouped by
scenario (the slug of its title, so a renamed file keeps its history).

Measuring a run needs Prometheus data that may have expired since, so
whenever a report is written its measured figures are kept beside the
journal in ``debrief-summary.json`` (see ``save_summary``). History reads
that file when it exists, and otherwise falls back to measuring from the
journal alone (responder marks and journaled alerts: ``source`` says
"journal", and TTM may then rest on a mark the SLI never confirmed).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import JournalEvent, parse_time, read_events
from chaosrunner.engine.rundir import RunDir, all_runs
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.debrief import Debrief, debrief
from chaosrunner.report import fmt

SUMMARY_FILE = "debrief-summary.json"
SUMMARY_VERSION = 1


@dataclass(frozen=True)
class HistoryEntry:
    run_id: str
    scenario: str  # title
    scenario_key: str  # slug of the title: what groups runs
    started: str  # ISO time of run_started
    status: str
    ttd_seconds: float | None
    ttm_seconds: float | None
    ttr_seconds: float | None
    ttd_target_seconds: float | None
    ttm_target_seconds: float | None
    score: float | None
    grade: str | None
    source: str  # report (measured with Prometheus data) | journal (journal alone) | damaged

    @property
    def started_at(self) -> datetime | None:
        try:
            return parse_time(self.started)
        except ValueError:
            return None


def entry_from_debrief(result: Debrief, source: str = "report") -> HistoryEntry:
    measurement = result.measurement
    started = next((event for event in result.events if event.type == "run_started"), None)
    gameday = result.scenario.gameday
    scored = measurement.t0 is not None
    return HistoryEntry(
        run_id=result.run_id,
        scenario=result.scenario.metadata.title,
        scenario_key=fmt.slug(result.scenario.metadata.title),
        started=str(started["time"]) if started else "",
        status=result.verdict.status,
        ttd_seconds=fmt.seconds(measurement.ttd),
        ttm_seconds=fmt.seconds(measurement.ttm),
        ttr_seconds=fmt.seconds(measurement.ttr),
        ttd_target_seconds=gameday.ttd_target.total_seconds(),
        ttm_target_seconds=gameday.ttm_target.total_seconds(),
        score=result.score.total if scored else None,
        grade=result.score.grade if scored else None,
        source=source,
    )


def save_summary(run: RunDir, entry: HistoryEntry) -> None:
    """Keep a run's measured figures beside its journal (atomically; best effort)."""
    path = run.path / SUMMARY_FILE
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps({"version": SUMMARY_VERSION, **asdict(entry)}, indent=1))
        os.replace(tmp, path)
    except OSError:
        return  # a read-only state folder only costs history its cache


def _saved(run: RunDir) -> HistoryEntry | None:
    try:
        data: dict[str, Any] = json.loads((run.path / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if data.pop("version", None) != SUMMARY_VERSION:
        return None
    try:
        return HistoryEntry(**data)
    except TypeError:
        return None


def entry_for(run: RunDir) -> HistoryEntry:
    saved = _saved(run)
    if saved is not None:
        return saved
    try:
        return entry_from_debrief(debrief(run, offline=True), source="journal")
    except ChaosrunnerError:
        first = _started(run)
        title = str(first.get("scenario_title", "?")) if first else "?"
        return HistoryEntry(
            run.run_id,
            title,
            fmt.slug(title),
            str(first["time"]) if first else "",
            "damaged",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            "damaged",
        )


def _started(run: RunDir) -> JournalEvent | None:
    """The run_started event alone: matching runs must not read whole journals."""
    first = next(read_events(run.journal_path), None)
    return first if first is not None and first.type == "run_started" else None


def _title_of(run: RunDir) -> str | None:
    first = _started(run)
    return str(first.get("scenario_title")) if first else None


def _file_of(run: RunDir) -> str | None:
    first = _started(run)
    return str(first.get("scenario_file")) if first else None


def matches(run: RunDir, scenario: str) -> bool:
    """A scenario is named by its title, the slug of it, or its file (path or base name)."""
    title = _title_of(run) or ""
    wanted = scenario.strip()
    if wanted.lower() == title.lower() or fmt.slug(wanted) == fmt.slug(title):
        return True
    source = _file_of(run) or ""
    return bool(source) and (
        source == wanted or Path(source).name == Path(wanted).name or Path(source).stem == wanted
    )


def history(scenario: str | None = None, runs: list[RunDir] | None = None) -> list[HistoryEntry]:
    """Every run (of ``scenario``, when given), oldest first."""
    chosen = [
        run
        for run in (runs if runs is not None else all_runs())
        if scenario is None or matches(run, scenario)
    ]
    entries = [entry_for(run) for run in chosen]
    return sorted(entries, key=lambda entry: (entry.started, entry.run_id))


def group(entries: list[HistoryEntry]) -> dict[str, list[HistoryEntry]]:
    grouped: dict[str, list[HistoryEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.scenario_key, []).append(entry)
    return grouped


def of_scenario(result: Debrief, runs: list[RunDir] | None = None) -> list[HistoryEntry]:
    """The scenario's runs up to and including this one, this one measured as the report has it."""
    key = fmt.slug(result.scenario.metadata.title)
    current = entry_from_debrief(result)
    earlier = [
        entry
        for entry in history(result.scenario.metadata.title, runs)
        if entry.scenario_key == key and entry.run_id != result.run_id and entry.started <= current.started
    ]
    return [*earlier, current]
