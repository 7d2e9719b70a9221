"""How fast the results store takes and gives back report documents: prints figures, asserts nothing.

    python bench/results_store.py [RUNS]                # SQLite in a temporary folder
    CHAOSRUNNER_RESULTS_DSN=... python bench/results_store.py [RUNS]   # that PostgreSQL database (rows stay)

The documents are the sample run's report JSON (report.sample) under RUNS run ids,
spread over 10 scenarios: put_many, one put, run_ids, documents() of all and of one
scenario, and documents(since=) of the last tenth.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chaosrunner.report.model import build_report
from chaosrunner.report.sample import sample_run
from chaosrunner.report.writer import render
from chaosrunner.results.store import open_store


def main(runs: int) -> None:
    result, metrics = sample_run()
    base = json.loads(render(build_report(result, metrics), ["json"])["json"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    documents = []
    for i in range(runs):
        document = copy.deepcopy(base)
        document["run"]["id"] = f"bench-{i:06d}"
        document["run"]["started"] = (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z")
        document["scenario"]["title"] = f"Bench scenario {i % 10}"
        documents.append(document)
    size = len(json.dumps(base))
    with tempfile.TemporaryDirectory() as folder, open_store(Path(folder)) as store:
        print(f"store: {store.where}; {runs} documents of {size / 1024:.0f} KiB")

        def timed(what: str, step: object) -> object:
            began = time.perf_counter()
            value = step()  # type: ignore[operator]
            print(f"{what:40} {time.perf_counter() - began:8.3f} s")
            return value

        timed(f"put_many({runs})", lambda: store.put_many(documents))
        timed("put(1) (an update)", lambda: store.put(documents[0]))
        timed("run_ids()", store.run_ids)
        timed("documents() all", lambda: sum(1 for _ in store.documents()))
        timed("documents(one scenario)", lambda: sum(1 for _ in store.documents(["Bench scenario 3"])))
        since = start + timedelta(hours=runs * 9 // 10)
        timed("documents(since: last tenth)", lambda: sum(1 for _ in store.documents(since=since)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
