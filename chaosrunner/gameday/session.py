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

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "run_started" and self.server is not None and self.runner.run_dir:
            self._start_server()
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
        for warning in warnings:  # a variable's name, never its value
            logging.getLogger("chaosrunner.server").warning("%s", warning)
        live_view.start()
        # The addresses only: the journal is read by reports and tools; a token never goes there.
        self.runner.emit("responder_endpoint", url=self.server.url, console_url=self.server.console_url)

    def _chat_routes(self, live: LiveRun) -> tuple[list[Any], list[str]]:
        """The slash commands' routes for each chat platform whose secret is set (read now, at
        run start), and a warning for each one the scenario names but the environment lacks."""
        chat = self.runner.scenario.chat
        if chat.slack is None and chat.mattermost is None:
            return [], []
        from chaosrunner.gameday.chat.inbound import RunContext, handlers
        from chaosrunner.gameday.server.chat_routes import chat_routes

        found, warnings = handlers(chat, RunContext(live.run, live.measured), os.environ)
        return chat_routes(found), warnings

    def end_of_run(self) -> None:
        """The run is over: stop watching and sampling. The server keeps serving the pages."""
        try:
            self.watcher.close()
        finally:
            if self.live_view is not None:
                self.live_view.close()

    def report_written(self, report_file: Path | None) -> None:
        """Every page learns the debrief is there (``GET /api/report``)."""
        if self.live is None or report_file is None:
            return
        self.live.report_file = report_file
        self.live.feed.publish("report", {"url": "/api/report"})

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
            if self.server is not None:
                self.server.close()
