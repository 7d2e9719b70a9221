"""How long the debrief report takes for a four-hour run: target <= 3 s for all three formats.

A synthetic run (chaosrunner.report.sample stretched to four hours) with ten
series - the SLI, eight abort conditions and a steady-state check - at 1 s
resolution: 14,400+ points each, more than Prometheus would even return at
one step (the report asks for 2 s on a run this long), so this is the worst
case the renderers can meet. Prometheus is replaced by the sample's metrics
source, so what is timed is the report's own work: assembling the data
(range answers included), drawing the charts, rendering HTML, Markdown and
JSON, scrubbing secrets. Writing the files is timed separately.

It prints; it asserts nothing (timings belong in a benchmark, not a test).

Usage: python bench/report_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    from chaosrunner.report.model import build_report
    from chaosrunner.report.sample import sample_run
    from chaosrunner.report.writer import FORMATS, render, write_report

    imported = time.perf_counter() - started
    debrief, metrics = sample_run(hours=4, conditions=8, resolution=1.0)
    builds, renders, writes = [], [], []
    sizes: dict[str, int] = {}
    for _ in range(args.repeat):
        t = time.perf_counter()
        report = build_report(debrief, metrics)
        builds.append(time.perf_counter() - t)
        t = time.perf_counter()
        texts = render(report, list(FORMATS))
        renders.append(time.perf_counter() - t)
        sizes = {name: len(text.encode()) for name, text in texts.items()}
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            write_report(report, list(FORMATS), Path(folder))
            writes.append(time.perf_counter() - t)
    points = sum(len(panel.points()) for panel in report.panels)
    total = [b + r for b, r in zip(builds, renders, strict=True)]
    print(
        f"synthetic run: 4h, {len(report.panels)} series, {points:,} points, {len(report.timeline)} timeline rows"
    )
    print(f"import report modules      {imported * 1000:7.0f} ms (once)")
    print(f"assemble (build_report)    {statistics.median(builds) * 1000:7.0f} ms (median of {args.repeat})")
    print(f"render html + md + json    {statistics.median(renders) * 1000:7.0f} ms")
    print(f"assemble + render          {statistics.median(total) * 1000:7.0f} ms   target <= 3000 ms")
    print(f"write_report (render+disk) {statistics.median(writes) * 1000:7.0f} ms")
    print("sizes: " + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sizes.items()))


if __name__ == "__main__":
    main()
