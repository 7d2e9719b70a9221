"""A Chaos Toolkit run journal -> a run in our history, with a report.

A team's past ``chaos run`` results should sit beside its new runs: the
journal (``journal.json``) becomes a run folder in the state directory with
a journal in our format, so ``chaosrunner runs``, ``history`` and
``report RUN_ID`` treat it like any other run.

What is written, all at the times Chaos Toolkit recorded:

- ``run_started`` with the experiment mapped to a scenario (as ``import
  ctk --skip-unsupported`` would, without Prometheus: the past run's data is
  gone), ``imported_from`` naming the journal and its digest;
- ``check`` events for the steady-state probes before and after (ok is
  Chaos Toolkit's ``tolerance_met``);
- one ``ctk_activity`` event per method activity and rollback: what ran, its
  provider, its status, how long it took, and the error if it failed;
- ``abort`` when the run was aborted or interrupted, and ``run_finished``
  with the status (``deviated`` when the hypothesis did not hold after).

No fault events are invented: we did not inject anything, so the verdict
counts no targets and TTD/TTM stay unmeasured. Importing the same journal
twice is refused (its digest is in the first run).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import VERBATIM_FIELDS, JournalEvent, format_time, read_events
from chaosrunner.engine.rundir import RunDir, all_runs
from chaosrunner.errors import Problem, ScenarioError, UsageError
from chaosrunner.importers.ctk_activities import provider_text
from chaosrunner.importers.ctk_experiment import import_experiment_data
from chaosrunner.importers.ctk_source import build_experiment
from chaosrunner.redaction import redact_fields
from chaosrunner.scenario.document import read_source
from chaosrunner.scenario.loader import scenario_from_data
from chaosrunner.scenario.yaml_source import SourceMap

MAX_JOURNAL_BYTES = 64 * 1024 * 1024
STATUS = {"completed": "completed", "failed": "failed", "aborted": "aborted", "interrupted": "aborted"}
EXIT_CODES = {"completed": 0, "deviated": 1, "failed": 1, "aborted": 1}
PLACEHOLDER_FAULT = {"name": "ctk-method", "kind": "inprocess.flag", "params": {"flag": "ctk-method"}}
"""Stands for a method with no fault kind of ours (a scenario needs one fault): the activities are events."""


@dataclass(frozen=True)
class ImportedRun:
    run_id: str
    title: str
    status: str
    activities: int
    checks: int
    started: str


def _when(text: Any, fallback: datetime) -> datetime:
    """CTK writes naive ISO times in UTC."""
    if not isinstance(text, str):
        return fallback
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Writer:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.events: list[JournalEvent] = []

    def add(self, at: datetime, event_type: str, **fields: Any) -> None:
        at = max(at, self.start)
        self.events.append(
            JournalEvent(
                type=event_type,
                time=format_time(at.astimezone(UTC)),
                offset=round((at - self.start).total_seconds(), 6),
                **redact_fields(fields, keep=VERBATIM_FIELDS),
            )
        )


def _scenario_copy(journal_file: str, journal: dict[str, Any]) -> dict[str, Any]:
    experiment_data = journal.get("experiment")
    if not isinstance(experiment_data, dict) or not experiment_data.get("title"):
        raise ScenarioError(
            [Problem(journal_file, 1, 1, "experiment", "the journal holds no experiment with a title")]
        )
    experiment = build_experiment(journal_file, experiment_data, SourceMap(), strict=False)
    try:
        document = import_experiment_data(experiment, skip_unsupported=True).document()
    except ScenarioError:  # nothing in the method maps: the activities still tell the story
        document = {
            "kind": "Scenario",
            "version": 1,
            "metadata": {
                "title": str(experiment_data["title"]),
                "description": str(experiment_data.get("description", "")),
                "owner": "unassigned",
                "tags": ["chaostoolkit-import"],
                "expected_severity": "P3",
                "hypothesis": str(
                    (experiment_data.get("steady-state-hypothesis") or {}).get("title") or "n/a"
                ),
            },
            "faults": [dict(PLACEHOLDER_FAULT, start="0s", duration="10s")],
            "gameday": {"mode": "automated"},
        }
    # The past run's Prometheus data is not ours to query: its checks are journaled events instead.
    document.pop("steady_state", None)
    document.pop("abort_conditions", None)
    document.get("target", {}).pop("prometheus", None)
    scenario_from_data(document, source=journal_file)  # the report reads it back: it must load
    return document


def _activity_detail(record: dict[str, Any], phase: str) -> tuple[str, str]:
    activity = record.get("activity") or {}
    name = str(activity.get("name", "?"))
    kind = str(activity.get("type", "activity"))
    status = str(record.get("status", "?"))
    duration = record.get("duration")
    took = f" in {float(duration):.2f}s" if isinstance(duration, int | float) else ""
    detail = f"{phase} {kind} {name!r} ({provider_text(activity)}) {status}{took}"
    exception = record.get("exception")
    if status != "succeeded" and exception:
        lines = exception if isinstance(exception, list) else [str(exception)]
        detail += f": {str(lines[-1]).strip()[:300]}"
    return name, detail


def _checks(writer: _Writer, section: Any, when: str, fallback: datetime) -> int:
    probes = (section or {}).get("probes") or [] if isinstance(section, dict) else []
    for record in probes:
        activity = record.get("activity") or {}
        ok = bool(record.get("tolerance_met"))
        output = record.get("output")
        shown = json.dumps(output, default=str)[:120] if output is not None else "no output"
        writer.add(
            _when(record.get("end") or record.get("start"), fallback),
            "check",
            name=str(activity.get("name", "probe")),
            ok=ok,
            detail=f"{when}: {'tolerance met' if ok else 'tolerance NOT met'} "
            f"({provider_text(activity)}; {shown})",
        )
    return len(probes)


def _already_imported(digest: str) -> str | None:
    for run in all_runs():
        first = next(read_events(run.journal_path), None)
        if first is not None and (first.get("imported_from") or {}).get("sha256") == digest:
            return run.run_id
    return None


def import_journal(path: Path) -> ImportedRun:
    """Write a Chaos Toolkit journal into the state folder as one of our runs; return its summary."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ScenarioError([Problem(str(path), 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    if size > MAX_JOURNAL_BYTES:
        raise ScenarioError([Problem(str(path), 1, 1, "", f"larger than {MAX_JOURNAL_BYTES // 2**20} MiB")])
    journal, _ = read_source(path)
    if "run" not in journal or "experiment" not in journal:
        raise ScenarioError(
            [Problem(str(path), 1, 1, "", "not a Chaos Toolkit journal (expected 'experiment' and 'run')")]
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    earlier = _already_imported(digest)
    if earlier:
        raise UsageError(f"{path} was already imported as run {earlier} (`chaosrunner report {earlier}`)")
    scenario = _scenario_copy(str(path), journal)
    now = datetime.now(UTC)
    start = _when(journal.get("start"), now)
    end = _when(journal.get("end"), start)
    ctk_status = str(journal.get("status", "completed"))
    status = (
        "deviated"
        if journal.get("deviated") and ctk_status == "completed"
        else STATUS.get(ctk_status, "failed")
    )

    writer = _Writer(start)
    title = str(scenario["metadata"]["title"])
    writer.add(
        start,
        "run_started",
        run_id="",  # filled in once the folder exists
        version=1,
        scenario_title=title,
        scenario_file=str(path),
        scenario=scenario,
        mode="automated",
        host=str(journal.get("node", "")),
        monotonic_start=0.0,
        imported_from={
            "tool": "chaostoolkit",
            "file": str(path),
            "sha256": digest,
            "chaoslib_version": str(journal.get("chaoslib-version", "")),
        },
    )
    states = journal.get("steady_states") or {}
    writer.add(start, "phase", phase="preflight")
    checks = _checks(writer, states.get("before"), "before the method", start)
    writer.add(start, "phase", phase="injecting")
    activities = 0
    for phase, records in (
        ("method", journal.get("run") or []),
        ("rollback", journal.get("rollbacks") or []),
    ):
        if phase == "rollback":
            writer.add(_when(records[0].get("start"), end) if records else end, "phase", phase="reverting")
        for record in records:
            if not isinstance(record, dict):
                continue
            _, detail = _activity_detail(record, phase)
            writer.add(
                _when(record.get("start"), start),
                "ctk_activity",
                detail=detail,
                status=str(record.get("status", "?")),
            )
            activities += 1
    for during in states.get("during") or []:
        checks += _checks(writer, during, "during the method", start)
    writer.add(end, "phase", phase="verifying")
    checks += _checks(writer, states.get("after"), "after the method", end)
    if ctk_status in ("aborted", "interrupted"):
        writer.add(end, "abort", cause="operator", detail=f"the Chaos Toolkit run was {ctk_status}")
    detail = {
        "completed": "imported Chaos Toolkit run: the hypothesis held",
        "deviated": "imported Chaos Toolkit run: the steady state deviated after the method",
        "failed": "imported Chaos Toolkit run: it failed (an activity raised, "
        "or the steady state did not hold before)",
        "aborted": f"imported Chaos Toolkit run: {ctk_status}",
    }[status]
    writer.add(end, "phase", phase="finished")
    writer.add(end, "run_finished", status=status, exit_code=EXIT_CODES[status], detail=detail)

    run = RunDir.create(f"{start:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}")
    writer.events[0]["run_id"] = run.run_id
    journal_writer = run.journal()
    for event in sorted(writer.events, key=lambda e: (e["offset"], 0 if e["type"] == "run_started" else 1)):
        journal_writer.write(event)
    return ImportedRun(run.run_id, title, status, activities, checks, writer.events[0]["time"])
