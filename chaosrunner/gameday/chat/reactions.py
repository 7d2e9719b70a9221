"""A message given a :stopwatch: reaction in the gameday's channel becomes a timeline note.

Slack's Events API posts JSON to ``POST /chat/slack/events`` (served with the
slash commands, when the signing secret is set), signed like a slash command
and verified the same way before anything is read: the v0 signature, five
minutes, replays refused. Two kinds of request matter:

- ``url_verification``: Slack checks the request URL when the app is set up;
  the answer is its ``challenge``.
- ``event_callback`` with a ``reaction_added`` event, reaction ``stopwatch``,
  on a message in the scenario's channel: a ``note`` mark whose text is the
  message's, authored by the person who reacted (their display name), with
  ``source: slack``, at the reaction's time (``event_ts``) - the moment the
  team flagged, not when we got round to it.

Slack wants a 200 within three seconds or it sends the event again (and
eventually turns the subscription off), while reading the message takes
Web API calls. So the request only verifies, checks and queues; one worker
thread per run fetches the text (``conversations.history``, or
``conversations.replies`` for a reply in a thread, with the bot token:
``channels:history``) and the reacting person's name, then journals the note
through ``gameday.marks.record`` (a daemon thread: reactions still waiting
for a Slack that does not answer never hold the runner's process open at
exit). A message is noted once: a second
:stopwatch: on it (another person's, or Slack's retry of the same event)
records nothing. Without a bot token the note says the text could not be read
and names the person by id; every other event is answered 200 and ignored.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.chat.commands import MAX_TEXT, slack_mentions, slack_plain
from chaosrunner.gameday.chat.display_names import DisplayNames
from chaosrunner.gameday.chat.inbound import ReplayGuard, Reply, RunContext, slack_refusal
from chaosrunner.gameday.marks import record

log = logging.getLogger("chaosrunner.chat")

SLACK_EVENTS = "/chat/slack/events"
STOPWATCH = "stopwatch"
NOTE_BUDGET = 5.0  # seconds for the reacting person's name: off the request path, so more than 1.5 s
MAX_QUEUED = 100  # reactions waiting for their message's text; past it, one is dropped with a warning
MAX_NOTED = 10_000  # messages remembered as noted, for the run
UNREADABLE = "(a message marked :stopwatch: whose text could not be read)"

MessageReader = Callable[[str, str], "str | None"]  # (channel, ts) -> the message's text


@dataclass(frozen=True)
class Reaction:
    """A :stopwatch: put on message ``ts`` in ``channel`` by ``user`` at ``at``."""

    channel: str
    ts: str
    user: str
    at: datetime


def read_event(body: bytes) -> dict[str, Any] | None:
    """The JSON object Slack sent, or None for anything else (nested too deep counts as anything else)."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def stopwatch_reaction(payload: Mapping[str, Any], now: datetime) -> Reaction | None:
    """The reaction in an ``event_callback``, when it is a :stopwatch: on a message; else None."""
    event = payload.get("event")
    if payload.get("type") != "event_callback" or not isinstance(event, dict):
        return None
    item = event.get("item")
    if (
        event.get("type") != "reaction_added"
        or event.get("reaction") != STOPWATCH
        or not isinstance(item, dict)
    ):
        return None
    channel, ts, user = item.get("channel"), item.get("ts"), event.get("user")
    if item.get("type") != "message" or not all(
        isinstance(value, str) and value for value in (channel, ts, user)
    ):
        return None
    return Reaction(str(channel), str(ts), str(user), _when(event.get("event_ts"), now))


def _when(event_ts: Any, now: datetime) -> datetime:
    """The reaction's time from Slack's ``event_ts``; never later than now (clocks differ a little)."""
    try:
        at = datetime.fromtimestamp(float(event_ts), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now
    return min(at, now)


@dataclass
class SlackReactions:
    signing_secret: str
    channel: str
    context: RunContext
    reader: MessageReader | None = None  # with a bot token: conversations.history/replies
    names: DisplayNames | None = None
    replays: ReplayGuard = field(default_factory=ReplayGuard)
    clock: Callable[[], float] = time.time
    source: str = "slack"
    path: str = SLACK_EVENTS
    content: str = "json"

    def __post_init__(self) -> None:
        self._noted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._queued = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: queue.Queue[Reaction | None] = queue.Queue()  # bounded by _queued, under the lock
        self._worker: threading.Thread | None = None
        self._closed = False

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        refusal = slack_refusal(self.signing_secret, self.replays, body, headers, self.clock())
        if refusal is not None:
            return refusal
        payload = read_event(body)
        if payload is None:
            return Reply(400, {"error": "the body is not a JSON object"})
        return self.act(payload)

    def act(self, payload: Mapping[str, Any]) -> Reply:
        """A verified event: answer Slack's URL check, queue a new :stopwatch:, ignore the rest."""
        if payload.get("type") == "url_verification":
            return Reply(200, {"challenge": str(payload.get("challenge", ""))[:256]})
        reaction = stopwatch_reaction(payload, datetime.fromtimestamp(self.clock(), UTC))
        if reaction is None or reaction.channel != self.channel:
            return Reply(200, {"ok": "ignored"})
        with self._lock:
            key = (reaction.channel, reaction.ts)
            if key in self._noted:
                return Reply(200, {"ok": "this message is already a note"})
            if self._closed:  # the run's server is stopping: nobody will note it
                return Reply(200, {"ok": "ignored"})
            if self._queued >= MAX_QUEUED:
                log.warning("chat: a :stopwatch: reaction was dropped: %d are waiting already", self._queued)
                return Reply(200, {"ok": "busy"})
            self._noted[key] = None
            if len(self._noted) > MAX_NOTED:
                self._noted.popitem(last=False)
            self._queued += 1
            if self._worker is None:  # started with the first reaction: most runs never get one
                self._worker = threading.Thread(target=self._work, name="chat-reactions", daemon=True)
                self._worker.start()
        self._waiting.put(reaction)
        return Reply(200, {"ok": "noting"})

    def _work(self) -> None:
        while (reaction := self._waiting.get()) is not None:
            self._note(reaction)

    def _note(self, reaction: Reaction) -> None:
        try:
            text = self.reader(reaction.channel, reaction.ts) if self.reader is not None else None
            people = [reaction.user, *slack_mentions(text or "")]
            known = self.names.resolve(people, budget=NOTE_BUDGET) if self.names is not None else {}
            value = " ".join(slack_plain(text, known).split()) if text else ""
            record(
                self.context.run,
                "note",
                (value or UNREADABLE)[:MAX_TEXT],
                by=known.get(reaction.user) or reaction.user,
                at=reaction.at,
                source=self.source,
            )
        except ChaosrunnerError as error:  # the run is over, its journal refuses: say so once
            log.warning("chat: a :stopwatch: reaction was not noted: %s", str(error).splitlines()[0])
        except Exception as error:  # a worker must not die silently; the run goes on
            log.warning("chat: a :stopwatch: reaction was not noted: %s", type(error).__name__)
        finally:
            with self._lock:
                self._queued -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued reaction has been noted (or failed), within ``timeout`` seconds."""
        with self._lock:
            return self._idle.wait_for(lambda: self._queued == 0, timeout=timeout)

    def close(self) -> None:
        """The worker stops after the reactions already queued; later ones are ignored."""
        with self._lock:
            self._closed = True
        self._waiting.put(None)


def slack_reader(token: str, api_url: str, timeout: float = 5.0) -> MessageReader:
    from chaosrunner.gameday.chat.slack_api import message_text

    return lambda channel, ts: message_text(token, channel, ts, api_url=api_url, timeout=timeout)
