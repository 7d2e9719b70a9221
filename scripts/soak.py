"""`make soak`: the integration tier several times in a row while two CPU burners run.

Races between a revert and something still in flight show up as tests that
fail once in ten runs on a loaded machine, never on an idle one. This runs the
tier SOAK_RUNS times (default 10) with two busy-looping processes taking the
CPUs, records each round's outcomes from pytest's JUnit XML, and prints, per
test, how often it passed and failed. It exits 1 if any test failed in any
round (or a round produced no results at all).

    SOAK_RUNS=10 SOAK_ARGS="-m integration" python scripts/soak.py

SOAK_ARGS are pytest's arguments (split like a shell would). The burners are
killed on every exit: normal end, a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[1]
BURNER = "while True: pass"


def start_burners(count: int = 2) -> list[subprocess.Popen[bytes]]:
    # Own sessions: a Ctrl-C reaches them only through us, so the clean-up below is the one path.
    return [subprocess.Popen([sys.executable, "-c", BURNER], start_new_session=True) for _ in range(count)]


def stop_burners(burners: list[subprocess.Popen[bytes]]) -> None:
    for burner in burners:
        if burner.poll() is None:
            burner.kill()
        burner.wait()


def outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed | failed | skipped, from one round's JUnit XML."""
    results: dict[str, str] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[test_id] = "failed"  # an error in setup or teardown is a failure of the round too
        elif case.find("skipped") is not None:
            results.setdefault(test_id, "skipped")
        else:
            results.setdefault(test_id, "passed")
    return results


def run_round(number: int, runs: int, pytest_args: list[str], folder: Path) -> dict[str, str] | None:
    junit = folder / f"round-{number}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *pytest_args,
        f"--junitxml={junit}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    started = time.monotonic()
    completed = subprocess.run(command, cwd=REPO, check=False)
    took = time.monotonic() - started
    if not junit.exists():
        print(f"soak: round {number}/{runs}: pytest exited {completed.returncode} and wrote no results")
        return None
    results = outcomes(junit)
    counts = Counter(results.values())
    print(
        f"soak: round {number}/{runs}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped in {took:.0f}s (pytest exit {completed.returncode})",
        flush=True,
    )
    if completed.returncode not in (0, 1) and not counts["failed"]:
        return None  # interrupted or a usage/collection error: the round did not run as asked
    return results


def table(rounds: list[dict[str, str] | None]) -> list[str]:
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for results in rounds:
        for test_id, outcome in (results or {}).items():
            {"passed": passed, "failed": failed, "skipped": skipped}[outcome][test_id] += 1
    tests = sorted(set(passed) | set(failed) | set(skipped), key=lambda t: (-failed[t], t))
    width = max([len("test"), *(len(test) for test in tests)])
    lines = [f"{'test':<{width}}  {'passed':>6}  {'failed':>6}  {'skipped':>7}"]
    lines += [f"{test:<{width}}  {passed[test]:>6}  {failed[test]:>6}  {skipped[test]:>7}" for test in tests]
    return lines


def main() -> int:
    runs = int(os.environ.get("SOAK_RUNS", "10"))
    pytest_args = shlex.split(os.environ.get("SOAK_ARGS", "-m integration"))
    # SIGTERM (a CI timeout, `kill`) ends us through the same finally as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    print(f"soak: {runs} round(s) of pytest {shlex.join(pytest_args)} with 2 CPU burners", flush=True)
    rounds: list[dict[str, str] | None] = []
    interrupted = False
    burners = start_burners()
    try:
        with tempfile.TemporaryDirectory(prefix="chaosrunner-soak-") as folder:
            for number in range(1, runs + 1):
                rounds.append(run_round(number, runs, pytest_args, Path(folder)))
    except KeyboardInterrupt:
        interrupted = True  # subprocess.run has killed the round's pytest; report what finished
    finally:
        stop_burners(burners)
    print()
    if interrupted:
        print(f"soak: interrupted after {len(rounds)} complete round(s)")
    print("\n".join(table(rounds)))
    failures = sum(1 for results in rounds for outcome in (results or {}).values() if outcome == "failed")
    broken = sum(1 for results in rounds if results is None)
    print(
        f"\nsoak: {len(rounds)} of {runs} round(s), {failures} failed test run(s), "
        f"{broken} round(s) without results"
    )
    if interrupted:
        return 130
    return 1 if failures or broken else 0


if __name__ == "__main__":
    sys.exit(main())
