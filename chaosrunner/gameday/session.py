"""A live gameday's moving parts, attached to a runner as one listener.

The watcher (alerts, mitigation, escalation) and, in gameday mode, the
responder HTTP endpoint - started when the run has a journal, stopped when it
finishes. The CLI and the demo attach it the same way.
"""

from __future__ import annotations

from typing import Any

from chaosrunner.engine.runner import Runner
from chaosrunner.gameday.endpoint import ResponderEndpoint
from chaosrunner.gameday.watch import GamedayWatcher
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.scenario.models import Mode


class GamedaySession:
    def __init__(self, runner: Runner, metrics: MetricsSource | None, *, endpoint_port: int = 0) -> None:
        from chaosrunner.observe.alertmanager import AlertmanagerHTTP

        target = runner.scenario.target
        self.runner = runner
        self.endpoint_port = endpoint_port
        self.endpoint: ResponderEndpoint | None = None
        self.watcher = GamedayWatcher(
            runner,
            metrics,
            alertmanager=AlertmanagerHTTP(target.alertmanager) if target.alertmanager else None,
            escalation_webhook=runner.scenario.gameday.escalation_webhook,
        )

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "run_started" and self.runner.mode is Mode.GAMEDAY and self.runner.run_dir:
            self.endpoint = ResponderEndpoint(self.runner.run_dir, port=self.endpoint_port)
            self.endpoint.start()
            self.runner.emit("responder_endpoint", url=self.endpoint.url)
        self.watcher(event)

    def close(self) -> None:
        self.watcher.close()
        if self.endpoint is not None:
            self.endpoint.close()
