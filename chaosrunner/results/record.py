"""A finished run's report JSON: kept beside its journal, put into the store, synced from a machine.

The end of every run (``chaosrunner run``, a scheduled run) calls
``record_finished_run(run_id, report_json)`` once its report is written: the
report's JSON document (measured with Prometheus data, secrets scrubbed) is
copied beside the journal as ``report.json`` (0600) and put into the store.
The caller turns a failure into a warning line: the run's outcome never
depends on the store.

``sync`` is for what never got there (a store configured later, a store
unreachable at the end of a run, runs from before the store existed): every
finished run of this state folder the store lacks is uploaded, from its
``report.json`` or, when that is missing, from a report rendered from the
journal alone (offline; then kept as ``report.json`` too).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import read_events
from chaosrunner.engine.rundir import RunDir, all_runs
from chaosrunner.errors import ChaosrunnerError, UsageError
from chaosrunner.private_files import read_no_follow, write_private
from chaosrunner.redaction import redact_text
from chaosrunner.results.documents import indexed
from chaosrunner.results.store import ResultsStore, open_store
from chaosrunner.statedir import state_dir

REPORT_FILE = "report.json"
REPORT_LIMIT = 64 * 1024 * 1024
"""The most of a report.json we read: a long run's is a few hundred KiB; anything far bigger is not ours."""


@dataclass(frozen=True)
class Recorded:
    run_id: str
    report_json: Path  # beside the journal
    new: bool  # the store did not have this run before
    where: str  # the store, redacted


def record_finished_run(
    run_id: str, report_json: Path | None = None, store: ResultsStore | None = None
) -> Recorded:
    """Keep the run's report JSON beside its journal and put it into the store.

    ``report_json`` is the file the report writer just wrote; without it the
    document is rendered from the journal alone. ``store`` defaults to this
    state folder's (``open_store``), opened and closed here.
    """
    run = RunDir.find(run_id)
    if report_json is not None:
        text = read_no_follow(report_json, REPORT_LIMIT).decode()
        document = _parse(text, str(report_json))
    else:
        document = render_offline(run)
        text = json.dumps(document, indent=2) + "\n"
    if indexed(document, str(report_json or run.path)).run_id != run.run_id:
        raise UsageError(f"{report_json}: field run.id: the report of another run, not {run.run_id}")
    kept = run.path / REPORT_FILE
    write_private(kept, text)
    if store is not None:
        return Recorded(run.run_id, kept, store.put(document), store.where)
    with open_store(state_dir()) as opened:
        return Recorded(run.run_id, kept, opened.put(document), opened.where)


def render_offline(run: RunDir) -> dict[str, Any]:
    """The run's report JSON document from its journal alone (no Prometheus), secrets scrubbed."""
    from chaosrunner.gameday.debrief import debrief
    from chaosrunner.report.history import of_scenario
    from chaosrunner.report.model import build_report
    from chaosrunner.report.writer import render

    result = debrief(run, offline=True)
    report = build_report(result, None, history=of_scenario(result))
    return _parse(render(report, ["json"])["json"], f"{run.path} (rendered)")


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{source}: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{source}: expected a JSON object")
    return document


def finished(run: RunDir) -> bool:
    """The runner wrote run_finished and is gone: the journal will not change any more."""
    if run.is_live():
        return False
    return any(event.type == "run_finished" for event in read_events(run.journal_path))


def kept_document(run: RunDir) -> dict[str, Any] | None:
    """The run's report.json, when it is there and is this run's report; None otherwise."""
    try:
        document = _parse(read_no_follow(run.path / REPORT_FILE, REPORT_LIMIT).decode(), "")
        if indexed(document).run_id == run.run_id:
            return document
    except (OSError, UnicodeDecodeError, ChaosrunnerError):
        pass
    return None


@dataclass
class SyncCounts:
    uploaded: int = 0  # runs the store lacked, now in it
    already: int = 0  # runs the store had
    rendered: int = 0  # of the uploaded, how many had no report.json (rendered from the journal)
    unfinished: int = 0  # live runs, or dead before run_finished: nothing final to upload
    failed: dict[str, str] = field(default_factory=dict)  # run id -> why it could not be uploaded


def sync(store: ResultsStore, runs: list[RunDir] | None = None) -> SyncCounts:
    """Upload every finished run of this state folder that the store lacks; what happened, counted."""
    counts = SyncCounts()
    have = store.run_ids()
    documents: list[dict[str, Any]] = []
    for run in runs if runs is not None else all_runs():
        if run.run_id in have:
            counts.already += 1
            continue
        try:
            if not finished(run):
                counts.unfinished += 1
                continue
            document = kept_document(run)
            if document is None:
                document = render_offline(run)
                counts.rendered += 1
                # a read-only state folder still syncs; it just renders again next time
                with contextlib.suppress(OSError):
                    write_private(run.path / REPORT_FILE, json.dumps(document, indent=2) + "\n")
        except (ChaosrunnerError, OSError) as error:
            counts.failed[run.run_id] = redact_text(str(error))  # library text may carry a DSN
            continue
        documents.append(document)
    if documents:
        counts.uploaded = store.put_many(documents)
        counts.already += len(documents) - counts.uploaded  # another machine raced us to some
    return counts
