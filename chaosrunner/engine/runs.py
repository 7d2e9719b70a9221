"""Summaries of runs from their journals, for `chaosrunner runs` and the console."""

from __future__ import annotations

from dataclasses import dataclass

from chaosrunner.engine.recovery import leftovers
from chaosrunner.engine.rundir import RunDir, all_runs


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    title: str
    started: str
    status: str  # live | completed | aborted | deviated | failed | refused | dead
    detail: str
    unreverted: int


def summarize(run: RunDir) -> RunSummary:
    events = run.events()
    started = next((event for event in events if event.type == "run_started"), None)
    last = next((event for event in reversed(events) if event.type == "run_finished"), None)
    left = len(leftovers(events))
    if run.is_live():
        status, detail = "live", next((e["phase"] for e in reversed(events) if e.type == "phase"), "")
    elif last is not None:
        status, detail = str(last["status"]), str(last.get("detail", ""))
    else:
        status, detail = (
            "dead",
            "the runner died before finishing" + ("; run `chaosrunner recover`" if left else ""),
        )
    return RunSummary(
        run_id=run.run_id,
        title=str(started["scenario_title"]) if started else "?",
        started=started["time"] if started else "?",
        status=status,
        detail=detail,
        unreverted=left,
    )


def list_runs() -> list[RunSummary]:
    return [summarize(run) for run in all_runs()]
