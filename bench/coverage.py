"""Coverage over 1,000 stored runs x 50 alert rules: prints figures, asserts nothing.

    python bench/coverage.py [--runs 1000] [--rules 50] [--postgres DSN]

Generates report documents (the detection part realistic, the rest small),
times the pure part (report.coverage) alone, then - with helper C's results
store (chaosrunner.results) - puts them into a fresh SQLite store (and into
PostgreSQL when a DSN is given) and times reading them back plus coverage,
which is what `chaosrunner coverage` does.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from chaosrunner.report.coverage import coverage


def documents(runs: int, rules: int, scenarios: int = 20) -> list[dict[str, Any]]:
    rng = random.Random(16)
    docs = []
    for index in range(runs):
        scenario = index % scenarios
        alerts = []
        for rule in range(rules):
            expected = rule % scenarios == scenario
            fired = rng.random() < (0.8 if expected else 0.05)
            alerts.append(
                {
                    "alert": f"Rule{rule:02d}",
                    "layer": "synthetic" if expected else "monitoring",
                    "expected": expected,
                    "fired": fired,
                    "pre_existing": rng.random() < 0.01,
                    "first_firing_seconds_after_t0": round(rng.uniform(1, 60), 3) if fired else None,
                }
            )
        started = f"2026-01-{1 + index // 100:02d}T{index % 24:02d}:{index % 60:02d}:00.000Z"
        docs.append(
            {
                "schema_version": 1,
                "run": {"id": f"bench-{index:05d}", "started": started, "status": "completed"},
                "scenario": {"title": f"scenario {scenario}", "faults": [{"kind": "inprocess.flag"}]},
                "timings": {"t0": started, "ttd": {"seconds": 5.0, "target_seconds": 30.0, "met": True}},
                "detection": {"source": "prometheus", "error": None, "rules": [], "alerts": alerts},
            }
        )
    return docs


def timed(what: str, call: Any) -> Any:
    start = time.perf_counter()
    result = call()
    print(f"{what:<48} {time.perf_counter() - start:8.3f} s")
    return result


def through_store(label: str, docs: list[dict[str, Any]], state: Path, dsn: str | None) -> None:
    try:
        from chaosrunner.results.store import open_store
    except ImportError:
        print(f"{label}: no results store in this checkout (chaosrunner.results): skipped")
        return
    with open_store(state, dsn=dsn) as store:
        timed(f"{label}: put {len(docs)} documents", lambda: store.put_many(docs))
        found = timed(f"{label}: read back + coverage", lambda: coverage(store.documents()))
        print(f"{label}: {found.runs} runs, {len(found.cells)} cells")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--postgres", metavar="DSN", help="also time a PostgreSQL store (a scratch database)")
    args = parser.parse_args()
    docs = timed(f"generate {args.runs} runs x {args.rules} rules", lambda: documents(args.runs, args.rules))
    found = timed("coverage (pure, in memory)", lambda: coverage(docs))
    print(f"{found.runs} runs, {len(found.alerts)} alerts, {len(found.cells)} cells")
    with tempfile.TemporaryDirectory() as folder:
        through_store("SQLite", docs, Path(folder), None)
        if args.postgres:
            through_store("PostgreSQL", docs, Path(folder), args.postgres)


if __name__ == "__main__":
    main()
