"""The experiment's verdict, kept apart from the team's score.

Did the hypothesis hold, did the run abort (and why), did the faults stay
inside their blast radius and come out cleanly? A facilitator needs both
answers side by side: "the system failed, the team did great" is a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExperimentVerdict:
    status: str  # completed | aborted | deviated | failed | refused | unfinished
    hypothesis_held: bool
    abort_cause: str | None
    abort_detail: str | None
    blast_radius_contained: bool
    targets_hit: int
    detail: str


def experiment_verdict(events: list[dict[str, Any]]) -> ExperimentVerdict:
    finished = next((event for event in reversed(events) if event["type"] == "run_finished"), None)
    abort = next((event for event in events if event["type"] == "abort"), None)
    planned = [event for event in events if event["type"] == "fault_planned"]
    revert_failed = any(event["type"] == "fault_revert_failed" for event in events)
    reverted = {event["fault"] for event in events if event["type"] == "fault_reverted"}
    injected = {event["fault"] for event in events if event["type"] in ("fault_injecting", "fault_injected")}
    status = str(finished["status"]) if finished else "unfinished"
    contained = not revert_failed and injected <= reverted
    return ExperimentVerdict(
        status=status,
        hypothesis_held=status == "completed",
        abort_cause=str(abort["cause"]) if abort else None,
        abort_detail=str(abort["detail"]) if abort else None,
        blast_radius_contained=contained,
        targets_hit=sum(len(event["targets"]) for event in planned if event["fault"] in injected),
        detail=str(finished.get("detail", "")) if finished else "the run has not finished",
    )
