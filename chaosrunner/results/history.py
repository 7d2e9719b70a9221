"""``chaosrunner history`` across machines: the store's runs, merged with this state folder's.

The store holds what every machine recorded; this state folder may hold runs
the store never got (run before it existed, or while it was unreachable, and
not yet synced). Both are shown, one row per run: the store's document
when it has the run (it is the report written at the run's end), this folder's
figures otherwise. When the store cannot be read, history is this folder's
alone and says why, as before the store existed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.errors import ChaosrunnerError
from chaosrunner.report import fmt
from chaosrunner.report.history import HistoryEntry
from chaosrunner.report.history import history as local_history
from chaosrunner.results.store import ENV_DSN, STORE_FILE, open_store


@dataclass
class MergedHistory:
    entries: list[HistoryEntry]
    store: str | None = None  # where the store read was (redacted); None when none was read
    warnings: list[str] = field(default_factory=list)


def entry_from_document(document: dict[str, Any], origin: dict[str, str] | None = None) -> HistoryEntry:
    """A history row from a stored report document; ``source`` says it came from the store (which host)."""
    run = document.get("run") or {}
    timings = document.get("timings") or {}
    score = document.get("score") or {}
    title = str((document.get("scenario") or {}).get("title") or "?")

    def timing(key: str, part: str) -> float | None:
        value = (timings.get(key) or {}).get(part)
        return float(value) if isinstance(value, int | float) else None

    host = (origin or {}).get("host")
    return HistoryEntry(
        run_id=str(run.get("id") or "?"),
        scenario=title,
        scenario_key=fmt.slug(title),
        started=str(run.get("started") or document.get("generated_at") or ""),
        status=str(run.get("status") or "?"),
        ttd_seconds=timing("ttd", "seconds"),
        ttm_seconds=timing("ttm", "seconds"),
        ttr_seconds=timing("ttr", "seconds"),
        ttd_target_seconds=timing("ttd", "target_seconds"),
        ttm_target_seconds=timing("ttm", "target_seconds"),
        score=score.get("total") if isinstance(score.get("total"), int | float) else None,
        grade=score.get("grade") if isinstance(score.get("grade"), str) else None,
        source=f"store:{host}" if host else "store",
    )


def document_matches(document: dict[str, Any], scenario: str) -> bool:
    """As ``report.history.matches``: the title, its slug, or the scenario file (path, name or stem)."""
    meta = document.get("scenario") or {}
    title = str(meta.get("title") or "")
    wanted = scenario.strip()
    if wanted.lower() == title.lower() or fmt.slug(wanted) == fmt.slug(title):
        return True
    source = str(meta.get("file") or "")
    return bool(source) and (
        source == wanted or Path(source).name == Path(wanted).name or Path(source).stem == wanted
    )


def merged_history(scenario: str | None, state: Path) -> MergedHistory:
    """Every run of ``scenario`` (or of all) in the store and in this state folder, oldest first."""
    local = local_history(scenario)
    if not os.environ.get(ENV_DSN, "").strip() and not (state / STORE_FILE).exists():
        return MergedHistory(local)  # no store yet: nothing to read, and reading must not create one
    try:
        with open_store(state) as store:
            where = store.where
            stored = [
                entry_from_document(document, origin)
                for origin, document in store.records()
                if scenario is None or document_matches(document, scenario)
            ]
    except ChaosrunnerError as error:
        return MergedHistory(local, warnings=[f"results store unreadable, this state folder only: {error}"])
    # This machine's own runs are read from their journals, the source of truth here (and what
    # `serve` lists, to the microsecond); the store adds the runs other machines recorded.
    by_run = {entry.run_id: entry for entry in stored}
    by_run.update({entry.run_id: entry for entry in local})
    entries = sorted(by_run.values(), key=_order)
    return MergedHistory(entries, store=where)


def _order(entry: HistoryEntry) -> tuple[str, str]:
    # Journal times have microseconds, report times milliseconds: order by the moment, not the text.
    moment = entry.started_at
    return (moment.isoformat() if moment else entry.started, entry.run_id)
