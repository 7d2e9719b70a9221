"""A live gameday's moving parts, attached to a runner as one listener.

The watcher (alerts, mitigation, escalation) and, in gameday mode, the run's
server: the responder endpoint and the facilitator console, fed by the
journal (``RunFeed``) and the live view (snapshots, series, live TTD/TTM).
The server's address is bound when the session is made - before
``runner.run()``, so a port in use fails the command before anything is
created or injected - and it serves from ``run_started``, when the run
folder exists for its tokens. The CLI and the demo attach it the same way.

Its life is longer than the run's: the watcher and the live view stop when
``runner.run()`` returns (``end_of_run``), but the server stays up until the
report is written (``report_written`` tells every page), lingers if asked,
and only ``close`` says bye to the pages and stops it.

The run's chat (``gameday.chat.run_chat``), when the scenario posts to Slack
or Mattermost, is made with the session (the secrets are read then, and an
unset variable is a warning before anything runs) and hears every event after
the server has started, so the run-started message carries the observer's
link. It outlives the run like the server: the finished and report messages
go out after ``run_finished``, and ``close`` flushes it (bounded) and journals
what was given up *before* the server says bye, so the pages see those lines.
Automated runs hear their start, abort, finish and report, and get no chat
commands: nobody marks anything in them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.engine.runner import Runner
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.endpoint import LOOPBACK, RunServer
from chaosrunner.gameday.server.guards import PublicUrl
from chaosrunner.gameday.watch import GamedayWatcher
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.scenario.models import Mode
from chaosrunner.signals import set_event_handler

if TYPE_CHECKING:
    from chaosrunner.gameday.chat.run_chat import RunChat
    from chaosrunner.gameday.debrief import Debrief
    from chaosrunner.gameday.live_view import LiveView
    from chaosrunner.gameday.server.live_run import LiveRun


class GamedaySession:
    def __init__(
        self,
        runner: Runner,
        metrics: MetricsSource | None,
        *,
        endpoint_port: int = 0,
        endpoint_host: str = LOOPBACK,
        public_url: PublicUrl | None = None,
    ) -> None:
        from chaosrunner.observe.alertmanager import AlertmanagerHTTP

        target = runner.scenario.target
        self.runner = runner
        self.metrics = metrics
        self.watcher = GamedayWatcher(
            runner,
            metrics,
            alertmanager=AlertmanagerHTTP(target.alertmanager) if target.alertmanager else None,
            escalation_webhook=runner.scenario.gameday.escalation_webhook,
        )
        # Automated runs serve the page too, read-only: the observer's link alone.
        self.server = RunServer(
            endpoint_host,
            endpoint_port,
            public_url=public_url,
            read_only=runner.mode is not Mode.GAMEDAY,
        )
        self.live: LiveRun | None = None
        self.live_view: LiveView | None = None
        self.chat = self._open_chat()

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "run_started" and self.server is not None and self.runner.run_dir:
            self._start_server()
        if self.chat is not None:  # after the server: run_started's message carries its link
            self.chat(event)
        self.watcher(event)
        if self.live_view is not None:
            self.live_view(event)
        if self.live is not None:
            self.live.feed.wake()  # the pages see the runner's own events at once, not at the next poll

    def _start_server(self) -> None:
        from chaosrunner.gameday.live_view import LiveView
        from chaosrunner.gameday.server.feed import RunFeed
        from chaosrunner.gameday.server.live_run import LiveRun

        assert self.server is not None and self.runner.run_dir is not None
        run = self.runner.run_dir
        feed = RunFeed(run.journal_path)
        live_view = LiveView(self.runner, self.metrics, publish=feed.publish)
        live = LiveRun(
            run,
            self.runner.scenario,
            self.runner.mode.value,
            feed,
            series=live_view.series,
            measured=lambda: live_view.last_measured,
        )
        chat, warnings = self._chat_routes(live)
        try:
            self.server.start(run, live, more_routes=chat)
        except (ChaosrunnerError, OSError) as error:
            feed.close()
            # run_started comes before any injection: stopping here touches nothing,
            # and a gameday the team cannot mark is not worth running.
            self.runner.request_abort("responder_endpoint", f"the responder endpoint did not start: {error}")
            return
        self.live, self.live_view = live, live_view
        if self.chat is not None:
            self.chat.wake = feed.wake
            # The observer's read-only link: the channel is wider than the team.
            self.chat.set_console_link(self.server.link(self.server.tokens.observer))
        for warning in warnings:  # a variable's name, never its value
            logging.getLogger("chaosrunner.server").warning("%s", warning)
        live_view.start()
        # The addresses only: the journal is read by reports and tools; a token never goes there.
        self.runner.emit("responder_endpoint", url=self.server.url, console_url=self.server.console_url)

    def _chat_routes(self, live: LiveRun) -> tuple[list[Any], list[str]]:
        """The slash commands' routes for each chat platform whose secret is set (read now, at
        run start), and a warning for each one the scenario names but the environment lacks."""
        chat = self.runner.scenario.chat
        if self.runner.mode is not Mode.GAMEDAY or (chat.slack is None and chat.mattermost is None):
            return [], []  # an automated run hears the channel's news, it takes no marks from it
        from chaosrunner.gameday.chat.inbound import RunContext, handlers
        from chaosrunner.gameday.server.chat_routes import chat_routes

        found, warnings = handlers(chat, RunContext(live.run, live.measured), os.environ)
        return chat_routes(found), warnings

    def _open_chat(self) -> RunChat | None:
        chat = self.runner.scenario.chat
        if chat.slack is None and chat.mattermost is None:
            return None  # slack_sdk is not even imported
        from chaosrunner.gameday.chat.run_chat import RunChat

        return RunChat.for_runner(self.runner)

    def end_of_run(self) -> None:
        """The run is over: stop watching and sampling. The server keeps serving the pages."""
        try:
            self.watcher.close()
        finally:
            if self.live_view is not None:
                self.live_view.close()

    def report_written(self, report_file: Path | None, outcome: Debrief | None = None) -> None:
        """Every page learns the debrief is there (``GET /api/report``); the channel hears where
        it is, with TTD, TTM and the score from ``outcome`` in a gameday."""
        if self.chat is not None:
            self.chat.report_written(report_file, outcome)
        if self.live is None or report_file is None:
            return
        self.live.report_ready(report_file)

    def linger(self, seconds: float) -> None:
        """Keep serving a while after the report, so the room can read it.

        Ctrl-C or SIGTERM ends the wait early - and only the wait: the run's result and
        exit code stand, and the server still says bye and removes its token files."""
        if self.server is None or seconds <= 0:
            return
        done = threading.Event()
        if threading.current_thread() is not threading.main_thread():
            done.wait(seconds)
            return
        previous = {
            signum: signal.signal(signum, set_event_handler(done))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            done.wait(seconds)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def close(self) -> None:
        try:
            self.end_of_run()
        finally:
            try:
                if self.chat is not None:  # before the server: the pages see its last journal lines
                    self.chat.close()
            finally:
                if self.server is not None:
                    self.server.close()
