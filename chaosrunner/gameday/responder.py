"""Responder events: what the team says and does during a gameday, as journal data.

``chaosrunner mark RUN_ID EVENT``, the live HTTP endpoint and the demo's
scripted responder all produce the same ``responder`` journal event, so the
scorer reads one shape whatever the source:

=============  ==================================================  ===============
event          meaning                                             value
=============  ==================================================  ===============
detected       someone noticed (``via`` says how)                  -
mitigated      user impact has stopped                             -
resolved       the root cause is fixed                             -
escalated      the incident was escalated                          -
severity       severity declared                                   P1 | P2 | P3
ic             incident commander named                            the IC's name
status         a status update                                     its text
change         a production change someone made                    what changed
cause          root cause declared                                 the cause
note           anything else worth keeping                         the note
=============  ==================================================  ===============

Each event carries ``at`` (when it happened; ``--at`` for late entries) and
``by`` (who), and optionally ``role``: the person's part in the gameday
(facilitator, incident_commander, responder), journaled only when given.
``via`` applies to ``detected``: a monitoring layer (synthetic, real_user,
infrastructure), a ``human`` noticing, or a ``user_report``. ``source`` says
where a mark came from when it was not a person at the runner's own tools:
``slack`` or ``mattermost`` for a chat command, journaled only when given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from chaosrunner.durations import parse_duration
from chaosrunner.engine.journal import format_time, parse_time
from chaosrunner.errors import UsageError


class Mark(StrEnum):
    DETECTED = "detected"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    SEVERITY = "severity"
    IC = "ic"
    STATUS = "status"
    CHANGE = "change"
    CAUSE = "cause"
    NOTE = "note"


class Via(StrEnum):
    SYNTHETIC = "synthetic"
    REAL_USER = "real_user"
    INFRASTRUCTURE = "infrastructure"
    HUMAN = "human"
    USER_REPORT = "user_report"

    @property
    def is_monitoring(self) -> bool:
        return self in (Via.SYNTHETIC, Via.REAL_USER, Via.INFRASTRUCTURE)


class Role(StrEnum):
    """Who someone is in the room; observers watch and never mark, so they are not a role here."""

    FACILITATOR = "facilitator"
    INCIDENT_COMMANDER = "incident_commander"
    RESPONDER = "responder"


def parse_role(role: str | None) -> Role | None:
    """A role name, or None when not given; anything else is a UsageError (exit 2)."""
    if role is None or role == "":
        return None
    try:
        return Role(role)
    except ValueError:
        raise UsageError(f"role {role!r}: expected one of: {', '.join(r.value for r in Role)}") from None


NEEDS_VALUE = {Mark.SEVERITY, Mark.IC, Mark.STATUS, Mark.CHANGE, Mark.CAUSE, Mark.NOTE}
SEVERITIES = ("P1", "P2", "P3")


@dataclass(frozen=True)
class ResponderEvent:
    mark: Mark
    at: datetime
    by: str
    value: str = ""
    via: Via | None = None
    role: Role | None = None
    source: str | None = None  # the chat platform a mark came from; None for the CLI, page and API
    quote: str | None = None  # an imported mark's message as written (gameday.chat.imported)

    def as_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "event": self.mark.value,
            "at": format_time(self.at),
            "by": self.by,
            "value": self.value,
        }
        if self.via is not None:
            fields["via"] = self.via.value
        if self.role is not None:
            fields["role"] = self.role.value
        if self.source is not None:
            fields["source"] = self.source
        return fields

    @classmethod
    def from_journal(cls, event: dict[str, Any]) -> ResponderEvent:
        return cls(
            mark=Mark(event["event"]),
            at=parse_time(event["at"]),
            by=str(event.get("by", "")),
            value=str(event.get("value", "")),
            via=Via(event["via"]) if event.get("via") else None,
            role=Role(event["role"]) if event.get("role") in _ROLE_NAMES else None,
            source=str(event["source"]) if event.get("source") else None,
            quote=str(event["quote"]) if event.get("quote") else None,
        )


_ROLE_NAMES = frozenset(role.value for role in Role)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_at(text: str | None, now: datetime | None = None) -> datetime:
    """When a mark happened: now, ISO 8601, HH:MM[:SS] today (UTC), or a duration ago (-5m)."""
    current = now or datetime.now(UTC)
    if text is None or text == "now":
        return current
    if text.startswith("-"):
        try:
            return current - parse_duration(text[1:])
        except ValueError as error:
            raise UsageError(f"--at {text!r}: {error}") from None
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = (int(part) if part else 0 for part in clock.groups())
        try:
            return current.replace(hour=hours, minute=minutes, second=seconds, microsecond=0)
        except ValueError:
            raise UsageError(f"--at {text!r}: not a time of day") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--at {text!r}: expected now, an ISO time (2026-11-27T14:32:00Z), HH:MM[:SS] (UTC) or -5m"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_event(
    mark: str,
    value: str | None,
    *,
    by: str,
    at: datetime,
    via: str | None,
    run_started: datetime,
    now: datetime | None = None,
    role: str | None = None,
    source: str | None = None,
) -> ResponderEvent:
    """Validate one responder event; every problem is a UsageError (exit 2)."""
    try:
        kind = Mark(mark)
    except ValueError:
        raise UsageError(
            f"unknown event {mark!r}; expected one of: {', '.join(m.value for m in Mark)}"
        ) from None
    current = now or datetime.now(UTC)
    if at > current + timedelta(seconds=1):
        raise UsageError(f"--at {at.isoformat()} is in the future; marks record what already happened")
    if at < run_started - timedelta(seconds=1):
        raise UsageError(f"--at {at.isoformat()} is before the run started ({run_started.isoformat()})")
    text = (value or "").strip()
    if kind in NEEDS_VALUE and not text:
        raise UsageError(f"`{kind.value}` needs a value, e.g. " + _EXAMPLES[kind])
    if kind not in NEEDS_VALUE and text:
        raise UsageError(f"`{kind.value}` takes no value (got {text!r}); use `note` for free text")
    if kind is Mark.SEVERITY:
        text = text.upper()
        if text not in SEVERITIES:
            raise UsageError(f"severity must be P1, P2 or P3, not {value!r}")
    layer = None
    if via is not None:
        if kind is not Mark.DETECTED:
            raise UsageError("--via only applies to `detected`")
        try:
            layer = Via(via)
        except ValueError:
            raise UsageError(f"--via {via!r}: expected one of: {', '.join(v.value for v in Via)}") from None
    elif kind is Mark.DETECTED:
        layer = Via.HUMAN
    return ResponderEvent(
        mark=kind,
        at=at,
        by=by.strip() or "unknown",
        value=text,
        via=layer,
        role=parse_role(role),
        source=source or None,
    )


_EXAMPLES = {
    Mark.SEVERITY: "`severity P2`",
    Mark.IC: "`ic alice`",
    Mark.STATUS: '`status "checkout errors at 20%; hypothesis: pool exhausted; '
    '@bob checking db; next update 10m"`',
    Mark.CHANGE: '`change "restarted the checkout pool"`',
    Mark.CAUSE: '`cause "connection leak in v2.3.1"`',
    Mark.NOTE: '`note "vendor paged"`',
}
