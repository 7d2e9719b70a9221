"""What a chat message means for the score: a mark, or (far more often) nothing.

Pure: one ``ChatMessage`` in, a ``Recognised`` mark or None out. It reads
what an incident channel really holds:

- ``/gameday ...`` typed as text (a command that reached the channel as a
  message): read by the slash command's own parser (``chat.commands``);
- a severity: "sev P1", "sev1", "severity: P2", "this is a P1";
- an incident commander: "I'm IC", "I'll be incident commander" (the author),
  "IC: @x", "@x is IC" (the person mentioned);
- a status update: a message starting "status update", or one with at least
  three of the four parts the scorer looks for (``scoring.UPDATE_PARTS``);
- "mitigated", "impact is over"; "root cause: ..."; "escalating to ...".

Conservative on purpose: a false mark is worse than a missing one (a
severity nobody declared would pass a criterion the team failed). So a
question ("is this a P1?"), a negation or a condition ("not mitigated yet",
"once mitigated") recognises nothing, and "we're seeing errors" or
"detected" in plain language are too vague to be a detection: detection is
measured from the alerts, or from an explicit ``/gameday detected``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chaosrunner.errors import UsageError
from chaosrunner.gameday.chat.commands import MarkCommand, parse
from chaosrunner.gameday.chat.exports import ChatMessage
from chaosrunner.gameday.responder import Mark, Via
from chaosrunner.gameday.scoring import UPDATE_PARTS, missing_parts

MAX_VALUE = 1000
"""A status update is a paragraph; a whole pasted log is not a mark's value."""


@dataclass(frozen=True)
class Recognised:
    mark: Mark
    value: str = ""
    via: Via | None = None


_COMMAND = re.compile(r"^\s*/gameday\b\s*(.*)$", re.I | re.S)
_LEADING_NOISE = re.compile(r"^(?::[a-z0-9_+-]+:|[\W_])*", re.I)  # *bold*, emoji, ":rotating_light:"
_STATUS_LEAD = re.compile(r"^status update\b", re.I)
_SEVERITY = (
    re.compile(r"\bsev(?:erity)?\s*(?:[:=]|is)?\s*P?([123])\b", re.I),  # sev P1, sev1, severity: P2
    re.compile(r"\b(?:this is an?|declar(?:e|ed|ing)(?: an?)?(?: sev(?:erity)?)?)\s+P([123])\b", re.I),
)
_SELF_IC = re.compile(
    r"\b(?:i'?m|i am|i'll be|i will be|i'm taking|i am taking|taking)\s+(?:the\s+)?"
    r"(?:ic|incident commander)\b",
    re.I,
)
_NAMED_IC = re.compile(r"\b(?:ic|incident commander)\s*(?::|=|is|will be)\s*@", re.I)
_IC_NAMED = re.compile(r"@(\S[^@]*?)\s+(?:is|will be)\s+(?:the\s+)?(?:ic|incident commander)\b", re.I)
_MITIGATED = re.compile(r"\b(?:mitigated|impact is over|impact has stopped)\b", re.I)
_CAUSE = re.compile(r"\broot cause\s*(?::|is|was)\s*(.+)", re.I | re.S)
_ESCALATING = re.compile(r"\b(?:escalating|escalated)\s+(?:this\s+)?to\b", re.I)
_NEGATION = re.compile(
    r"\b(?:not|no|never|nothing|yet|once|until|till|if|when|whether|before|partially|partly|almost|"
    r"should|could|would|can|might|maybe)\b|n't\b",
    re.I,
)
_VAGUE_CAUSE = re.compile(r"^(?:unknown|unclear|tbd|tbc|n/?a|\?+|not (?:yet )?(?:known|sure|clear))\b", re.I)
_NAME_CHARS = re.compile(r"[\w.\-]+")


def recognise(message: ChatMessage) -> Recognised | None:
    """The mark this message makes, or None; bots' messages never make one."""
    text = message.text.replace("\u2019", "'").strip()  # chat clients type a curly apostrophe
    if message.bot or not text:
        return None
    command = _COMMAND.match(text)
    if command:
        return _command(command.group(1))
    lead = _LEADING_NOISE.sub("", text)
    if _STATUS_LEAD.match(lead) or len(UPDATE_PARTS) - len(missing_parts(text)) >= 3:
        return Recognised(Mark.STATUS, _bounded(text))
    for find in (_severity, _incident_commander, _mitigated, _escalated, _cause):
        found = find(text, message)
        if found is not None:
            return found
    return None


def _command(rest: str) -> Recognised | None:
    try:
        command = parse(rest)
    except UsageError:
        return None  # a mistyped command did not record anything live either
    if not isinstance(command, MarkCommand):
        return None  # help, or `status` alone: a question
    return Recognised(command.mark, _bounded(command.value or ""), command.via)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def _clause(text: str, start: int, end: int) -> tuple[str, bool]:
    """The words of the clause before ``start`` and whether the sentence around the match is a question."""
    begin = max(text.rfind(mark, 0, start) for mark in (".", "!", "?", "\n", ";", ","))
    stop = min(
        (i for i in (text.find(mark, end) for mark in (".", "!", "?", "\n")) if i >= 0), default=len(text)
    )
    return text[begin + 1 : start], text[stop : stop + 1] == "?"


def _asserted(text: str, match: re.Match[str], *, then: bool = True) -> bool:
    """The match is said, not asked, denied or made conditional (``then``: nor by the word after it)."""
    before, question = _clause(text, match.start(), match.end())
    if question or _NEGATION.search(before):
        return False
    return not (then and _NEGATION.match(text[match.end() :].strip()))


def _severity(text: str, message: ChatMessage) -> Recognised | None:
    for pattern in _SEVERITY:
        match = pattern.search(text)
        if match is not None and _asserted(text, match):
            return Recognised(Mark.SEVERITY, f"P{match.group(1)}")
    return None


def _incident_commander(text: str, message: ChatMessage) -> Recognised | None:
    match = _SELF_IC.search(text)
    if match is not None and _asserted(text, match):
        return Recognised(Mark.IC, message.author)
    match = _NAMED_IC.search(text)
    if match is not None and _asserted(text, match):
        name = _mentioned(text, match.end() - 1, message)
        return Recognised(Mark.IC, name) if name else None
    match = _IC_NAMED.search(text)
    if match is not None and _asserted(text, match):
        name = _mentioned(text, match.start(), message)
        return Recognised(Mark.IC, name) if name else None
    return None


def _mentioned(text: str, at: int, message: ChatMessage) -> str | None:
    """The name of the @mention starting at ``at``: a known display name (which may hold spaces) first."""
    for name in sorted(message.mentions, key=len, reverse=True):
        if text.startswith(f"@{name}", at):
            return name
    word = _NAME_CHARS.match(text, at + 1)
    return (word.group(0).rstrip(".-") or None) if word else None


def _mitigated(text: str, message: ChatMessage) -> Recognised | None:
    match = _MITIGATED.search(text)
    return Recognised(Mark.MITIGATED) if match is not None and _asserted(text, match) else None


def _escalated(text: str, message: ChatMessage) -> Recognised | None:
    match = _ESCALATING.search(text)
    return Recognised(Mark.ESCALATED) if match is not None and _asserted(text, match) else None


def _cause(text: str, message: ChatMessage) -> Recognised | None:
    match = _CAUSE.search(text)
    if match is None or not _asserted(text, match, then=False):
        return None
    cause = " ".join(match.group(1).split())
    if not cause or cause.endswith("?") or _VAGUE_CAUSE.match(cause):
        return None
    return Recognised(Mark.CAUSE, _bounded(cause))
