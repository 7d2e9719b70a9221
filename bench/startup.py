"""Start-up cost of the CLI: median wall time of `chaosrunner --help` and of
validating every bundled file, each in a fresh process.

Target: `--help` median within 0.15 s on the reference machine (2 cores).
For reference, Chaos Toolkit with its Kubernetes, Prometheus and reporting
plugins takes 1.14 s for `chaos --help` on the same machine.

Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELP_TARGET_S = 0.15
CHAOS_TOOLKIT_HELP_S = 1.14


def wall_times(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, cwd=REPO, capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def report(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    print(f"{label:<44} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   (n={len(times)})")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    # The console script next to this interpreter, not a version manager's shim in front
    # of it (a pyenv shim alone costs a bash start and a lookup on every call).
    beside = Path(sys.executable).parent / "chaosrunner"
    executable = str(beside) if beside.exists() else shutil.which("chaosrunner")
    if executable is None:
        print("chaosrunner is not installed: run `make install` first", file=sys.stderr)
        return 3
    bundled = sorted([*REPO.glob("scenarios/**/*.y*ml"), *REPO.glob("abort_conditions/*.y*ml")])
    bare = report("python -c pass (interpreter floor)", wall_times([sys.executable, "-c", "pass"], args.runs))
    help_median = report("chaosrunner --help", wall_times([executable, "--help"], args.runs))
    report(
        f"chaosrunner validate ({len(bundled)} bundled files)",
        wall_times([executable, "validate", "scenarios", "abort_conditions"], args.runs),
    )
    print()
    print(
        f"--help target {HELP_TARGET_S * 1000:.0f} ms: {'met' if help_median <= HELP_TARGET_S else 'MISSED'} "
        f"({help_median / HELP_TARGET_S:.2f} of the budget)"
    )
    print(f"--help above the bare interpreter: {(help_median - bare) * 1000:.1f} ms")
    print(
        f"Chaos Toolkit `chaos --help` reference {CHAOS_TOOLKIT_HELP_S:.2f} s: "
        f"chaosrunner is {CHAOS_TOOLKIT_HELP_S / help_median:.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
