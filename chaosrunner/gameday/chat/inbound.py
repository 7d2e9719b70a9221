"""Slash commands from Slack and Mattermost: verified, bound to the run's channel, then marks.

No web framework here: ``gameday.server.chat_routes`` reads the bounded raw
body and the headers and hands them to a platform's ``handle``, which answers
with a ``Reply`` (status and JSON). In this order, and nothing is journaled
unless every step passes:

1. The platform vouches for the request (401 otherwise). Slack: the v0
   signature over the raw body (``slack_api.signature_is_valid``: HMAC-SHA256,
   timestamps more than five minutes away refused), and a signature seen
   before is refused too - a replay inside those five minutes would
   otherwise record the same mark twice. Mattermost: the form's ``token`` is
   the slash command's token (compared in constant time).
2. The request comes from the scenario's channel; from another, the author
   is told which channel the gameday is bound to (200, ephemeral).
3. ``commands.parse`` reads the text (Slack's: made plain by
   ``commands.slack_plain`` first); a mark goes through
   ``gameday.marks.record`` - the validation every source shares - with the
   chat user's name as author and the platform as ``source``. A mistake is
   an ephemeral one-line answer (200, so the author sees it).

The author is the person as the channel knows them: with a bot token, Slack's
``user_id`` and every ``<@U...>`` mention become display names through
``users.info`` (``display_names``: cached for the run, all lookups of one
request within 1.5 s together, so Slack's three seconds always hold), falling
back to the ``user_name`` the request carried. Mattermost sends the
``user_name`` people see: it is used as it is.

Each platform's handler does two things, kept apart so ``chat.routing`` (one
``chaosrunner serve --chat`` for every live run) can verify a request once
against several runs' secrets and then hand it to the run whose channel it
came from: ``handle`` verifies and acts, ``act`` acts on a verified form.

Answers are ``{"response_type": "ephemeral", "text": ...}``, the shape both
platforms accept; only the author sees them. Secrets are read once, at run
start, from the variables the scenario names; they are never journaled,
logged or echoed.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from chaosrunner.engine.journal import parse_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import ChaosrunnerError, UsageError
from chaosrunner.gameday.chat.commands import HELP, MarkCommand, Query, parse, slack_mentions, slack_plain
from chaosrunner.gameday.chat.display_names import DisplayNames, slack_display_names
from chaosrunner.gameday.marks import record, responder_events
from chaosrunner.scenario.models import ChatSettings, SlackChat

SIGNATURE_MAX_AGE = 60 * 5  # Slack's window, either side of now (slack_api.SIGNATURE_MAX_AGE)
MAX_REMEMBERED = 10_000  # signatures in one window; only verified requests get this far
MAX_FIELDS = 64  # Slack and Mattermost send about a dozen form fields
MARKS_SHOWN = 8


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, str]


def ephemeral(text: str) -> Reply:
    return Reply(200, {"response_type": "ephemeral", "text": text})


def unauthorized(message: str) -> Reply:
    return Reply(401, {"error": message})


@dataclass
class RunContext:
    """What the commands act on: the run folder, and the live view's latest TTD/TTM when there is one."""

    run: RunDir
    measured: Callable[[], dict[str, Any] | None] | None = None


class Handler(Protocol):
    """One signed route: its path, the body it takes (``form`` or ``json``), and its handling."""

    source: str
    path: str
    content: str

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply: ...


SLACK_COMMANDS = "/chat/slack/commands"
MATTERMOST_COMMANDS = "/chat/mattermost/commands"


class ReplayGuard:
    """The signatures accepted in the last window, each kept until its timestamp is too old to verify.

    Bounded: past ``limit`` live entries a new one is refused rather than
    an old one forgotten (forgetting would let that one be replayed).
    """

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self.limit = limit
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, timestamp: int, now: float) -> bool | None:
        """True the first time, False for a repeat, None when the guard is full."""
        with self._lock:
            # A signature verifies until its timestamp is five minutes old: remember it that long.
            self._expiry = {seen: until for seen, until in self._expiry.items() if until >= now}
            if signature in self._expiry:
                return False
            if len(self._expiry) >= self.limit:
                return None
            self._expiry[signature] = timestamp + SIGNATURE_MAX_AGE
            return True


def read_form(body: bytes) -> dict[str, str]:
    """The form's fields (first value of each); a UsageError for a body that is not one."""
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise UsageError("the body is not a URL-encoded form") from None
    return {name: values[0] for name, values in fields.items()}


def slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as mentions and links: a person's text is shown, never interpreted."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_signed(signing_secret: str, body: bytes, headers: Mapping[str, str], now: float) -> bool:
    """Did Slack sign this request with ``signing_secret``, less than five minutes ago?"""
    from chaosrunner.gameday.chat.slack_api import signature_is_valid

    return signature_is_valid(
        signing_secret,
        body,
        headers.get("x-slack-request-timestamp"),
        headers.get("x-slack-signature"),
        now=now,
    )


BAD_SIGNATURE = "the request's Slack signature is missing, wrong or more than 5 minutes old"


def replay_refusal(replays: ReplayGuard, headers: Mapping[str, str], now: float) -> Reply | None:
    """After the signature verified: refuse it if it was seen before (or the guard is full)."""
    seen = replays.first_time(headers["x-slack-signature"], int(headers["x-slack-request-timestamp"]), now)
    if seen is False:
        return unauthorized("this signed request was already received (a replay)")
    if seen is None:
        return Reply(429, {"error": "too many requests in five minutes"})
    return None


def slack_refusal(
    signing_secret: str, replays: ReplayGuard, body: bytes, headers: Mapping[str, str], now: float
) -> Reply | None:
    """None when Slack signed the request and it is new; else the 401 (or 429) to answer."""
    if not slack_signed(signing_secret, body, headers, now):
        return unauthorized(BAD_SIGNATURE)
    return replay_refusal(replays, headers, now)


@dataclass
class SlackCommands:
    signing_secret: str
    channel: str
    context: RunContext
    replays: ReplayGuard = field(default_factory=ReplayGuard)
    clock: Callable[[], float] = time.time
    names: DisplayNames | None = None  # with a bot token: users.info
    source: str = "slack"
    path: str = SLACK_COMMANDS
    content: str = "form"

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        refusal = slack_refusal(self.signing_secret, self.replays, body, headers, self.clock())
        if refusal is not None:
            return refusal
        try:
            form = read_form(body)
        except UsageError as error:
            return ephemeral(str(error))
        return self.act(form)

    def act(self, form: Mapping[str, str]) -> Reply:
        """A verified command: in the bound channel, names resolved, recorded or answered."""
        if not in_channel(form, self.channel, self.source):
            return answer(form, self.context, source=self.source, bound_to=self.channel, escape=slack_escape)
        text = form.get("text", "")
        user_id = form.get("user_id", "")
        wanted = ([user_id] if user_id else []) + slack_mentions(text)
        known = self.names.resolve(wanted) if self.names is not None and wanted else {}
        return answer(
            form,
            self.context,
            source=self.source,
            bound_to=self.channel,
            escape=slack_escape,
            author=known.get(user_id),
            text=slack_plain(text, known),
        )


@dataclass
class MattermostCommands:
    command_token: str
    channel: str
    context: RunContext
    source: str = "mattermost"
    path: str = MATTERMOST_COMMANDS
    content: str = "form"

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        form = mattermost_form(body)
        if not self.token_matches(form):
            return unauthorized("the request does not carry this slash command's token")
        return self.act(form)

    def token_matches(self, form: Mapping[str, str]) -> bool:
        presented = form.get("token", "").encode("utf-8")
        return bool(presented) and hmac.compare_digest(presented, self.command_token.encode("utf-8"))

    def act(self, form: Mapping[str, str]) -> Reply:
        return answer(form, self.context, source=self.source, bound_to=self.channel)


def mattermost_form(body: bytes) -> dict[str, str]:
    """The form, or nothing (an unreadable body carries no token, so it is refused)."""
    try:
        return read_form(body)
    except UsageError:
        return {}


def in_channel(form: Mapping[str, str], channel: str, source: str) -> bool:
    if source == "slack":  # Slack's channel is configured by id: names change, ids do not
        return form.get("channel_id") == channel
    return channel in (form.get("channel_id"), form.get("channel_name"))


def answer(
    form: Mapping[str, str],
    context: RunContext,
    *,
    source: str,
    bound_to: str,
    escape: Callable[[str], str] = lambda text: text,
    author: str | None = None,
    text: str | None = None,
) -> Reply:
    """The reply to a verified command: record the mark or answer the question.

    ``author`` (a display name) and ``text`` (made plain) when the caller resolved them;
    otherwise the form's ``user_name`` and ``text``."""
    if not in_channel(form, bound_to, source):
        return ephemeral(f"this gameday is bound to {escape(bound_to)}; this channel is not")
    author = author or (form.get("user_name") or form.get("user_id") or "").strip() or "unknown"
    try:
        command = parse(form.get("text", "") if text is None else text)
        if isinstance(command, Query):
            return ephemeral(HELP if command.kind == "help" else escape(run_state(context)))
        recorded = _record(context.run, command, author, source)
    except ChaosrunnerError as error:
        return ephemeral(escape(str(error).splitlines()[0] if str(error) else "refused"))
    return ephemeral(escape(f"recorded: {command.describe()} by {recorded}"))


def _record(run: RunDir, command: MarkCommand, author: str, source: str) -> str:
    event = record(
        run,
        command.mark.value,
        command.value,
        by=author,
        via=command.via.value if command.via is not None else None,
        source=source,
    )
    return event.by


def run_state(context: RunContext, now: datetime | None = None) -> str:
    """``status`` alone: the phase, time since t0, TTD/TTM when measured, the marks so far."""
    current = now or datetime.now(UTC)
    events = list(context.run.events())
    phase = next((event["phase"] for event in reversed(events) if event.type == "phase"), "starting")
    finished = next((event for event in reversed(events) if event.type == "run_finished"), None)
    measured = (context.measured() if context.measured is not None else None) or {}
    lines = [f"run {context.run.run_id}: " + (f"finished ({finished['status']})" if finished else phase)]
    if measured.get("t0"):
        since = (current - parse_time(measured["t0"])).total_seconds()
        lines.append(f"t0+{_duration(since)}")
    else:
        lines.append("no fault in effect yet" if not finished else "")
    lines.append(f"TTD {_seconds(measured.get('ttd_s'))}" + _layer(measured.get("ttd_layer")))
    lines.append(f"TTM {_seconds(measured.get('ttm_s'))}")
    marks = responder_events(events)
    if marks:
        shown = [f"{mark.mark.value} by {mark.by}" for mark in marks[-MARKS_SHOWN:]]
        more = f"{len(marks) - MARKS_SHOWN} earlier, " if len(marks) > MARKS_SHOWN else ""
        lines.append(f"marks: {more}" + ", ".join(shown))
    else:
        lines.append("no marks yet")
    return "; ".join(line for line in lines if line)


def _seconds(value: Any) -> str:
    return _duration(float(value)) if isinstance(value, int | float) else "not measured yet"


def _layer(layer: Any) -> str:
    return f" ({layer})" if isinstance(layer, str) and layer else ""


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def handlers(
    chat: ChatSettings, context: RunContext, environ: Mapping[str, str]
) -> tuple[list[Handler], list[str]]:
    """The platforms to serve for this run, and one warning line per secret named but not set.

    Read once, at run start. A warning names the variable, never a value.
    """
    found: list[Handler] = []
    warnings: list[str] = []
    slack, mattermost = chat.slack, chat.mattermost
    if slack is not None and slack.signing_secret_env:
        secret = environ.get(slack.signing_secret_env, "")
        if secret:
            found.extend(_slack_handlers(secret, slack, context, environ))
        else:
            warnings.append(_unset("chat.slack.signing_secret_env", slack.signing_secret_env, "Slack"))
    if mattermost is not None and mattermost.command_token_env:
        token = environ.get(mattermost.command_token_env, "")
        if token:
            found.append(MattermostCommands(token, mattermost.channel, context))
        else:
            warnings.append(
                _unset("chat.mattermost.command_token_env", mattermost.command_token_env, "Mattermost")
            )
    return found, warnings


def _slack_handlers(
    secret: str, slack: SlackChat, context: RunContext, environ: Mapping[str, str]
) -> list[Handler]:
    """The slash command and the :stopwatch: events, sharing one replay guard and, with a bot
    token, one cache of display names and the message reader."""
    from chaosrunner.gameday.chat.reactions import SlackReactions, slack_reader

    token = environ.get(slack.bot_token_env, "") if slack.bot_token_env else ""
    names = slack_display_names(token, slack.api_url) if token else None
    reader = slack_reader(token, slack.api_url) if token else None
    replays = ReplayGuard()
    return [
        SlackCommands(secret, slack.channel, context, replays=replays, names=names),
        SlackReactions(secret, slack.channel, context, reader=reader, names=names, replays=replays),
    ]


def _unset(field_name: str, variable: str, platform: str) -> str:
    return (
        f"chat: {field_name} names {variable}, which is not set: /gameday from {platform} is off for this run"
    )
