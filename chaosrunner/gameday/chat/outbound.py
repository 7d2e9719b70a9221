"""The channel hears the run: a runner listener that posts to Slack and Mattermost, off the runner's threads.

``ChatNotifier`` is attached like any listener. Its ``__call__`` only decides
whether an event is worth a message and puts it on a bounded queue (a full
queue drops the message with a counted warning): the runner's threads -
including the one reverting the faults - never wait for a chat service. Each
destination (a Slack channel, a Mattermost webhook) has its own worker thread,
so a slow Slack does not hold Mattermost back, and each:

- posts at most one message per second (``min_interval``): Slack's rate for
  ``chat.postMessage`` and incoming webhooks is about one a second per channel;
- retries with tenacity: a 429 after its ``Retry-After`` (capped), a 5xx or no
  answer with exponential backoff, a few attempts; a refusal (a bad token, an
  unknown channel) is not retried;
- reports every message's fate to ``on_posted`` (kind, chat, ok, error,
  attempts) for the session to journal as ``chat_posted``: never the text,
  a token or a webhook URL.

``close(timeout)`` flushes what it can within the bound and stops; whatever is
still queued or being retried then is given up (counted in ``unsent``).

Secrets are read from the environment variables the scenario names, once, by
``from_scenario``, and stay in this process: in the posting closures, nowhere
else.

A run's mode (the ``run_started`` event says it) decides what the channel
hears: a gameday every message above; an automated run (the CLI's automated
mode, the schedule daemon, a CronJob) only that it started, aborted and
finished, and where its report is - no alerts to chase, no escalation, no
TTD, TTM or score, since nobody was responding.

Failures are one warning line each on the ``chaosrunner.chat`` logger, never
a traceback: the channel being down is news for the operator, not a crash.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.gameday.chat import messages
from chaosrunner.gameday.chat.messages import Dialect, Message

if TYPE_CHECKING:
    from chaosrunner.gameday.chat.slack_api import PostResult
    from chaosrunner.gameday.debrief import Debrief
    from chaosrunner.scenario.models import Scenario

log = logging.getLogger("chaosrunner.chat")

QUEUE_SIZE = 100
"""Messages waiting per destination; a run says far fewer things than this unless a service is down."""
MIN_INTERVAL = 1.0
"""Seconds between two posts to one channel."""
REQUEST_TIMEOUT = 10.0
"""Seconds one HTTP request may take."""
MAX_ATTEMPTS = 5
"""Attempts per message, the first included."""
RETRY_AFTER_CAP = 30.0
"""The longest Retry-After we honour; a longer one is waited this long, then retried."""
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0
"""Exponential backoff after a 5xx or no answer: 0.5 s, 1 s, 2 s, 4 s."""
CLOSED = "not sent: the run's chat was closed"
"""The error of a message given up because ``close`` ran out of time."""

Post = Callable[[str, float], "PostResult"]
"""One attempt to post ``text`` within ``timeout`` seconds."""
OnPosted = Callable[[dict[str, Any]], None]

AUTOMATED_KINDS = frozenset({"run_started", "abort", "finished", "report", "console_link"})
"""What the channel hears of an automated run: nobody responds to it, so no alerts, escalation or
mitigation - it started, it aborted (and why), it finished (and how), where the report is."""

_PRELOAD = ("tenacity", "slack_sdk", "slack_sdk.errors", "slack_sdk.webhook", "slack_sdk.web")
"""Imported on the caller's thread before any worker starts: two workers importing slack_sdk for the
first time at once deadlocked on the import lock (seen for real). ``importlib`` by name, so that
``gameday.chat.slack_api`` stays the one module that uses slack_sdk (import-linter)."""


@dataclass(frozen=True)
class Destination:
    """One channel and the way to reach it. ``name`` is what logs and the journal show: no secret."""

    chat: str  # slack | mattermost
    name: str  # e.g. "slack C0123 (bot)", "mattermost webhook"
    dialect: Dialect
    post: Post


def destinations_of(scenario: Scenario, environ: Mapping[str, str]) -> list[Destination]:
    """The scenario's outbound chat whose secrets are present in ``environ``. A Slack bot token wins
    over a Slack webhook (it posts to the configured channel; a webhook posts where it was made for)."""
    from chaosrunner.gameday.chat import slack_api

    found: list[Destination] = []
    slack, mattermost = scenario.chat.slack, scenario.chat.mattermost
    if slack is not None:
        token = environ.get(slack.bot_token_env) if slack.bot_token_env else None
        slack_hook = environ.get(slack.webhook_url_env) if slack.webhook_url_env else None
        if token:
            channel, api_url = slack.channel, slack.api_url

            def post_bot(text: str, timeout: float, token: str = token) -> PostResult:
                return slack_api.post_message(token, channel, text, api_url=api_url, timeout=timeout)

            found.append(Destination("slack", f"slack {channel} (bot)", messages.SLACK, post_bot))
        elif slack_hook:

            def post_slack_hook(text: str, timeout: float, url: str = slack_hook) -> PostResult:
                payload = {"text": text, "unfurl_links": False, "unfurl_media": False}
                return slack_api.post_webhook(url, payload, timeout=timeout)

            found.append(Destination("slack", "slack webhook", messages.SLACK, post_slack_hook))
    if mattermost is not None and mattermost.webhook_url_env:
        mattermost_hook = environ.get(mattermost.webhook_url_env)
        if mattermost_hook:

            def post_mattermost(text: str, timeout: float, url: str = mattermost_hook) -> PostResult:
                return slack_api.post_webhook(url, {"text": text}, timeout=timeout)

            found.append(
                Destination("mattermost", "mattermost webhook", messages.MATTERMOST, post_mattermost)
            )
    return found


def unset_variables(scenario: Scenario, environ: Mapping[str, str]) -> list[str]:
    """One warning line for each outbound secret the scenario names and ``environ`` lacks.

    A variable's name, never a value: a typo in a CronJob's Secret should be one line in the
    log, not a silent channel."""
    named: list[tuple[str, str | None]] = []
    slack, mattermost = scenario.chat.slack, scenario.chat.mattermost
    if slack is not None:
        named += [
            ("chat.slack.bot_token_env", slack.bot_token_env),
            ("chat.slack.webhook_url_env", slack.webhook_url_env),
        ]
    if mattermost is not None:
        named.append(("chat.mattermost.webhook_url_env", mattermost.webhook_url_env))
    return [
        f"chat: {field_name} names {variable}, which is not set: no messages through it for this run"
        for field_name, variable in named
        if variable and not environ.get(variable)
    ]


def preload_clients() -> None:
    """Import what the workers use, once, on this thread (see ``_PRELOAD``)."""
    for module in _PRELOAD:
        importlib.import_module(module)


@dataclass(frozen=True)
class _Pending:
    kind: str
    render: Callable[[Dialect], Message]


class ChatNotifier:
    """A runner listener that tells the channel what the run does. See the module's docstring."""

    def __init__(
        self,
        scenario: Scenario,
        destinations: list[Destination],
        *,
        on_posted: OnPosted | None = None,
        queue_size: int = QUEUE_SIZE,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.scenario = scenario
        self.on_posted = on_posted
        if destinations:
            preload_clients()
        self._workers = [_Worker(d, queue_size, min_interval, self._posted) for d in destinations]
        self._lock = threading.Lock()
        self._console_link: str | None = None
        self._started: Mapping[str, Any] | None = None  # the run_started event, once seen
        self._alerts_told: set[str] = set()
        self._automated = False  # set from run_started's mode
        self._closed = False

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        *,
        environ: Mapping[str, str] | None = None,
        on_posted: OnPosted | None = None,
    ) -> ChatNotifier | None:
        """A notifier for the scenario's chat section, or None when nothing outbound is configured
        (no bot token or webhook named, or the named variables are not set)."""
        found = destinations_of(scenario, os.environ if environ is None else environ)
        return cls(scenario, found, on_posted=on_posted) if found else None

    # -- what the runner and the session call -------------------------------------------------

    def __call__(self, event: Mapping[str, Any]) -> None:
        """A runner listener: decides and enqueues, never waits and never raises."""
        try:
            self._consider(event)
        except Exception as error:  # a broken message must never reach the runner
            log.warning(
                "chat: could not queue a message for a %s event: %s: %s",
                event.get("type"),
                type(error).__name__,
                error,
            )

    def set_console_link(self, url: str) -> None:
        """The read-only observer link (never the facilitator's or the team's). Given before
        ``run_started`` it goes in the run-started message; later, in a message of its own."""
        with self._lock:
            self._console_link = url
            announce = self._started is not None
        if announce:
            self._enqueue(_Pending("console_link", lambda d: messages.console_link(url, d)))

    def report_written(self, report_path: Path | str | None, outcome: Debrief | None) -> None:
        """A gameday's debrief: TTD and TTM against their targets, the score and grade, where the
        report is. An automated run's: where the report is, unscored (``outcome`` is ignored)."""
        if self._automated:
            self._enqueue(_Pending("report", lambda d: messages.automated_report(report_path, d)))
            return
        figures = figures_of(outcome) if outcome is not None else None
        self._enqueue(_Pending("report", lambda d: messages.report(figures, report_path, d)))

    def close(self, timeout: float = 5.0) -> None:
        """Flush what can be posted within ``timeout`` seconds, then stop. Never raises."""
        self._closed = True
        deadline = time.monotonic() + max(0.0, timeout)
        for worker in self._workers:
            worker.close_by(deadline)
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    # -- figures for tests, logs and the session ----------------------------------------------

    @property
    def destinations(self) -> list[str]:
        return [worker.destination.name for worker in self._workers]

    @property
    def working(self) -> bool:
        """Whether a worker is still at it (after ``close``: inside a request that has not answered)."""
        return any(worker.alive for worker in self._workers)

    @property
    def dropped(self) -> int:
        """Messages dropped because a destination's queue was full."""
        return sum(worker.dropped for worker in self._workers)

    @property
    def unsent(self) -> int:
        """Messages given up: retries exhausted, refused, or still queued when ``close`` ran out of time."""
        return sum(worker.unsent for worker in self._workers)

    # -- inside --------------------------------------------------------------------------------

    def _consider(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "run_started":
            automated = event.get("mode") == "automated"
            with self._lock:
                self._started, link = event, self._console_link
                self._automated = automated
            self._enqueue(_Pending("run_started", lambda d: self._run_started(event, link, d, automated)))
            return
        if self._automated and messages.kind_of(event) not in AUTOMATED_KINDS:
            return
        if kind == "alert":
            if event.get("state") not in messages.FIRING_STATES:
                return
            with self._lock:  # Prometheus and Alertmanager both report it: the channel hears it once
                name = str(event.get("name"))
                if name in self._alerts_told:
                    return
                self._alerts_told.add(name)
        message_kind = messages.kind_of(event)
        if message_kind is not None:
            self._enqueue(_Pending(message_kind, lambda d: _rendered(event, d)))

    def _run_started(
        self, event: Mapping[str, Any], link: str | None, d: Dialect, automated: bool
    ) -> Message:
        meta = self.scenario.metadata
        faults = [(fault.name, fault.kind) for fault in self.scenario.faults]
        return messages.run_started(
            meta.title, meta.hypothesis, faults, str(event.get("run_id", "?")), link, d, automated=automated
        )

    def _enqueue(self, pending: _Pending) -> None:
        if self._closed:
            return
        for worker in self._workers:
            worker.offer(pending)

    def _posted(self, fields: dict[str, Any]) -> None:
        if self.on_posted is None:
            return
        try:
            self.on_posted(fields)
        except Exception as error:
            log.warning("chat: recording a message's fate failed: %s: %s", type(error).__name__, error)


def _rendered(event: Mapping[str, Any], d: Dialect) -> Message:
    message = messages.for_event(event, d)
    assert message is not None  # _consider enqueues only events that make a message
    return message


def figures_of(outcome: Debrief) -> messages.DebriefFigures:
    measured, settings = outcome.measurement, outcome.scenario.gameday
    return messages.DebriefFigures(
        ttd_seconds=measured.ttd.total_seconds() if measured.ttd is not None else None,
        ttd_target_seconds=settings.ttd_target.total_seconds(),
        ttm_seconds=measured.ttm.total_seconds() if measured.ttm is not None else None,
        ttm_target_seconds=settings.ttm_target.total_seconds(),
        score=outcome.score.total,
        grade=outcome.score.grade,
    )


class _Worker:
    """One destination's queue and thread: paced, retried, bounded by ``close``."""

    def __init__(
        self, destination: Destination, queue_size: int, min_interval: float, posted: OnPosted
    ) -> None:
        self.destination = destination
        self.min_interval = min_interval
        self._posted = posted
        self._queue: queue.Queue[_Pending] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._loop, name=f"chat-{destination.chat}", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self._wake = threading.Event()  # close() wakes a sleeping retry or pause
        self._deadline = float("inf")  # set by close(): nothing is attempted after it
        self._abandoned = False  # the current message's next attempt would come after the deadline
        self._last_post: float | None = None
        self._failed = 0
        self._offered = 0  # queued, ever (under _start_lock); delivered only by the worker
        self._delivered = 0
        self.dropped = 0

    @property
    def unsent(self) -> int:
        """Messages given up, plus - while the thread is still at it - those queued or in hand.

        Counted as queued minus delivered: reading the queue's size and the message in hand
        separately missed one taken from the queue and not yet marked in hand."""
        return self._offered - self._delivered

    def offer(self, pending: _Pending) -> None:
        with self._start_lock:
            if not self._started:
                self._started = True
                self._thread.start()
        try:
            with self._start_lock:  # listeners are called from the runner's several threads
                self._queue.put_nowait(pending)
                self._offered += 1
        except queue.Full:
            with self._start_lock:
                self.dropped += 1
            log.warning(
                "chat: %s is not keeping up; dropped a %s message (%d dropped so far)",
                self.destination.name,
                pending.kind,
                self.dropped,
            )

    def close_by(self, deadline: float) -> None:
        self._deadline = deadline
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        if self._started:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            try:
                pending = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._deadline != float("inf"):
                    return  # closing, and everything queued has been handled
                continue
            try:
                if time.monotonic() >= self._deadline:
                    self._failed += 1  # closing and out of time: the rest is counted, not posted
                    self._posted(self._outcome(pending.kind, ok=False, error=CLOSED, attempts=0))
                    continue
                self._deliver(pending)
            except Exception as error:  # our bug must not end the thread that tells the channel
                self._failed += 1
                log.warning(
                    "chat: could not post a %s message to %s: %s: %s",
                    pending.kind,
                    self.destination.name,
                    type(error).__name__,
                    error,
                )

    def _deliver(self, pending: _Pending) -> None:
        from tenacity import Retrying, retry_if_result

        text = pending.render(self.destination.dialect).text
        self._abandoned = False
        retrying = Retrying(
            retry=retry_if_result(lambda result: result.retryable),
            wait=self._wait,
            stop=self._stop,
            sleep=self._sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        attempts = 0

        def attempt() -> PostResult:
            nonlocal attempts
            from chaosrunner.gameday.chat.slack_api import PostResult

            self._pace()
            if self._abandoned or time.monotonic() >= self._deadline:
                self._abandoned = True
                return PostResult(ok=False, error=CLOSED)
            attempts += 1
            self._last_post = time.monotonic()
            timeout = min(REQUEST_TIMEOUT, self._deadline - time.monotonic())
            return self.destination.post(text, timeout)

        result = retrying(attempt)
        if result.ok:
            self._delivered += 1
        else:
            self._failed += 1
        if not result.ok and result.error != CLOSED:  # given up at close: the run's chat says so once
            log.warning(
                "chat: could not post a %s message to %s after %d attempt(s): %s",
                pending.kind,
                self.destination.name,
                attempts,
                result.error,
            )
        self._posted(self._outcome(pending.kind, ok=result.ok, error=result.error, attempts=attempts))

    def _outcome(self, kind: str, *, ok: bool, error: str | None, attempts: int) -> dict[str, Any]:
        """What ``chat_posted`` records: never the text, a token or a webhook URL."""
        return {"kind": kind, "chat": self.destination.chat, "ok": ok, "error": error, "attempts": attempts}

    def _wait(self, state: Any) -> float:
        result = state.outcome.result() if state.outcome is not None else None
        if result is not None and result.status == 429 and result.retry_after is not None:
            return min(result.retry_after, RETRY_AFTER_CAP)
        return min(BACKOFF_FIRST * 2 ** (state.attempt_number - 1), BACKOFF_MAX)

    def _stop(self, state: Any) -> bool:
        """Enough attempts, or the next one would come after ``close``'s deadline."""
        if state.attempt_number >= MAX_ATTEMPTS or self._abandoned:
            return True
        return time.monotonic() + state.upcoming_sleep > self._deadline

    def _pace(self) -> None:
        if self._last_post is not None:
            self._sleep(self._last_post + self.min_interval - time.monotonic())

    def _sleep(self, seconds: float) -> None:
        """Sleep, unless ``close`` set a deadline the sleep would outlast: then give the message up."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            if until > self._deadline:
                self._abandoned = True
                return
            if self._wake.is_set():  # the deadline is known and the sleep fits in it
                time.sleep(left)
                return
            self._wake.wait(left)
