"""Measurement error of TTD and TTM against known moments on a real Prometheus.

Each trial plays a failure with known timing through the rig's Pushgateway
(1 s scrape, 1 s rule evaluation): the SLI drops at a random phase of the
scrape cycle, an alert rule watches it, and the SLI comes back later. The
ground truth is read from Prometheus' own records, live:

- detection truth: the alert's ``activeAt`` + ``for`` from /api/v1/alerts,
  polled every 50 ms while it fires - the moment the alert went firing;
- mitigation truth: the timestamp of the first good raw SLI sample (the
  scrape that brought it back), from the raw series.

chaosrunner's measurement (gameday.measure) runs afterwards on range queries
only, as `chaosrunner score` does. Target: errors within one scrape interval
(1 s). For contrast the benchmark also prints what a poller that checks the
alerts API every 5 s would have recorded for detection.

Usage: python bench/measurement_error.py [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine_harness import PROMETHEUS, PUSHGATEWAY, percentile

from chaosrunner.engine.journal import utc_now
from chaosrunner.gameday.measure import measure
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import scenario_from_data

RIG = Path("/var/tmp/chaosrunner-rig")
POLL_S = 5.0


def push(job: str, value: float) -> None:
    body = f"# TYPE bench_sli gauge\nbench_sli {value}\n".encode()
    urllib.request.urlopen(
        urllib.request.Request(f"{PUSHGATEWAY}/metrics/job/{job}", data=body, method="PUT")
    ).close()


def post(path: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{PROMETHEUS}{path}", data=b"", method="POST")).close()


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": event_type, "time": utc_now(), "offset": 0.0, **fields}


def trial(job: str, alert: str, rng: random.Random) -> tuple[float, float, float]:
    prometheus = PrometheusHTTP(PROMETHEUS)
    sli = f'max(bench_sli{{job="{job}"}})'
    push(job, 1.0)
    while prometheus.instant(sli).values != (1.0,):
        time.sleep(0.05)
    time.sleep(rng.uniform(0, 1))
    events = [event("fault_injected", fault="f", kind="inprocess.flag", revert_record={})]
    time.sleep(1.0 + rng.uniform(0, 1))
    push(job, 0.5)  # the failure begins
    truth_detect = None
    while truth_detect is None:
        for item in prometheus.alerts():
            if item.name == alert and item.state == "firing":
                truth_detect = item.active_at.timestamp()  # `for: 0s`: active and firing at once
        time.sleep(0.05)
    poller_sees = truth_detect + rng.uniform(0, POLL_S)  # a 5 s poller lands anywhere in its period
    time.sleep(2.0 + rng.uniform(0, 1))
    push(job, 1.0)  # the mitigation
    time.sleep(4.0)
    events.append(event("faults_ending", reason="bench"))
    time.sleep(1.0)
    events.append(event("run_finished", status="completed", exit_code=0, detail=""))
    raw = prometheus._client.custom_query(f'bench_sli{{job="{job}"}}[60s]')[0]["values"]
    samples = [(float(t), float(v)) for t, v in raw]
    last_bad = max(t for t, v in samples if v < 0.99)
    truth_mitigate = min(t for t, v in samples if t > last_bad)
    scenario = scenario_from_data(
        {
            "metadata": {"title": "bench", "owner": "bench", "expected_severity": "P2", "hypothesis": "h"},
            "target": {"prometheus": PROMETHEUS},
            "faults": [{"name": "f", "kind": "inprocess.flag", "params": {"flag": "f"}}],
            "detection": {"synthetic": [alert]},
            "mitigation": {"sli": sli, "comparator": ">=", "objective": 0.99, "confirm_for": "2s"},
            "gameday": {"mode": "gameday"},
        }
    )
    measured = measure(events, scenario, prometheus)
    assert measured.detection.at and measured.mitigation.at, (measured.detection, measured.mitigation)
    return (
        measured.detection.at.timestamp() - truth_detect,
        measured.mitigation.at.timestamp() - truth_mitigate,
        poller_sees - truth_detect,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:8]
    job, alert = f"bench-measure-{tag}", f"BenchSliLow_{tag}"
    rules = RIG / "prometheus" / "rules" / f"bench-{tag}.yml"
    rules.write_text(
        json.dumps(
            {
                "groups": [
                    {
                        "name": f"bench-{tag}",
                        "interval": "1s",
                        "rules": [
                            {"alert": alert, "expr": f'max(bench_sli{{job="{job}"}}) < 0.9', "for": "0s"}
                        ],
                    }
                ]
            }
        )
    )
    post("/-/reload")
    detect_errors, mitigate_errors, poller_errors = [], [], []
    try:
        time.sleep(2)
        for number in range(1, args.trials + 1):
            detect, mitigate, poller = trial(job, alert, rng)
            detect_errors.append(detect)
            mitigate_errors.append(mitigate)
            poller_errors.append(poller)
            print(
                f"trial {number:2d}: detection error {detect:+.3f} s, mitigation error {mitigate:+.3f} s "
                f"(a {POLL_S:g} s poller: {poller:+.3f} s)"
            )
    finally:
        rules.unlink(missing_ok=True)
        post("/-/reload")
        urllib.request.urlopen(
            urllib.request.Request(f"{PUSHGATEWAY}/metrics/job/{job}", method="DELETE")
        ).close()

    def line(name: str, values: list[float]) -> str:
        worst = max(abs(value) for value in values)
        return (
            f"{name:<22} median {statistics.median(values):+.3f} s, p95 {percentile(values, 0.95):+.3f} s, "
            f"worst |error| {worst:.3f} s  ({'within' if worst <= 1.0 else 'OUTSIDE'} one 1 s scrape interval)"
        )

    print()
    print(line("detection (TTD)", detect_errors))
    print(line("mitigation (TTM)", mitigate_errors))
    print(
        f"{'5 s alerts poller':<22} median {statistics.median(poller_errors):+.3f} s, "
        f"worst {max(poller_errors):.3f} s  (what polling would have recorded)"
    )
    print(f"measured at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on a 1 s scrape / 1 s evaluation Prometheus")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
