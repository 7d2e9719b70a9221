"""The debrief report of real runs: real Prometheus ranges, a real CLI run, no secrets anywhere.

1. A scripted gameday (as in test_gameday.py) whose "checkout" pushes real
   request counters through the Pushgateway: the report's ranges come from
   the rig's Prometheus (1 s scrape), and its impact figures - users
   affected, failed requests - are checked against what the script actually
   did.
2. ``chaosrunner run`` as a process, with a real PostgreSQL fault whose DSN
   (in the environment variable the scenario names) carries a planted
   password, and a planted token in the environment: the automatic report,
   ``chaosrunner report``, ``score`` and ``history``, their output, the
   journal and everything else in the state folder are searched for both.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.gameday.marks import record
from chaosrunner.gameday.session import GamedaySession
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.report.writer import write_run_report
from chaosrunner.scenario.loader import load_scenario
from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHAOSRUNNER_REPORTS_DIR", str(tmp_path / "reports"))
    ACTIVE_FLAGS.clear()


class Traffic:
    """A "checkout" pushing request counters: ``rate`` requests/s, ``failing`` of them failing."""

    def __init__(self, pushgateway: Any, rate: float = 20.0) -> None:
        self.pushgateway = pushgateway
        self.rate = rate
        self.failing = 0.0
        self.ok = 0.0
        self.failed = 0.0
        self.failed_log: list[tuple[float, float]] = []  # (unix time, failed so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        tick = 0.25
        while not self._stop.wait(tick):
            self.ok += self.rate * tick * (1 - self.failing)
            self.failed += self.rate * tick * self.failing
            self.failed_log.append((time.time(), self.failed))
            self.pushgateway.push(
                "report_requests_total", self.ok, {"code": "200"}, metric_type="counter", instance="ok"
            )
            self.pushgateway.push(
                "report_requests_total", self.failed, {"code": "500"}, metric_type="counter", instance="err"
            )

    def failed_between(self, start: float, end: float) -> float:
        before = max((n for t, n in self.failed_log if t <= start), default=0.0)
        after = max((n for t, n in self.failed_log if t <= end), default=0.0)
        return after - before

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_real_gameday_report_has_prometheus_ranges_and_measured_impact(
    tmp_path: Path,
    prometheus_url: str,
    alertmanager_url: str,
    pushgateway: Any,
    prometheus_rules: Any,
    rig: Any,
    unique_name: str,
) -> None:
    job = unique_name
    requests = f'report_requests_total{{job="{job}"}}'
    errors = f'report_requests_total{{job="{job}",code=~"5.."}}'
    sli = f"1 - (sum(rate({errors}[5s])) / sum(rate({requests}[5s])))"
    alert = f"CheckoutFailing_{job}"
    with Traffic(pushgateway) as traffic:
        prometheus_rules.add(
            [
                {
                    "name": f"{job}-report",
                    "interval": "1s",
                    "rules": [{"alert": alert, "expr": f"({sli}) < 0.9", "for": "0s"}],
                }
            ]
        )
        rig.wait_for(lambda: rig.prom_query(prometheus_url, sli), timeout=30, what="the SLI in Prometheus")
        time.sleep(6)  # a full rate window of healthy traffic
        data = {
            "metadata": {
                "title": f"report {job}",
                "owner": "tests",
                "expected_severity": "P2",
                "hypothesis": "h",
            },
            "target": {"prometheus": prometheus_url, "alertmanager": alertmanager_url},
            "steady_state": [{"name": "sli", "expr": sli, "comparator": ">=", "threshold": 0.99}],
            "faults": [{"name": "pool", "kind": "inprocess.flag", "params": {"flag": job}}],
            "abort_conditions": [
                {
                    "name": "all-failing",
                    "expr": f"sum(rate({errors}[5s])) / sum(rate({requests}[5s]))",
                    "comparator": ">",
                    "threshold": 0.99,
                    "for": "30s",
                }
            ],
            "detection": {"synthetic": [alert]},
            "mitigation": {"sli": sli, "comparator": ">=", "objective": 0.99, "confirm_for": "3s"},
            "gameday": {
                "mode": "gameday",
                "max_duration": "2m",
                "ttd_target": "10s",
                "ttm_target": "40s",
                "status_update_every": "20s",
                "steady_state_timeout": "30s",
            },
        }
        path = tmp_path / "report.yaml"
        path.write_text(yaml.safe_dump(data))
        metrics = PrometheusHTTP(prometheus_url)
        t0: list[float] = []
        runner = Runner(
            load_scenario(path),
            str(path),
            metrics,
            RunOptions(handle_signals=False),
            [lambda event: t0.append(time.monotonic()) if event["type"] == "fault_injected" else None],
        )
        session = GamedaySession(runner, metrics)
        runner.listeners.append(session)
        outcome: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
        thread.start()
        rig.wait_for(lambda: t0, timeout=20, what="the fault to be injected")

        def at(seconds: float) -> None:
            time.sleep(max(0.0, t0[0] + seconds - time.monotonic()))

        at(1.0)
        broke = time.time()
        traffic.failing = 0.5
        at(3.0)
        assert runner.run_dir is not None
        record(runner.run_dir, "severity", "P2", by="alice")
        record(runner.run_dir, "ic", "alice", by="alice")
        at(8.0)
        record(runner.run_dir, "change", "terminated the hogging connections", by="bob")
        traffic.failing = 0.0
        fixed = time.time()
        at(16.0)
        record(runner.run_dir, "mitigated", by="alice")
        thread.join(90)
        session.close()
        result = outcome["result"]
        assert result.status is RunStatus.COMPLETED and not ACTIVE_FLAGS
        written = write_run_report(result.run_id, metrics=metrics)

    assert set(written.files) == {"html", "md", "json", "chart"}
    assert written.folder.parent == tmp_path / "reports"
    doc = json.loads(written.files["json"].read_text())
    series = {item["role"]: item for item in doc["series"]}
    assert series["sli"]["step_seconds"] == 1.0 and series["sli"]["samples"] > 20
    assert series["sli"]["min"] == pytest.approx(0.5, abs=0.1)
    assert series["steady_state"]["samples"] > 20 and series["abort_condition"]["samples"] > 20
    impact = {item["key"]: item for item in doc["impact"]}
    # The SLI is below 0.99 from the first failing scrape until the 5 s window forgets the last one.
    assert 6.0 <= impact["users_affected"]["value"] <= 14.0
    truth = traffic.failed_between(broke - 1, fixed + 1)
    assert impact["failed_requests"]["value"] == pytest.approx(truth, rel=0.25)
    assert impact["error_budget"]["value"] > 0
    assert doc["timings"]["ttd"]["met"] is True and doc["timings"]["detected_by"] == "synthetic"
    html = written.files["html"].read_text()
    assert "Hypothesis held" in html and f"report {job}" in html
    kept = json.loads((tmp_path / "state" / "runs" / result.run_id / "debrief-summary.json").read_text())
    assert kept["source"] == "report" and kept["ttd_seconds"] == doc["timings"]["ttd"]["seconds"]


PLANTED_PASSWORD = "Pl4nted-db-Passw0rd"
PLANTED_TOKEN = "pl4nted-api-token-5ec7e7"


def test_no_secret_reaches_any_output_log_or_journal(
    tmp_path: Path, prometheus_url: str, postgres_dsn: str, unique_name: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
    parts = urllib.parse.urlsplit(postgres_dsn)
    planted_dsn = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username}:{PLANTED_PASSWORD}@{parts.hostname}:{parts.port}")
    )
    scenario = {
        "metadata": {
            "title": f"secrets {unique_name}",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "target": {"prometheus": prometheus_url, "postgres": {"dsn_env": "CHECKOUT_DB_DSN"}},
        "steady_state": [
            {"name": "up", "expr": 'min(up{job="prometheus"})', "comparator": "==", "threshold": 1}
        ],
        "faults": [
            {
                "name": "lock",
                "kind": "postgres.lock-contention",
                "params": {"table": "orders", "grace": "5s"},
                "duration": "2s",
            }
        ],
        "abort_conditions": [
            {
                "name": "prometheus-down",
                "expr": 'min(up{job="prometheus"})',
                "comparator": "<",
                "threshold": 1,
            }
        ],
        "gameday": {"check_interval": "250ms"},
    }
    path = tmp_path / "secrets.yaml"
    path.write_text(yaml.safe_dump(scenario))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
        "CHECKOUT_DB_DSN": planted_dsn,
        "CHECKOUT_API_TOKEN": PLANTED_TOKEN,
    }

    def chaosrunner(*args: str) -> subprocess.CompletedProcess[str]:
        return run_chaosrunner(*args, env=env, cwd=tmp_path)

    run = chaosrunner("run", str(path), "--plain")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "injected lock" in run.stdout and "report: " in run.stdout
    [run_dir] = list((tmp_path / "state" / "runs").iterdir())
    outputs = [run.stdout, run.stderr]
    for args in (
        ("report", run_dir.name, "--out", str(tmp_path / "again")),
        ("report", run_dir.name, "--offline", "--format", "md", "--out", str(tmp_path / "offline")),
        ("score", run_dir.name),
        ("score", run_dir.name, "--json"),
        ("history", "--json"),
        ("run", str(path), "--json"),
    ):
        result = chaosrunner(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        outputs += [result.stdout, result.stderr]
        if args[0] == "run":  # --json: stdout is the document alone; where the report is goes to stderr
            assert json.loads(result.stdout)["status"] == "completed"
            assert "report: " in result.stderr
    files = [
        p
        for folder in ("state", "reports", "again", "offline")
        for p in (tmp_path / folder).rglob("*")
        if p.is_file()
    ]
    assert any(p.name == "journal.jsonl" for p in files) and any(p.name == "report.html" for p in files)
    assert (
        len([p for p in files if p.name == "report.html"]) == 3
    )  # two runs' automatic reports, and `report`
    for secret in (PLANTED_PASSWORD, PLANTED_TOKEN, planted_dsn):
        for text in outputs:
            assert secret not in text
        for file in files:
            assert secret not in file.read_text(errors="replace"), f"{secret!r} in {file}"
