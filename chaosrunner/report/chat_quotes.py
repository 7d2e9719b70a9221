"""The messages a communication finding was scored from, quoted in its evidence.

A mark imported from the team's chat (``gameday.chat.imported``) carries the
message it was read from. A postmortem reader who sees "severity declared"
passed on an import should see what was actually written - "this is a P1,
payments are failing" - and judge the reading, so each finding about
communication gets one evidence line per imported mark it used, saying where
it came from. A message the evidence already quotes in full (a status
update's value is its text) is not repeated.
"""

from __future__ import annotations

from dataclasses import replace

from chaosrunner.gameday.debrief import Debrief
from chaosrunner.gameday.responder import Mark, ResponderEvent
from chaosrunner.gameday.scoring import Finding, Score
from chaosrunner.report import fmt

PLATFORMS = {"slack-export": "Slack", "mattermost-export": "Mattermost"}
QUOTED: dict[str, tuple[Mark, ...]] = {
    "severity_declared": (Mark.SEVERITY,),
    "incident_commander": (Mark.IC,),
    "status_updates": (Mark.STATUS,),
    "escalation": (Mark.ESCALATED,),
    "mitigation_before_root_cause": (Mark.MITIGATED, Mark.CAUSE),
}
"""Which marks each finding is scored from."""


def imported_from(source: str | None) -> str | None:
    """``Slack`` or ``Mattermost`` for a mark imported from that platform's export; None for a live one."""
    return PLATFORMS.get(source or "")


def quote_line(mark: ResponderEvent) -> str:
    return (
        f'{fmt.clock(mark.at)} {mark.by} wrote (imported from {imported_from(mark.source)}): "{mark.quote}"'
    )


def _quoted(finding: Finding, marks: list[ResponderEvent]) -> Finding:
    kinds = QUOTED.get(finding.criterion, ())
    lines = [
        quote_line(mark)
        for mark in marks
        if mark.mark in kinds
        and mark.quote
        and imported_from(mark.source)
        and not any(mark.quote in line for line in finding.evidence)
    ]
    return replace(finding, evidence=finding.evidence + tuple(lines)) if lines else finding


def with_chat_quotes(result: Debrief) -> Debrief:
    """The debrief with its communication findings quoting the imported messages they used."""
    marks = result.measurement.marks
    if not any(imported_from(mark.source) for mark in marks):
        return result
    return replace(result, score=Score([_quoted(finding, marks) for finding in result.score.findings]))
