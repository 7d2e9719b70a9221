"""What the team types after ``/gameday`` in the channel: a mark to record, or a question.

Pure text in, a ``MarkCommand`` or a ``Query`` out; a mistake is a
``UsageError`` whose one line the author sees in the channel. The words
follow ``chaosrunner mark`` (``gameday.responder``), with the spellings
people use in chat on top: ``sev`` for ``severity``, ``real-user`` for
``real_user``, and Slack's mention syntax for ``ic``. What a mark's value may
be (P1-P3, text present or not) is checked again by ``gameday.marks``, the
one validation every source shares.

Slack sends the text with its own markup: what the person typed has ``&``,
``<`` and ``>`` escaped (``&amp;``, ``&lt;``, ``&gt;``), so every literal
``<...>`` is Slack's - a mention ``<@U123|maria>`` or ``<@U123>``, a channel,
a link. ``slack_plain`` turns that into the plain text ``parse`` reads
(mentions as ``@display name``) and un-escapes the rest, in one pass, so
what someone typed is data and never becomes a mention or a link:
``&lt;@U1&gt;`` typed by hand stays the text ``<@U1>``.

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
from collections.abc import Mapping
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

# Slack's markup: <@U123|name> or <@U123> (a person), <#C123|name> (a channel), <!here>, <URL|label>;
# and the three escapes it applies to what people typed.
_SLACK_MARKUP = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_SLACK_USER = re.compile(r"@([UW][A-Z0-9]{1,20})(?:\|(.*))?", re.DOTALL)
_UNESCAPED = {"amp": "&", "lt": "<", "gt": ">"}
_NAME = re.compile(r"@?([\w.\-]+(?: [\w.\-]+)*)")
# After ``@``, a display name as Slack shows it: anything printable but markup's brackets.
_AT_NAME = re.compile(r"@([^<>@\x00-\x1f\x7f]{1,80})")

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
    """The incident commander: ``@name`` (a mention, as ``slack_plain`` writes it) or a plain name."""
    named = _NAME.fullmatch(rest) or _AT_NAME.fullmatch(rest)
    if not named or not named.group(1).strip():
        raise UsageError("expected `ic @someone`")
    return named.group(1).strip()


def slack_mentions(text: str) -> list[str]:
    """The user ids of the people mentioned in Slack's text, first mention first, each once."""
    found: list[str] = []
    for markup in _SLACK_MARKUP.finditer(text):
        user = _SLACK_USER.fullmatch(markup.group(1) or "")
        if user and user.group(1) not in found:
            found.append(user.group(1))
    return found


def slack_plain(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack's text as people read it: a mention is ``@`` and the display name (``names`` by user
    id, else the name inside the mention, else the id), a channel ``#name``, a link its label and
    address; ``&amp;``, ``&lt;`` and ``&gt;`` are what was typed. ``<!here>``-style markup stays as
    its literal text: never a ping. One pass, so nothing un-escaped is read as markup again."""
    known = names or {}

    def plain(markup: re.Match[str]) -> str:
        entity = markup.group(2)
        if entity is not None:
            return _UNESCAPED[entity]
        inside = markup.group(1)
        user = _SLACK_USER.fullmatch(inside)
        if user:
            user_id, label = user.groups()
            return "@" + (known.get(user_id) or (label or "").strip() or user_id)
        if inside.startswith("#"):
            channel, _, label = inside[1:].partition("|")
            return "#" + (label or channel)
        if inside.startswith("!"):
            return markup.group(0)
        address, _, label = inside.partition("|")
        return f"{label} ({address})" if label and label != address else address

    return _SLACK_MARKUP.sub(plain, text)
