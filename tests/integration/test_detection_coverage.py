"""Detection coverage on the real rig: real rules in Prometheus, real runs, real reports.

The test Prometheus loads four rules for this test (tests' rule dir, see
conftest.PrometheusRules); a thread mirrors the in-process fault's flag to a
Pushgateway gauge the rules read, so an alert fires *because* of the fault:

- ``Fires``  - expected (synthetic): fires with the fault -> caught;
- ``Never``  - expected (infrastructure): can never fire -> gap;
- ``Noise``  - not expected: fires with the fault -> noise;
- ``Always`` - not expected: firing before every run -> pre-existing each time,
  never counted, so untested.

Three runs of one scenario go through the runner (alert_rules journaled at
preflight), the report (detection from Prometheus' ALERTS samples) and the
results store; ``chaosrunner coverage --json`` classifies each alert, and its
median time to first firing equals the median of the runs' own measured TTDs.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.report.writer import write_run_report
from chaosrunner.scenario.loader import load_scenario
from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]
RUNS = 3


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHAOSRUNNER_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("CHAOSRUNNER_RESULTS_DSN", raising=False)
    ACTIVE_FLAGS.clear()


class FlagMirror:
    """Pushes 1 while the fault's flag is raised, else 0: the 'system' the rules watch."""

    def __init__(self, pushgateway: Any, flag: str) -> None:
        self.pushgateway = pushgateway
        self.flag = flag
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.pushgateway.push("detcov_fault_active", 1.0 if self.flag in ACTIVE_FLAGS else 0.0)

    def __enter__(self) -> FlagMirror:
        self.pushgateway.push("detcov_fault_active", 0.0)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_coverage_classifies_caught_gap_noise_and_pre_existing_over_real_runs(
    tmp_path: Path,
    prometheus_url: str,
    pushgateway: Any,
    prometheus_rules: Any,
    rig: Any,
    unique_name: str,
) -> None:
    job = unique_name
    active = f'max(detcov_fault_active{{job="{job}"}})'
    names = {key: f"{job}_{key}" for key in ("Fires", "Never", "Noise", "Always")}
    with FlagMirror(pushgateway, job):
        prometheus_rules.add(
            [
                {
                    "name": f"{job}-detection",
                    "interval": "1s",
                    "rules": [
                        {"alert": names["Fires"], "expr": f"{active} > 0", "for": "0s"},
                        {"alert": names["Never"], "expr": "vector(1) > 2", "for": "0s"},
                        {"alert": names["Noise"], "expr": f"{active} > 0", "for": "1s"},
                        {"alert": names["Always"], "expr": "vector(1) > 0", "for": "0s"},
                    ],
                }
            ]
        )
        rig.wait_for(lambda: rig.prom_query(prometheus_url, active), timeout=30, what="the flag gauge")
        rig.wait_for(
            lambda: rig.prom_query(
                prometheus_url, f'ALERTS{{alertname="{names["Always"]}",alertstate="firing"}}'
            ),
            timeout=30,
            what="the always-firing alert",
        )
        title = f"detection {job}"
        scenario = {
            "metadata": {"title": title, "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
            "target": {"prometheus": prometheus_url},
            "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": job}, "duration": "6s"}],
            "detection": {"synthetic": [names["Fires"]], "infrastructure": [names["Never"]]},
            "gameday": {"ttd_target": "30s", "check_interval": "250ms"},
        }
        path = tmp_path / "detection.yaml"
        path.write_text(yaml.safe_dump(scenario))
        metrics = PrometheusHTTP(prometheus_url)
        documents = []
        firing = f'ALERTS{{alertname=~"{names["Fires"]}|{names["Noise"]}"}}'
        for _ in range(RUNS):
            result = Runner(load_scenario(path), str(path), metrics, RunOptions(handle_signals=False)).run()
            assert result.status is RunStatus.COMPLETED and not ACTIVE_FLAGS
            rig.wait_for(  # the fault's alerts resolved before the next run begins
                lambda: not rig.prom_query(prometheus_url, firing), timeout=20, what="the alerts to resolve"
            )
            time.sleep(3)  # and quiet for a while: one firing a second before a run is pre-existing
            written = write_run_report(result.run_id, metrics=metrics)
            documents.append(json.loads(written.files["json"].read_text()))

    for document in documents:
        detection = document["detection"]
        assert detection["source"] == "prometheus"
        rules = {rule["name"]: rule for rule in detection["rules"]}
        assert set(names.values()) <= set(rules)  # every rule, not only the expected ones
        assert rules[names["Noise"]]["for_seconds"] == 1.0
        assert (
            rules[names["Fires"]]["layer"] == "synthetic" and rules[names["Noise"]]["layer"] == "monitoring"
        )
        verdicts = {alert["alert"]: alert["verdict"] for alert in detection["alerts"]}
        assert [verdicts[names[key]] for key in ("Fires", "Never", "Noise", "Always")] == [
            "caught",
            "gap",
            "noise",
            "pre_existing",
        ]

    from chaosrunner.results.store import open_store

    with open_store(tmp_path / "state", dsn=None) as store:
        store.put_many(documents)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("CHAOSRUNNER_RESULTS_DSN", None)
    page = tmp_path / "coverage.html"
    done = run_chaosrunner("coverage", "--scenario", title, "--json", "--html", str(page), env=env)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["runs"] == RUNS
    rows = {row["alert"]: row for row in found["rows"] if row["scenario"] == title}
    fires, never, noise, always = (rows[names[key]] for key in ("Fires", "Never", "Noise", "Always"))
    assert (fires["verdict"], fires["expected"], fires["fired"], fires["runs"]) == (
        "caught",
        True,
        RUNS,
        RUNS,
    )
    assert (never["verdict"], never["expected"], never["fired"], never["ttd_seconds"]) == (
        "gap",
        True,
        0,
        None,
    )
    assert (noise["verdict"], noise["expected"], noise["fired"]) == ("noise", False, RUNS)
    assert (always["verdict"], always["runs"], always["pre_existing"]) == ("untested", 0, RUNS)
    # The cell's median time to first firing is the median of the runs' own TTDs.
    own = [document["timings"]["ttd"]["seconds"] for document in documents]
    assert all(seconds is not None and seconds > 0 for seconds in own)
    assert fires["ttd_seconds"] == pytest.approx(statistics.median(own), abs=0.01)
    assert noise["ttd_seconds"] > fires["ttd_seconds"]  # its `for: 1s` holds it back
    alerts = {alert["alert"]: alert for alert in found["alerts"]}
    assert (alerts[names["Fires"]]["precision"], alerts[names["Fires"]]["recall"]) == (1.0, 1.0)
    assert (alerts[names["Never"]]["precision"], alerts[names["Never"]]["recall"]) == (None, 0.0)
    assert (alerts[names["Noise"]]["precision"], alerts[names["Noise"]]["recall"]) == (0.0, None)
    (summary,) = [item for item in found["scenarios"] if item["scenario"] == title]
    assert summary["layers_caught"] == ["synthetic"] and summary["fault_kinds"] == ["inprocess.flag"]
    assert summary["median_ttd_seconds"] == pytest.approx(statistics.median(own), abs=0.01)
    html = page.read_text()
    assert "<script" not in html and names["Never"] in html and "GAP" in html
    assert oct(page.stat().st_mode & 0o777) == "0o600"
