"""The blameless postmortem skeleton: five-whys prompts seeded from the run.

The report gives the team the facts (timeline, impact, the response's
findings); the root-cause analysis is theirs to write. In an experiment
the proximate cause is known - we injected it - so the first "why" is
answered from the journal, and the later ones ask past it towards the
enabling conditions the reference practice asks for: the missing
safeguard, the detection gap, the slow mitigation, the process that let
the weakness ship. Each prompt asks about systems and processes, never
about who.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosrunner.report import fmt
from chaosrunner.report.model import Report

BLAMELESS = (
    "Blameless: incidents come from systems and processes, not individual error. "
    "Write each answer about what made the failure possible, never about who."
)


@dataclass(frozen=True)
class Why:
    question: str
    known: str | None  # what the run already tells us, if anything
    prompt: str  # what the team should think about when answering


def five_whys(report: Report) -> list[Why]:
    m = report.measurement
    faults = report.fault_windows
    injected = "; ".join(
        f"{fault.name} ({fault.kind}{': ' + fault.summary if fault.summary else ''})" for fault in faults
    )
    hypothesis = report.scenario.metadata.hypothesis.strip()
    held = report.verdict.hypothesis_held
    layer = fmt.human(m.detection_layer or "unknown")
    detect_known = (
        f"Detected after {fmt.duration(m.ttd)} by {layer}: {m.detection.how}."
        if m.ttd is not None
        else "It was not detected."
    )
    mitigate_known = (
        f"Mitigated after {fmt.duration(m.ttm)}: {m.mitigation.how}."
        if m.ttm is not None
        else m.mitigation.how
    )
    return [
        Why(
            "Why did users see an impact?",
            f"The experiment injected {injected}." if faults else "No fault was injected.",
            "Describe the failure as users experienced it, from the timeline and the impact figures.",
        ),
        Why(
            "Why did the system not absorb the fault?",
            f"The hypothesis was: {hypothesis} It {'held' if held else 'did not hold'}.",
            "Which safeguard - timeout, retry budget, circuit breaker, pool limit, failover - was "
            "missing, misconfigured or too slow?",
        ),
        Why(
            "Why was it detected when it was, and that way?",
            detect_known,
            "Which signal would have shown it earlier, or from the user's side? Was the alert's `for` "
            "or threshold right?",
        ),
        Why(
            "Why did mitigation take as long as it did?",
            mitigate_known,
            "What did the team need and not have: a runbook, a one-command rollback, access, a clear owner?",
        ),
        Why(
            "Why were those conditions in place?",
            None,
            "Which process or design decision let the weakness reach this system, and what would have "
            "caught it: a test, a review, a gradual rollout, a gameday like this one?",
        ),
    ]
