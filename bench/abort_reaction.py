"""Abort reaction: from an abort metric crossing its threshold to every fault reverted.

Each trial runs a real scenario (a paused container and an exhausted
PostgreSQL role, see engine_harness.py) under one abort condition on a metric
pushed through the Pushgateway and scraped every second. With both faults in
place, the benchmark pushes the breaching value (t_cross), polls Prometheus
every 10 ms to see when the value becomes visible (t_visible), and takes the
time of the last ``fault_reverted`` event (t_reverted).

- reaction   = t_reverted - t_cross   (targets: median <= 1.0 s, p95 <= 1.6 s)
- our share  = t_reverted - t_visible (target: median <= 0.3 s)

The scrape interval is the floor of the first figure and none of our doing.
For reference, Chaos Toolkit's safeguards with --rollback-strategy always took
median 2.05 s, p95 2.46 s (own share 1.37 s) on this machine.

Usage: python bench/abort_reaction.py [--trials 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from engine_harness import METRIC, PROMETHEUS, Target, percentile, push_trigger

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import load_scenario


def trial(target: Target, folder: Path) -> tuple[float, float, list[str]]:
    push_trigger(target.job, 0)
    prometheus = PrometheusHTTP(PROMETHEUS)
    query = f'max({METRIC}{{job="{target.job}"}})'
    while prometheus.instant(query).values != (0.0,):
        time.sleep(0.05)
    path = target.scenario(folder)
    reverted_at: dict[str, float] = {}
    injected = threading.Event()
    count = {"injected": 0}

    def listen(event: dict) -> None:
        if event["type"] == "fault_injected":
            count["injected"] += 1
            if count["injected"] == 2:
                injected.set()
        elif event["type"] == "fault_reverted":
            reverted_at[event["fault"]] = time.monotonic()

    runner = Runner(load_scenario(path), str(path), prometheus, RunOptions(handle_signals=False), [listen])
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
    thread.start()
    if not injected.wait(30):
        raise RuntimeError("faults were not injected")
    time.sleep(0.5)  # settle; then cross at a random phase of the scrape cycle
    push_trigger(target.job, 1)
    crossed = time.monotonic()
    visible = None
    while visible is None:
        if prometheus.instant(query).values == (1.0,):
            visible = time.monotonic()
        else:
            time.sleep(0.01)
    thread.join(60)
    result = outcome["result"]
    if result.status is not RunStatus.ABORTED or len(reverted_at) != 2:
        raise RuntimeError(f"unexpected outcome: {result.status} {result.detail}")
    done = max(reverted_at.values())
    return done - crossed, done - visible, target.wait_clean()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    target = Target(uuid.uuid4().hex[:8])
    reactions, shares, dirty = [], [], 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            for number in range(1, args.trials + 1):
                reaction, share, left = trial(target, Path(folder))
                reactions.append(reaction)
                shares.append(share)
                dirty += bool(left)
                print(
                    f"trial {number:2d}: reaction {reaction:.3f} s, our share {share:.3f} s"
                    + (f"  LEFT: {left}" if left else "")
                )
    finally:
        target.close()
    print()
    print(
        f"reaction (cross -> all reverted): median {statistics.median(reactions):.3f} s, p95 {percentile(reactions, 0.95):.3f} s"
        f"   targets 1.0 / 1.6 s"
    )
    print(
        f"our share (visible -> reverted):  median {statistics.median(shares):.3f} s, p95 {percentile(shares, 0.95):.3f} s"
        f"   target median 0.3 s"
    )
    print(f"faults left on the system after a trial: {dirty} of {args.trials}")
    print(
        "reference: Chaos Toolkit safeguards (--rollback-strategy always) median 2.05 s, p95 2.46 s, own share 1.37 s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
