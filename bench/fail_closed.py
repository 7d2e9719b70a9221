"""Fail closed: Prometheus dies mid-run, and every fault must be reverted within 3 s.

Each trial starts a private Prometheus (the rig's shared one is not killed),
runs the two-real-fault scenario of engine_harness.py against it, and once
both faults are in place kills Prometheus with SIGKILL (t_kill). The figure is
t_kill to the last ``fault_reverted``; the target is 3 s in 20 of 20 trials.
For reference, Chaos Toolkit's safeguard silently stops checking when
Prometheus is unreachable, and its run completes with exit 0.

Usage: python bench/fail_closed.py [--trials 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from engine_harness import PUSHGATEWAY, Target, percentile, push_trigger

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import load_scenario
from tests.support.private_prometheus import PrivatePrometheus

TARGET_S = 3.0


def trial(target: Target, folder: Path) -> tuple[float, str, list[str]]:
    prometheus = PrivatePrometheus(PUSHGATEWAY)
    prometheus.start()
    try:
        client = PrometheusHTTP(prometheus.url)
        while not client.instant(f'chaosrunner_bench_trigger{{job="{target.job}"}}').values:
            time.sleep(0.1)
        path = target.scenario(folder, prometheus=prometheus.url)
        events: list[dict] = []
        reverted_at: dict[str, float] = {}
        injected = threading.Event()

        def listen(event: dict) -> None:
            events.append(event)
            if sum(e["type"] == "fault_injected" for e in events) == 2:
                injected.set()
            if event["type"] == "fault_reverted":
                reverted_at[event["fault"]] = time.monotonic()

        runner = Runner(load_scenario(path), str(path), client, RunOptions(handle_signals=False), [listen])
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
        thread.start()
        if not injected.wait(30):
            raise RuntimeError("faults were not injected")
        time.sleep(0.3)
        killed = time.monotonic()
        prometheus.kill()
        thread.join(60)
        result = outcome["result"]
        cause = next((e["cause"] for e in events if e["type"] == "abort"), "none")
        if result.status is not RunStatus.ABORTED or len(reverted_at) != 2:
            raise RuntimeError(f"unexpected outcome: {result.status} {result.detail}")
        return max(reverted_at.values()) - killed, cause, target.wait_clean()
    finally:
        prometheus.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    target = Target(uuid.uuid4().hex[:8])
    push_trigger(target.job, 0)
    times, within, dirty = [], 0, 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            for number in range(1, args.trials + 1):
                seconds, cause, left = trial(target, Path(folder))
                times.append(seconds)
                within += seconds <= TARGET_S
                dirty += bool(left)
                print(
                    f"trial {number:2d}: all reverted {seconds:.3f} s after Prometheus died (abort cause: {cause})"
                    + (f"  LEFT: {left}" if left else "")
                )
    finally:
        target.close()
    print()
    print(
        f"Prometheus killed -> all reverted: median {statistics.median(times):.3f} s, "
        f"p95 {percentile(times, 0.95):.3f} s, max {max(times):.3f} s"
    )
    print(
        f"within {TARGET_S:g} s: {within} of {args.trials}; faults left on the system: {dirty} of {args.trials}"
    )
    print("reference: Chaos Toolkit's safeguard stops checking and the run completes with exit 0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
