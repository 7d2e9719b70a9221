"""Scripted gamedays on a real Prometheus (1 s scrape and evaluation) and Alertmanager.

The test plays both the system and the team: it pushes the SLI and a pool
gauge through the Pushgateway at known moments after t0 (the "failure" and
its "mitigation"), and marks what the team does at known moments. Alert rules
are real Prometheus rules; Alertmanager receives them. Then it asserts the
measured TTD and TTM (within a scrape interval of what the script did) and
every finding of the score.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.gameday.debrief import debrief
from chaosrunner.gameday.marks import record
from chaosrunner.gameday.scoring import Verdict
from chaosrunner.gameday.session import GamedaySession
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import load_scenario


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


class Gameday:
    """One scripted gameday: system metrics, alert rules, a runner, and a clock from t0."""

    def __init__(
        self,
        tmp_path: Path,
        name: str,
        urls: dict[str, str],
        pushgateway: Any,
        rules: Any,
        rig: Any,
        **gameday: Any,
    ) -> None:
        self.name = name
        self.pushgateway = pushgateway
        self.rig = rig
        self.urls = urls
        self.probe_alert = f"ProbeFailing_{name}"
        self.pool_alert = f"PoolSaturated_{name}"
        self.system(sli=1.0, pool=2)
        rules.add(
            [
                {
                    "name": f"{name}-alerts",
                    "interval": "1s",
                    "rules": [
                        {
                            "alert": self.probe_alert,
                            "expr": f'max(gameday_sli{{job="{name}"}}) < 0.9',
                            "for": gameday.pop("probe_for", "0s"),
                        },
                        {
                            "alert": self.pool_alert,
                            "expr": f'max(gameday_pool_in_use{{job="{name}"}}) >= 10',
                            "for": "2s",
                        },
                    ],
                }
            ]
        )
        sli = f'max(gameday_sli{{job="{name}"}})'
        rig.wait_for(
            lambda: rig.prom_query(urls["prometheus"], sli), timeout=20, what="the SLI in Prometheus"
        )
        data = {
            "metadata": {
                "title": f"gameday {name}",
                "owner": "tests",
                "expected_severity": "P2",
                "hypothesis": "h",
            },
            "target": {"prometheus": urls["prometheus"], "alertmanager": urls["alertmanager"]},
            "steady_state": [{"name": "sli", "expr": sli, "comparator": ">=", "threshold": 0.99}],
            "faults": [{"name": "pool", "kind": "inprocess.flag", "params": {"flag": name}}],
            "detection": {"synthetic": [self.probe_alert], "infrastructure": [self.pool_alert]},
            "mitigation": {"sli": sli, "comparator": ">=", "objective": 0.99, "confirm_for": "3s"},
            "gameday": {
                "mode": "gameday",
                "max_duration": "2m",
                "ttd_target": "10s",
                "ttm_target": "30s",
                "status_update_every": "10s",
                **gameday,
            },
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        self.scenario = load_scenario(path)
        self.metrics = PrometheusHTTP(urls["prometheus"])
        self.events: list[dict] = []
        self.t0: float | None = None
        self.runner = Runner(
            self.scenario, str(path), self.metrics, RunOptions(handle_signals=False), [self._listen]
        )
        self.session = GamedaySession(self.runner, self.metrics)
        self.runner.listeners.append(self.session)

    def _listen(self, event: dict) -> None:
        self.events.append(event)
        if event["type"] == "fault_injected" and self.t0 is None:
            self.t0 = time.monotonic()

    def system(self, *, sli: float, pool: float) -> None:
        self.pushgateway.push("gameday_sli", sli, instance="sli")
        self.pushgateway.push("gameday_pool_in_use", pool, instance="pool")

    def at(self, seconds: float) -> None:
        """Sleep until t0 + seconds."""
        assert self.t0 is not None
        time.sleep(max(0.0, self.t0 + seconds - time.monotonic()))

    def mark(
        self, seconds: float, event: str, value: str | None = None, *, by: str, via: str | None = None
    ) -> None:
        self.at(seconds)
        assert self.runner.run_dir is not None
        record(self.runner.run_dir, event, value, by=by, via=via)

    def play(self, script: Any) -> Any:
        outcome: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: outcome.setdefault("result", self.runner.run()))
        thread.start()
        deadline = time.monotonic() + 15
        while self.t0 is None and time.monotonic() < deadline:
            time.sleep(0.01)
        script(self)
        thread.join(90)
        self.session.close()
        return outcome["result"]


@pytest.fixture
def urls(prometheus_url: str, alertmanager_url: str) -> dict[str, str]:
    return {"prometheus": prometheus_url, "alertmanager": alertmanager_url}


def findings(result: Any) -> dict[str, Any]:
    return {finding.criterion: finding for finding in result.score.findings}


def test_a_well_run_gameday_scores_full_marks(
    tmp_path: Path, urls: dict[str, str], pushgateway: Any, prometheus_rules: Any, rig: Any, unique_name: str
) -> None:
    game = Gameday(tmp_path, unique_name, urls, pushgateway, prometheus_rules, rig)

    def team(g: Gameday) -> None:
        g.at(1.0)
        g.system(sli=0.5, pool=10)  # the failure becomes visible to users
        g.mark(3.0, "severity", "P2", by="alice")
        g.mark(3.2, "ic", "alice", by="alice")
        g.mark(
            4.0,
            "status",
            "checkout failing for 50% of users; hypothesis: db pool exhausted; "
            "@bob is terminating idle connections; next update in 10s",
            by="alice",
        )
        g.mark(5.0, "change", "terminated the hogging connections", by="bob")
        g.at(6.0)
        g.system(sli=1.0, pool=3)  # the mitigation works
        g.mark(8.0, "mitigated", by="alice")
        g.mark(9.0, "cause", "a batch job leaked connections", by="bob")

    result = game.play(team)
    assert result.status is RunStatus.COMPLETED and not ACTIVE_FLAGS
    report = debrief(result.run_id)
    m = report.measurement
    # Detection: the synthetic alert (for 0s) fires on the first evaluation that sees the scrape of 0.5.
    assert m.detection_layer == "synthetic"
    assert timedelta(seconds=1.0) <= m.ttd <= timedelta(seconds=3.5)
    assert {e.source for e in m.detection.evidence} >= {"prometheus"}
    # Mitigation: the SLI came back at t0+6 (visible within one scrape); confirmed for 3s.
    assert timedelta(seconds=5.5) <= m.ttm <= timedelta(seconds=8.0)
    assert m.ttr is not None and m.ttr >= m.ttm
    verdicts = {name: finding.verdict for name, finding in findings(report).items()}
    assert verdicts == {
        "detected_by_monitoring": Verdict.PASSED,
        "ttd_within_target": Verdict.PASSED,
        "severity_declared": Verdict.PASSED,
        "incident_commander": Verdict.PASSED,
        "status_updates": Verdict.PASSED,
        "mitigation_before_root_cause": Verdict.PASSED,
        "ttm_within_target": Verdict.PASSED,
        "escalation": Verdict.NOT_APPLICABLE,
        "single_changer": Verdict.PASSED,
    }
    assert report.score.total == 100.0 and report.score.grade == "A"
    assert report.verdict.hypothesis_held and report.verdict.blast_radius_contained
    ending = next(e for e in game.events if e["type"] == "faults_ending")
    assert ending["reason"] == "alice marked mitigated, confirmed by the SLI"
    alerts = [e for e in game.events if e["type"] == "alert"]
    assert {(e["source"], e["name"]) for e in alerts} >= {("prometheus", game.probe_alert)}


def test_a_messy_gameday_fails_the_criteria_it_breaks(
    tmp_path: Path,
    urls: dict[str, str],
    pushgateway: Any,
    prometheus_rules: Any,
    rig: Any,
    unique_name: str,
    alertmanager_url: str,
) -> None:
    # The probe alert waits 8s, so a user report comes first; the TTM target is short.
    game = Gameday(
        tmp_path,
        unique_name,
        urls,
        pushgateway,
        prometheus_rules,
        rig,
        probe_for="8s",
        ttm_target="6s",
        status_update_every="4s",
    )

    def team(g: Gameday) -> None:
        g.at(0.5)
        g.system(sli=0.4, pool=10)
        g.mark(1.5, "detected", by="support", via="user_report")
        g.mark(2.0, "severity", "P3", by="carol")  # expected P2
        g.mark(2.2, "ic", "carol", by="carol")
        g.mark(2.5, "status", "something is wrong", by="carol")  # no hypothesis, owner or next update
        g.mark(3.0, "cause", "probably the database", by="dave")  # cause before mitigation
        g.mark(3.5, "change", "restarted the database", by="carol")  # the IC makes a change
        g.mark(4.0, "change", "scaled the pool", by="dave")
        g.mark(4.5, "change", "restarted it again", by="carol")  # interleaved changers
        g.at(9.0)
        g.system(sli=1.0, pool=2)  # mitigated only after the 6s target, nobody escalated

    result = game.play(team)
    assert result.status is RunStatus.COMPLETED
    report = debrief(result.run_id)
    m = report.measurement
    assert m.detection_layer == "user_report"
    assert timedelta(seconds=1.4) <= m.ttd <= timedelta(seconds=1.7)  # the mark's own time
    assert timedelta(seconds=8.5) <= m.ttm <= timedelta(seconds=11.0)
    found = findings(report)
    assert found["detected_by_monitoring"].verdict is Verdict.FAILED
    assert found["ttd_within_target"].verdict is Verdict.PASSED
    assert (
        found["severity_declared"].verdict is Verdict.FAILED
        and "declared P3, expected P2" in found["severity_declared"].summary
    )
    assert (
        found["incident_commander"].verdict is Verdict.FAILED
        and "also made 2" in found["incident_commander"].summary
    )
    assert found["status_updates"].verdict is Verdict.FAILED
    assert "missing what is affected, current hypothesis, who does what, next update" in " ".join(
        found["status_updates"].evidence
    )
    assert found["mitigation_before_root_cause"].verdict is Verdict.FAILED
    assert found["ttm_within_target"].verdict is Verdict.FAILED
    assert found["escalation"].verdict is Verdict.FAILED
    assert found["single_changer"].verdict is Verdict.FAILED
    for finding in found.values():
        if finding.verdict is Verdict.FAILED:
            assert finding.action_item, finding.criterion
    assert report.score.total < 40 and report.score.grade == "F"
    assert any(e["type"] == "escalation_due" for e in game.events)
    ending = next(e for e in game.events if e["type"] == "faults_ending")
    assert "SLI back within its objective" in ending["reason"]  # nobody marked it: the data did
