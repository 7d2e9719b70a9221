"""The Alertmanager adapter: which alerts are active, and since when.

Alertmanager's ``startsAt`` is a second, independent clock for detection:
it is what paged the on-call, which is what a team experiences as "the alert
went off". Stdlib HTTP is enough for one GET per check interval.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime

from chaosrunner.errors import ServiceUnreachable
from chaosrunner.observe.metrics import ActiveAlert


class AlertmanagerHTTP:
    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def alerts(self) -> list[ActiveAlert]:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=self.timeout) as response:
                payload = json.load(response)
        except (OSError, ValueError) as error:
            raise ServiceUnreachable(f"Alertmanager at {self.url} did not answer: {error}") from error
        return [
            ActiveAlert(
                name=alert["labels"].get("alertname", ""),
                state=alert.get("status", {}).get("state", "active"),
                active_at=datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")),
                labels=alert["labels"],
            )
            for alert in payload
        ]
