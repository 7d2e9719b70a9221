"""A live gameday's moving parts, attached to a runner as one listener.

The watcher (alerts, mitigation, escalation) and, in gameday mode, the
responder HTTP endpoint. The endpoint's address is bound when the session is
made - before ``runner.run()``, so a port in use fails the command before
anything is created or injected - and it serves from ``run_started``, when
the run folder exists for its token. The CLI and the demo attach it the same
way.
"""

from __future__ import annotations

from typing import Any

from chaosrunner.engine.runner import Runner
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.endpoint import LOOPBACK, ResponderEndpoint
from chaosrunner.gameday.watch import GamedayWatcher
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.scenario.models import Mode


class GamedaySession:
    def __init__(
        self,
        runner: Runner,
        metrics: MetricsSource | None,
        *,
        endpoint_port: int = 0,
        endpoint_host: str = LOOPBACK,
    ) -> None:
        from chaosrunner.observe.alertmanager import AlertmanagerHTTP

        target = runner.scenario.target
        self.runner = runner
        self.watcher = GamedayWatcher(
            runner,
            metrics,
            alertmanager=AlertmanagerHTTP(target.alertmanager) if target.alertmanager else None,
            escalation_webhook=runner.scenario.gameday.escalation_webhook,
        )
        self.endpoint = (
            ResponderEndpoint(endpoint_host, endpoint_port) if runner.mode is Mode.GAMEDAY else None
        )

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "run_started" and self.endpoint is not None and self.runner.run_dir:
            self._start_endpoint()
        self.watcher(event)

    def _start_endpoint(self) -> None:
        assert self.endpoint is not None and self.runner.run_dir is not None
        try:
            self.endpoint.start(self.runner.run_dir)
        except (ChaosrunnerError, OSError) as error:
            # run_started comes before any injection: stopping here touches nothing,
            # and a gameday the team cannot mark is not worth running.
            self.runner.request_abort("responder_endpoint", f"the responder endpoint did not start: {error}")
            return
        # The URL only: the journal is read by reports and tools; the token never goes there.
        self.runner.emit("responder_endpoint", url=self.endpoint.url)

    def close(self) -> None:
        try:
            self.watcher.close()
        finally:
            if self.endpoint is not None:
                self.endpoint.close()
