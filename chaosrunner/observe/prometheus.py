"""The Prometheus adapter: the only module that imports prometheus_api_client.

It maps every client and HTTP error to ``ServiceUnreachable`` (the engine
treats that as "monitoring is blind": fail closed) and query errors - a PromQL
mistake Prometheus rejects - to ``QueryRejected``, which is the scenario's
fault, not the network's. Instant queries use a short per-call timeout
because an abort check that hangs is worse than one that fails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaosrunner.errors import QueryRejected, ServiceUnreachable
from chaosrunner.observe.metrics import ActiveAlert, AlertRule, Sample, Series


class PrometheusHTTP:
    def __init__(self, url: str, default_timeout: float = 5.0) -> None:
        from prometheus_api_client.prometheus_connect import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url.rstrip("/")
        # No retries inside the client: a refused connection must fail at once, so the
        # abort monitor's fail-closed clock is honest. Callers that want retries use tenacity.
        # The client's hints say int seconds; requests (underneath) takes float seconds.
        self._client: Any = PrometheusConnect(
            url=self.url,
            disable_ssl=False,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
            timeout=default_timeout,  # type: ignore[arg-type]
        )
        self._default_timeout = default_timeout

    def _call(self, what: str, call: Any) -> Any:
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from requests import RequestException

        try:
            return call()
        except PrometheusApiClientException as exc:
            if "HTTP Status Code 400" in str(exc) or "HTTP Status Code 422" in str(exc):
                raise QueryRejected(f"Prometheus rejected {what}: {_reason(exc)}") from exc
            raise ServiceUnreachable(f"Prometheus at {self.url} failed {what}: {_reason(exc)}") from exc
        except (RequestException, ValueError, KeyError) as exc:
            raise ServiceUnreachable(f"Prometheus at {self.url} did not answer {what}: {exc}") from exc

    def instant(self, expr: str, timeout: float | None = None) -> Sample:
        result = self._call(
            f"the query {expr!r}",
            lambda: self._client.custom_query(expr, timeout=timeout or self._default_timeout),
        )
        return _sample(result)

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        from datetime import UTC

        result = self._call(
            f"the range query {expr!r}",
            lambda: self._client.custom_query_range(
                expr,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}",  # plain seconds; "1.0s" is not a Prometheus duration
            ),
        )
        return [
            Series(
                labels=item.get("metric", {}),
                points=[(float(t), float(v)) for t, v in item.get("values", [])],
            )
            for item in result
        ]

    def alerts(self) -> list[ActiveAlert]:
        def fetch() -> Any:
            response = self._client._session.get(f"{self.url}/api/v1/alerts", timeout=self._default_timeout)
            response.raise_for_status()
            return response.json()["data"]["alerts"]

        return [
            ActiveAlert(
                name=alert["labels"].get("alertname", ""),
                state=alert["state"],
                active_at=datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")),
                labels=alert["labels"],
            )
            for alert in self._call("the alerts query", fetch)
            if alert.get("activeAt")
        ]

    def alert_rules(self) -> list[AlertRule]:
        """Every alerting rule Prometheus has loaded, in its group order."""

        def fetch() -> Any:
            response = self._client._session.get(
                f"{self.url}/api/v1/rules", params={"type": "alert"}, timeout=self._default_timeout
            )
            response.raise_for_status()
            return response.json()["data"]["groups"]

        return [
            AlertRule(
                name=str(rule["name"]),
                group=str(group.get("name", "")),
                file=group.get("file") or None,
                expr=str(rule.get("query", "")),
                for_seconds=float(rule.get("duration") or 0.0),
                labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
            )
            for group in self._call("the alert rules query", fetch)
            for rule in group.get("rules", [])
            if rule.get("type", "alerting") == "alerting"
        ]

    def healthy(self) -> None:
        """Raise ServiceUnreachable unless Prometheus answers its readiness probe."""

        def probe() -> None:
            response = self._client._session.get(f"{self.url}/-/ready", timeout=self._default_timeout)
            response.raise_for_status()

        self._call("its readiness probe", probe)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:297] + "..."


def _sample(result: Any) -> Sample:
    """Reduce an instant-query answer (vector or scalar) to a Sample."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return Sample(values=(float(result[1]),), labels=({},))  # scalar result
    values = []
    labels = []
    for item in result or []:
        values.append(float(item["value"][1]))
        labels.append(item.get("metric", {}))
    return Sample(values=tuple(values), labels=tuple(labels))
