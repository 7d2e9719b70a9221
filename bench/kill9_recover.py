"""kill -9 at random moments, then `chaosrunner recover`: zero faults left, N of N.

Each of the runs starts `chaosrunner run` as a separate process on the
two-real-fault scenario of engine_harness.py (a paused container and an
exhausted PostgreSQL role), SIGKILLs it after a random delay - before,
during or after injection - then runs `chaosrunner recover` and checks the
services themselves (container state, backends, holder processes). The
journal's write-ahead revert records are what make this possible; the
holders' own deadlines would end the faults too, but much later.

Usage: python bench/kill9_recover.py [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from engine_harness import Target, push_trigger


def one_run(target: Target, folder: Path, state: Path, rng: random.Random) -> tuple[str, float, list[str]]:
    """Kill one run at a random moment; most kills land around injection, some earlier."""
    env = {**os.environ, "CHAOSRUNNER_STATE_DIR": str(state)}
    path = target.scenario(folder, duration="30s")
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    if rng.random() < 0.2:
        delay = rng.uniform(0.2, 2.0)  # anywhere from start-up to planning
        time.sleep(delay)
    else:
        for line in process.stdout:  # wait for the injection phase, then kill inside it
            if "phase: injecting" in line:
                break
        delay = rng.uniform(0.0, 3.0)
        time.sleep(delay)
    process.kill()
    output, _ = process.communicate()
    injecting = output.count("injecting ")
    injected = output.count("injected ")
    stage = "before inject" if not injecting else f"{injected} of 2 injected"
    recovered = subprocess.run(
        [sys.executable, "-m", "chaosrunner", "recover"], env=env, capture_output=True, text=True, check=False
    )
    if recovered.returncode != 0:
        return stage, delay, [f"recover failed: {recovered.stderr.strip()}"]
    return stage, delay, target.wait_clean(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    target = Target(uuid.uuid4().hex[:8])
    push_trigger(target.job, 0)
    clean = 0
    stages: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            state = Path(os.environ["CHAOSRUNNER_STATE_DIR"])
            for number in range(1, args.runs + 1):
                stage, delay, left = one_run(target, Path(folder), state, rng)
                stages[stage] = stages.get(stage, 0) + 1
                clean += not left
                print(
                    f"run {number:2d}: kill -9 {delay:.2f} s into its phase ({stage}) -> "
                    + (f"LEFT: {left}" if left else "clean")
                )
    finally:
        target.close()
    print()
    print(f"kill -9 then recover: {clean} of {args.runs} left zero faults behind")
    print("moments of the kill: " + ", ".join(f"{stage}: {count}" for stage, count in sorted(stages.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
