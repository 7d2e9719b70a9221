"""What the team types after ``/gameday`` in the channel: a mark to record, or a question.

Pure text in, a ``MarkCommand`` or a ``Query`` out; a mistake is a
``UsageError`` whose one line the author sees in the channel. The words
follow ``chaosrunner mark`` (``gameday.responder``), with the spellings
people use in chat on top: ``sev`` for ``severity``, ``real-user`` for
``real_user``, and Slack's mention syntax for ``ic``. What a mark's value may
be (P1-P3, text present or not) is checked again by ``gameday.marks``, the
one validation every source shares.

    detected [via LAYER]    LAYER: synthetic | real_user | infrastructure | human | user_report
    sev P1|P2|P3            (also: severity)
    ic @someone
    status TEXT             a status update; ``status`` alone shows the run's state
    change TEXT | cause TEXT | note TEXT
    mitigated | escalated
    help
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chaosrunner.errors import UsageError
from chaosrunner.gameday.responder import SEVERITIES, Mark, Via

MAX_TEXT = 3000  # a status update is a paragraph; Slack's own message limit is far above what a mark needs


@dataclass(frozen=True)
class MarkCommand:
    """A mark to journal: ``mark`` is a ``gameday.responder.Mark`` value."""

    mark: Mark
    value: str | None = None
    via: Via | None = None

    def describe(self) -> str:
        """How the confirmation names it: ``sev P1``, ``detected via infrastructure``, ``note "..."``."""
        word = "sev" if self.mark is Mark.SEVERITY else self.mark.value
        if self.via is not None:
            return f"{word} via {self.via.value}"
        if self.value is None:
            return word
        if self.mark in (Mark.SEVERITY, Mark.IC):
            return f"{word} {self.value}"
        shown = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        return f'{word} "{shown}"'


@dataclass(frozen=True)
class Query:
    """A question that records nothing: ``help``, or ``status`` alone (the run's state)."""

    kind: Literal["help", "state"]


Command = MarkCommand | Query

LAYERS = {
    "synthetic": Via.SYNTHETIC,
    "real_user": Via.REAL_USER,
    "real-user": Via.REAL_USER,
    "infrastructure": Via.INFRASTRUCTURE,
    "human": Via.HUMAN,
    "user_report": Via.USER_REPORT,
    "user-report": Via.USER_REPORT,
}
# The words that take text after them, as the chat spells them.
TEXT_MARKS = {"status": Mark.STATUS, "change": Mark.CHANGE, "cause": Mark.CAUSE, "note": Mark.NOTE}
BARE_MARKS = {"mitigated": Mark.MITIGATED, "escalated": Mark.ESCALATED}
WORDS = ("detected", "sev", "ic", "status", "change", "cause", "note", "mitigated", "escalated", "help")

# Slack writes a mention as <@U123|name> (or <@U123> in newer clients); Mattermost and people type @name.
_SLACK_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
_NAME = re.compile(r"@?([\w.\-]+(?: [\w.\-]+)*)")

HELP = "\n".join(
    [
        "/gameday detected [via synthetic|real_user|infrastructure|human|user_report]",
        "/gameday sev P1|P2|P3",
        "/gameday ic @someone",
        "/gameday status TEXT  (what is affected; current hypothesis; who does what; next update)",
        "/gameday status  (alone: the run's state)",
        "/gameday change TEXT | cause TEXT | note TEXT",
        "/gameday mitigated | escalated",
    ]
)


def parse(text: str) -> Command:
    """The command in ``text`` (what follows ``/gameday``); a UsageError naming the mistake."""
    stripped = " ".join(text.split())  # chat clients send newlines and runs of spaces as typed
    if len(stripped) > MAX_TEXT:
        raise UsageError(f"too long: keep a command under {MAX_TEXT} characters")
    word, _, rest = stripped.partition(" ")
    word = word.lower()
    if word in ("", "help"):
        return Query("help")
    if word == "detected":
        return MarkCommand(Mark.DETECTED, via=_layer(rest))
    if word in ("sev", "severity"):
        return MarkCommand(Mark.SEVERITY, _severity(rest))
    if word == "ic":
        return MarkCommand(Mark.IC, _person(rest))
    if word == "status" and not rest:
        return Query("state")
    if word in TEXT_MARKS:
        if not rest:
            raise UsageError(f"`{word}` needs text, e.g. /gameday {word} restarted the checkout pool")
        return MarkCommand(TEXT_MARKS[word], rest)
    if word in BARE_MARKS:
        if rest:
            raise UsageError(f"`{word}` takes nothing after it; use `note` for free text")
        return MarkCommand(BARE_MARKS[word])
    raise UsageError(f"unknown command {word!r}; try: {', '.join(WORDS)}")


def _layer(rest: str) -> Via:
    if not rest:
        return Via.HUMAN
    words = rest.split(" ")
    if words[0].lower() != "via" or len(words) != 2:
        raise UsageError("expected `detected` or `detected via LAYER`")
    layer = LAYERS.get(words[1].lower())
    if layer is None:
        raise UsageError(f"via {words[1]!r}: expected one of {', '.join(sorted(LAYERS))}")
    return layer


def _severity(rest: str) -> str:
    level = rest.upper()
    if level not in SEVERITIES:
        raise UsageError(f"severity must be P1, P2 or P3, not {rest!r}" if rest else "sev needs P1, P2 or P3")
    return level


def _person(rest: str) -> str:
    """The incident commander's display name, from a Slack mention, ``@name`` or a plain name."""
    mention = _SLACK_MENTION.fullmatch(rest)
    if mention:
        user_id, name = mention.groups()
        return name.strip() if name and name.strip() else user_id
    named = _NAME.fullmatch(rest)
    if not named:
        raise UsageError("expected `ic @someone`")
    return named.group(1)
