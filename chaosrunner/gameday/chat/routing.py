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
2. A request is verified against every live run's secret (a Slack app's
   signing secret is usually the same for all of them; different apps work
   too): none verifies, 401 and nothing journaled. One replay guard for all.
3. Among the runs whose secret verified it, the one bound to the request's
   channel records it, through the same handler a run's own server uses (the
   same validation, display names, :stopwatch: notes). When two live runs
   are bound to one channel, the newest one takes it. A channel no live run
   is bound to: "no gameday is live in this channel" (ephemeral; nothing
   journaled).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    """The live gameday runs in the state folder and each one's chat handlers, newest first."""

    def __init__(self, environ: Mapping[str, str], runs: Callable[[], list[RunDir]] = all_runs) -> None:
        self.environ = environ
        self._runs = runs
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

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
                    known = self._known[run.run_id] = _Known(self._handlers_of(run))
                found.extend(known.handlers)
            return found

    def _handlers_of(self, run: RunDir) -> list[Handler]:
        chat = _chat_of(run)
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


def _chat_of(run: RunDir) -> ChatSettings | None:
    """The chat settings of a gameday run, from its ``run_started``; None for anything else."""
    try:
        first = next(iter(run.events()), None)
    except (OSError, ValueError):
        return None
    if first is None or first.type != "run_started" or first.get("mode") != "gameday":
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


def _signed_by_one(candidates: list[Any], body: bytes, headers: Mapping[str, str], now: float) -> list[Any]:
    """The candidates whose signing secret signed the request (each distinct secret checked once)."""
    verdicts: dict[str, bool] = {}
    for candidate in candidates:
        secret = candidate.signing_secret
        if secret not in verdicts:
            verdicts[secret] = slack_signed(secret, body, headers, now)
    return [candidate for candidate in candidates if verdicts[candidate.signing_secret]]


@dataclass
class RoutedSlackCommands:
    live: LiveGamedays
    replays: ReplayGuard
    clock: Callable[[], float] = time.time
    source: str = "slack"
    path: str = SLACK_COMMANDS
    content: str = "form"

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        now = self.clock()
        runs = [h for h in self.live.handlers() if isinstance(h, SlackCommands)]
        verified = _signed_by_one(runs, body, headers, now)
        if not verified:
            return unauthorized(BAD_SIGNATURE)
        refusal = replay_refusal(self.replays, headers, now)
        if refusal is not None:
            return refusal
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
        now = self.clock()
        runs = [h for h in self.live.handlers() if isinstance(h, SlackReactions)]
        verified = _signed_by_one(runs, body, headers, now)
        if not verified:
            return unauthorized(BAD_SIGNATURE)
        refusal = replay_refusal(self.replays, headers, now)
        if refusal is not None:
            return refusal
        payload = read_event(body)
        if payload is None:
            return Reply(400, {"error": "the body is not a JSON object"})
        if payload.get("type") == "url_verification":
            return verified[0].act(payload)
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
        runs = [h for h in self.live.handlers() if isinstance(h, MattermostCommands)]
        verified = [run for run in runs if run.token_matches(form)]
        if not verified:
            return unauthorized("the request does not carry the slash command's token of any live gameday")
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
