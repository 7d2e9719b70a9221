"""One chat endpoint for every live gameday: the channel a run is bound to picks it.

A Slack app (or a Mattermost slash command) has one request URL, but a team
may run several gamedays at once, each bound to its own channel. Each run's
own server answers for that run only; ``chaosrunner serve --chat`` answers
``/chat/slack/commands``, ``/chat/slack/events`` and
``/chat/mattermost/commands`` for all of them, so the platform can point at
one address that outlives any single run:

1. The live gameday runs are the state folder's runs whose runner holds its
   lock (``RunDir.is_live``) and whose journal says ``mode: gameday``; each
   one's chat settings are in its ``run_started`` event (the scenario as it
   ran). Their handlers are made once per run (``inbound.handlers``) with
   the secrets read from *this* process's environment, by the variable names
   each scenario gives - so ``serve`` needs the same variables the runs had.
   A run that is no longer live is forgotten.
2. A request is verified against the secret of every gameday run in the
   state folder, live or finished (a Slack app's signing secret is usually
   the same for all of them; different apps work too): none verifies, 401
   and nothing journaled. Finished runs count here so that the team, typing
   in a channel whose gameday has ended, is told so rather than refused.
   One replay guard for all.
3. Among the live runs whose secret verified it, the one bound to the
   request's channel records it, through the same handler a run's own
   server uses (the same validation, display names, :stopwatch: notes).
   When two live runs are bound to one channel, the newest one takes it. A
   channel no live run is bound to: "no gameday is live in this channel"
   (ephemeral; nothing journaled).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from chaosrunner.engine.journal import JournalEvent, read_events
from chaosrunner.engine.rundir import RunDir, all_runs
from chaosrunner.errors import UsageError
from chaosrunner.gameday.chat.inbound import (
    BAD_SIGNATURE,
    MATTERMOST_COMMANDS,
    SLACK_COMMANDS,
    Handler,
    MattermostCommands,
    ReplayGuard,
    Reply,
    RunContext,
    SlackCommands,
    ephemeral,
    handlers,
    in_channel,
    mattermost_form,
    read_form,
    replay_refusal,
    slack_signed,
    unauthorized,
)
from chaosrunner.gameday.chat.reactions import SLACK_EVENTS, SlackReactions, read_event
from chaosrunner.scenario.models import ChatSettings

log = logging.getLogger("chaosrunner.chat")

NO_GAMEDAY_HERE = "no gameday is live in this channel"


@dataclass
class _Known:
    """A run seen before: its handlers (none when it has no chat, or is not a gameday)."""

    handlers: list[Handler]


class LiveGamedays:
    """The state folder's gameday runs: the live ones' handlers (newest first), every one's secrets."""

    def __init__(self, environ: Mapping[str, str], runs: Callable[[], list[RunDir]] = all_runs) -> None:
        self.environ = environ
        self._runs = runs
        self._chat: dict[str, ChatSettings | None] = {}  # by run id: a journal's first event never changes
        self._known: dict[str, _Known] = {}
        self._lock = threading.RLock()

    def handlers(self) -> list[Handler]:
        """Every live run's handlers, the newest run's first."""
        live = [run for run in reversed(self._runs()) if run.is_live()]
        with self._lock:
            for run_id in set(self._known) - {run.run_id for run in live}:
                _close(self._known.pop(run_id).handlers)  # finished: its names and reactions go with it
            found: list[Handler] = []
            for run in live:
                known = self._known.get(run.run_id)
                if known is None:
                    made = self._handlers_of(run)
                    if run.run_id not in self._chat:
                        continue  # no run_started yet: nothing to remember about it
                    known = self._known[run.run_id] = _Known(made)
                found.extend(known.handlers)
            return found

    def slack_secrets(self) -> set[str]:
        """The signing secrets of every gameday run here, live or not, that this environment holds."""
        return {
            self.environ.get(chat.slack.signing_secret_env, "")
            for chat in self._every_chat()
            if chat.slack is not None and chat.slack.signing_secret_env
        } - {""}

    def mattermost_tokens(self) -> set[str]:
        """The same for Mattermost's command tokens."""
        return {
            self.environ.get(chat.mattermost.command_token_env, "")
            for chat in self._every_chat()
            if chat.mattermost is not None and chat.mattermost.command_token_env
        } - {""}

    def _every_chat(self) -> list[ChatSettings]:
        return [chat for run in self._runs() if (chat := self._chat_of(run)) is not None]

    def _chat_of(self, run: RunDir) -> ChatSettings | None:
        with self._lock:
            if run.run_id not in self._chat:
                first = _first_event(run)
                if first is None:
                    return None  # a run this moment old has not journaled run_started yet: ask again later
                self._chat[run.run_id] = _chat_in(first)
            return self._chat[run.run_id]

    def _handlers_of(self, run: RunDir) -> list[Handler]:
        chat = self._chat_of(run)
        if chat is None:
            return []
        made, warnings = handlers(chat, RunContext(run), self.environ)
        for warning in warnings:  # a variable's name, never its value
            log.warning("run %s: %s", run.run_id, warning)
        return made

    def close(self) -> None:
        with self._lock:
            for known in self._known.values():
                _close(known.handlers)
            self._known.clear()


def _first_event(run: RunDir) -> JournalEvent | None:
    try:
        return next(read_events(run.journal_path), None)  # the first line only, not the whole journal
    except OSError:
        return None


def _chat_in(first: JournalEvent) -> ChatSettings | None:
    """The chat settings of a gameday run, from its ``run_started``; None for anything else."""
    if first.type != "run_started" or first.get("mode") != "gameday":
        return None
    scenario = first.get("scenario")
    document = scenario.get("chat") if isinstance(scenario, dict) else None
    if not isinstance(document, dict):
        return None
    try:
        chat = ChatSettings.model_validate(document)
    except ValueError:  # a journal from another version: that run cannot be routed to
        return None
    return chat if chat.slack is not None or chat.mattermost is not None else None


def _close(found: list[Handler]) -> None:
    for handler in found:
        closing = getattr(handler, "close", None)
        if closing is not None:
            closing()
        names = getattr(handler, "names", None)
        if names is not None:
            names.close()


def _signing(secrets: set[str], body: bytes, headers: Mapping[str, str], now: float) -> set[str]:
    """Which of ``secrets`` signed the request (at most one, unless two runs share a secret)."""
    return {secret for secret in secrets if slack_signed(secret, body, headers, now)}


H = TypeVar("H", SlackCommands, SlackReactions)


def _verified(
    live: LiveGamedays,
    replays: ReplayGuard,
    kind: type[H],
    body: bytes,
    headers: Mapping[str, str],
    now: float,
) -> list[H] | Reply:
    """The live runs' ``kind`` handlers whose secret signed the request, or the refusal to answer
    (401 when no secret signed it, the replay guard's answer for a request seen before)."""
    signing = _signing(live.slack_secrets(), body, headers, now)
    if not signing:
        return unauthorized(BAD_SIGNATURE)
    refusal = replay_refusal(replays, headers, now)
    if refusal is not None:
        return refusal
    return [h for h in live.handlers() if isinstance(h, kind) and h.signing_secret in signing]


@dataclass
class RoutedSlackCommands:
    live: LiveGamedays
    replays: ReplayGuard
    clock: Callable[[], float] = time.time
    source: str = "slack"
    path: str = SLACK_COMMANDS
    content: str = "form"

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        verified = _verified(self.live, self.replays, SlackCommands, body, headers, self.clock())
        if isinstance(verified, Reply):
            return verified
        try:
            form = read_form(body)
        except UsageError as error:
            return ephemeral(str(error))
        bound = next((run for run in verified if in_channel(form, run.channel, "slack")), None)
        return bound.act(form) if bound is not None else ephemeral(NO_GAMEDAY_HERE)


@dataclass
class RoutedSlackEvents:
    live: LiveGamedays
    replays: ReplayGuard
    clock: Callable[[], float] = time.time
    source: str = "slack"
    path: str = SLACK_EVENTS
    content: str = "json"

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        verified = _verified(self.live, self.replays, SlackReactions, body, headers, self.clock())
        if isinstance(verified, Reply):
            return verified
        payload = read_event(body)
        if payload is None:
            return Reply(400, {"error": "the body is not a JSON object"})
        if payload.get("type") == "url_verification":  # Slack checking the request URL: ours
            return Reply(200, {"challenge": str(payload.get("challenge", ""))[:256]})
        event = payload.get("event")
        item = event.get("item") if isinstance(event, dict) else None
        channel = item.get("channel") if isinstance(item, dict) else None
        bound = next((run for run in verified if run.channel == channel), None)
        return bound.act(payload) if bound is not None else Reply(200, {"ok": "ignored"})


@dataclass
class RoutedMattermostCommands:
    live: LiveGamedays
    source: str = "mattermost"
    path: str = MATTERMOST_COMMANDS
    content: str = "form"

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        form = mattermost_form(body)
        presented = form.get("token", "").encode("utf-8")
        if not presented or not any(
            hmac.compare_digest(presented, token.encode("utf-8")) for token in self.live.mattermost_tokens()
        ):
            return unauthorized("the request does not carry the slash command's token of any gameday here")
        runs = [h for h in self.live.handlers() if isinstance(h, MattermostCommands)]
        verified = [run for run in runs if run.token_matches(form)]
        bound = next((run for run in verified if in_channel(form, run.channel, "mattermost")), None)
        return bound.act(form) if bound is not None else ephemeral(NO_GAMEDAY_HERE)


@dataclass
class ChatRouter:
    """The three routed handlers over one set of live runs, for ``gameday.server.chat_routes``."""

    live: LiveGamedays
    replays: ReplayGuard = field(default_factory=ReplayGuard)

    def handlers(self) -> list[Handler]:
        return [
            RoutedSlackCommands(self.live, self.replays),
            RoutedSlackEvents(self.live, self.replays),
            RoutedMattermostCommands(self.live),
        ]

    def close(self) -> None:
        self.live.close()
