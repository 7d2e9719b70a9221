"""Bringing the sandbox up and down: services, database, processes, monitoring.

``up()`` is idempotent and quick when everything already runs:

1. the rig's services (PostgreSQL, Prometheus, Alertmanager, Pushgateway)
   via ``scripts/services.sh start`` - it installs what is missing;
2. the ``demo`` database, its ``demo_orders`` table and the ``demo_checkout``
   role with a CONNECTION LIMIT (the pool the scenario exhausts);
3. the checkout service and the traffic process (load, synthetic probe,
   database exporter) as background processes with pid files;
4. scrape targets and alert rules for the three monitoring layers dropped
   into the rig's Prometheus, which is reloaded;
5. a wait until Prometheus sees healthy traffic - the scenario's steady state.

``down()`` stops the processes and removes the targets and rules; the rig's
services stay up (the tests share them; ``scripts/services.sh stop`` stops them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from chaosrunner.demo import database
from chaosrunner.errors import EnvironmentProblem, ServiceUnreachable
from chaosrunner.statedir import state_dir

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "checkout-pool-exhausted.yaml"
ROLE = "demo_checkout"
ROLE_LIMIT = 12
DATABASE = "demo"
CHECKOUT_PORT = 18080
TRAFFIC_PORT = 18081
FAULT_DSN_ENV = "CHAOSRUNNER_DEMO_DSN"

ALERT_RULES = {
    "groups": [
        {
            "name": "demo-checkout",
            "interval": "1s",
            "rules": [
                {
                    "alert": "DemoCheckoutProbeFailing",
                    "expr": 'max(probe_success{job="demo-monitoring"}) == 0',
                    "for": "2s",
                    "labels": {"layer": "synthetic", "severity": "page"},
                    "annotations": {"summary": "the synthetic checkout is failing"},
                },
                {
                    "alert": "DemoCheckoutErrorRateHigh",
                    "expr": 'sum(rate(http_requests_total{job="demo-checkout",code=~"5.."}[10s]))'
                    ' / sum(rate(http_requests_total{job="demo-checkout"}[10s])) > 0.1',
                    "for": "3s",
                    "labels": {"layer": "real_user", "severity": "page"},
                    "annotations": {"summary": "more than 10% of checkouts fail"},
                },
                {
                    "alert": "DemoCheckoutDbPoolSaturated",
                    "expr": 'max(checkout_db_pool_waiting{job="demo-checkout"}) > 2'
                    ' or max(demo_db_role_connections{job="demo-monitoring"}'
                    ' / demo_db_role_connection_limit{job="demo-monitoring"}) >= 0.9',
                    "for": "3s",
                    "labels": {"layer": "infrastructure", "severity": "ticket"},
                    "annotations": {"summary": "checkout's database connections are saturated"},
                },
            ],
        }
    ]
}


@dataclass(frozen=True)
class Rig:
    """Where the rig's services are, from ``scripts/services.sh env`` conventions."""

    folder: Path
    prometheus: str
    alertmanager: str
    pushgateway: str
    superuser_dsn: str

    @classmethod
    def from_env(cls) -> Rig:
        return cls(
            folder=Path(os.environ.get("CHAOSRUNNER_RIG_DIR", "/var/tmp/chaosrunner-rig")),
            prometheus=os.environ.get("CHAOSRUNNER_PROMETHEUS_URL", "http://127.0.0.1:19090"),
            alertmanager=os.environ.get("CHAOSRUNNER_ALERTMANAGER_URL", "http://127.0.0.1:19093"),
            pushgateway=os.environ.get("CHAOSRUNNER_PUSHGATEWAY_URL", "http://127.0.0.1:19091"),
            superuser_dsn=os.environ.get(
                "CHAOSRUNNER_PG_DSN", "postgresql://postgres@127.0.0.1:15432/postgres"
            ),
        )

    def dsn(self, database_name: str, user: str | None = None) -> str:
        base, _, _ = self.superuser_dsn.rpartition("/")
        if user:
            scheme, _, rest = base.partition("://")
            base = f"{scheme}://{user}@{rest.split('@', 1)[-1]}"
        return f"{base}/{database_name}"


def services_script() -> Path | None:
    """scripts/services.sh of the checkout chaosrunner runs from, if any."""
    for folder in [Path.cwd(), *HERE.parents]:
        candidate = folder / "scripts" / "services.sh"
        if candidate.is_file():
            return candidate
    return None


class Sandbox:
    def __init__(self, rig: Rig | None = None) -> None:
        self.rig = rig or Rig.from_env()
        self.folder = state_dir() / "demo"
        self.targets_file = self.rig.folder / "prometheus" / "targets" / "chaosrunner-demo.json"
        self.rules_file = self.rig.folder / "prometheus" / "rules" / "chaosrunner-demo.yml"

    # -- environment for the processes and the scenario --------------------------------------

    def fault_env(self) -> dict[str, str]:
        """What the demo scenario's faults need: the DSN by env var name, not in the file."""
        return {FAULT_DSN_ENV: self.rig.dsn(DATABASE)}

    def monitoring_dsn(self) -> str:
        return self.rig.dsn(DATABASE)

    # -- up ------------------------------------------------------------------------------------

    def up(self, *, log: list[str] | None = None) -> None:
        steps = log if log is not None else []
        started = time.monotonic()
        self._start_services()
        steps.append(f"services up ({time.monotonic() - started:.1f}s)")
        self._prepare_database()
        steps.append("database ready")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._start_process(
            "checkout",
            [sys.executable, "-m", "chaosrunner.demo.checkout", "--port", str(CHECKOUT_PORT)],
            {"DEMO_CHECKOUT_DSN": self.rig.dsn(DATABASE, ROLE)},
        )
        self._start_process(
            "traffic",
            [
                sys.executable,
                "-m",
                "chaosrunner.demo.traffic",
                "--metrics-port",
                str(TRAFFIC_PORT),
                "--target",
                f"http://127.0.0.1:{CHECKOUT_PORT}",
            ],
            {"DEMO_MONITOR_DSN": self.monitoring_dsn()},
        )
        steps.append("checkout service and traffic running")
        self._install_monitoring()
        self._wait_healthy()
        steps.append(f"steady state holds ({time.monotonic() - started:.1f}s)")

    def _start_services(self) -> None:
        if self._prometheus_ready():
            return
        script = services_script()
        if script is None:
            raise EnvironmentProblem(
                "the demo needs the rig's PostgreSQL and Prometheus: run it from a chaosrunner checkout "
                "(`make demo`), or start them and set CHAOSRUNNER_PG_DSN and CHAOSRUNNER_PROMETHEUS_URL"
            )
        completed = subprocess.run([str(script), "start"], capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise EnvironmentProblem(f"scripts/services.sh start failed: {completed.stderr.strip()[-800:]}")

    def _prometheus_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.rig.prometheus}/-/ready", timeout=1) as response:
                ready = response.status == 200
            connection = database.connect(self.rig.superuser_dsn, "chaosrunner-demo", 2)
            database.close(connection)
            return ready
        except (OSError, database.DatabaseUnavailable):
            return False

    def _prepare_database(self) -> None:
        try:
            admin = database.connect(self.rig.superuser_dsn, "chaosrunner-demo", 5)
        except database.DatabaseUnavailable as error:
            raise ServiceUnreachable(f"PostgreSQL for the demo: {error}") from error
        try:
            if not database.execute(admin, "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)):
                database.execute(admin, f'CREATE DATABASE "{DATABASE}"')
            if not database.execute(admin, "SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)):
                database.execute(admin, f'CREATE ROLE "{ROLE}" LOGIN')
            # Reset what a previous demo or its responder changed.
            database.execute(admin, f'ALTER ROLE "{ROLE}" CONNECTION LIMIT {ROLE_LIMIT}')
        finally:
            database.close(admin)
        demo = database.connect(self.rig.dsn(DATABASE), "chaosrunner-demo", 5)
        try:
            database.execute(
                demo,
                "CREATE TABLE IF NOT EXISTS demo_orders (id bigserial PRIMARY KEY, amount numeric, "
                "placed_at timestamptz DEFAULT now())",
            )
            database.execute(demo, f'GRANT INSERT, SELECT ON demo_orders TO "{ROLE}"')
            database.execute(demo, f'GRANT USAGE ON SEQUENCE demo_orders_id_seq TO "{ROLE}"')
        finally:
            database.close(demo)

    def _pid_file(self, name: str) -> Path:
        return self.folder / f"{name}.pid"

    def _running(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if f"chaosrunner.demo.{name}".encode() in cmdline else None

    def _start_process(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        if self._running(name):
            return
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._pid_file(name).write_text(str(process.pid))

    def _install_monitoring(self) -> None:
        targets = [
            {"targets": [f"127.0.0.1:{CHECKOUT_PORT}"], "labels": {"job": "demo-checkout"}},
            {"targets": [f"127.0.0.1:{TRAFFIC_PORT}"], "labels": {"job": "demo-monitoring"}},
        ]
        _write(self.targets_file, json.dumps(targets))
        rules = json.dumps(ALERT_RULES)
        if not self.rules_file.exists() or self.rules_file.read_text() != rules:
            _write(self.rules_file, rules)
            self._reload_prometheus()

    def _reload_prometheus(self) -> None:
        request = urllib.request.Request(f"{self.rig.prometheus}/-/reload", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=15).close()

    def _wait_healthy(self, timeout: float = 90.0) -> None:
        from chaosrunner.observe.prometheus import PrometheusHTTP

        prometheus = PrometheusHTTP(self.rig.prometheus)
        scenario_sli = (
            'sum(rate(http_requests_total{job="demo-checkout",code="200"}[5s]))'
            ' / sum(rate(http_requests_total{job="demo-checkout"}[5s]))'
        )
        alerts = 'count(ALERTS{alertname=~"DemoCheckout.*"}) or vector(0)'
        checks = [
            scenario_sli,
            'max(probe_success{job="demo-monitoring"})',
            'min(up{job=~"demo-.*"})',
            alerts,
        ]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            values = [prometheus.instant(expr).finite() for expr in checks]
            if (
                all(values)
                and values[0][0] >= 0.99
                and values[1][0] == 1
                and values[2][0] == 1
                and values[3][0] == 0
            ):
                return  # healthy, and no alert left over from an earlier run
            time.sleep(0.5)
        raise EnvironmentProblem(
            f"the sandbox did not become healthy within {timeout:g}s; logs in {self.folder}"
        )

    # -- down ----------------------------------------------------------------------------------

    def down(self) -> list[str]:
        stopped = []
        for name in ("traffic", "checkout"):
            pid = self._running(name)
            if pid:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not self._running(name):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        for path in (self.targets_file, self.rules_file):
            if path.exists():
                path.unlink()
                stopped.append(path.name)
        if self.rules_file.parent.exists():
            with contextlib.suppress(OSError):  # Prometheus already down: nothing to unload
                self._reload_prometheus()
        return stopped


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
