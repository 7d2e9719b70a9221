"""The SVG charts: well-formed, escaped, and showing what the run did."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

from chaosrunner.report.chart import nice_ticks, run_chart, time_ticks, trend_chart
from chaosrunner.report.history import HistoryEntry
from chaosrunner.report.model import build_report
from chaosrunner.report.sample import T0, sample_run

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def test_run_chart_is_well_formed_and_marks_the_moments() -> None:
    debrief, metrics = sample_run()
    svg = run_chart(build_report(debrief, metrics, now=NOW))
    root = ET.fromstring(svg)  # raises if not well-formed
    labels = texts(svg)
    for expected in ("fault pool", "detected", "mitigated", "recovered", "t0", "SLIobjective >= 0.99"):
        assert expected in labels, expected
    assert len(list(root.iter(f"{SVG}polyline"))) == 3  # one line per panel
    assert "Abort condition errorsaborts when > 8" in labels


def test_marker_labels_never_overlap() -> None:
    debrief, metrics = sample_run()
    report = build_report(debrief, metrics, now=NOW)
    crowded = replace(
        report, markers=[*report.markers, *[replace(m, label=m.label + " again") for m in report.markers]]
    )
    root = ET.fromstring(run_chart(crowded))
    placed = [
        (float(element.get("x", 0)), float(element.get("y", 0)), "".join(element.itertext()))
        for element in root.iter(f"{SVG}text")
        if element.get("class") == "c-m"
    ]
    for i, (x1, y1, text1) in enumerate(placed):
        for x2, y2, _ in placed[i + 1 :]:
            if y1 == y2 and x2 >= x1:
                assert x2 >= x1 + len(text1) * 8.6, f"{text1!r} overlaps the next label"


def test_a_panel_without_data_says_why() -> None:
    debrief, _ = sample_run()
    svg = run_chart(build_report(debrief, None, now=NOW))
    assert any("Prometheus was not queried" in text for text in texts(svg))


def test_expressions_are_escaped() -> None:
    debrief, metrics = sample_run()
    report = build_report(debrief, metrics, now=NOW)
    report.panels[0].expr = 'a{x="</title><script>"} < 1 & b'
    svg = run_chart(report)
    ET.fromstring(svg)
    assert "<script>" not in svg


def test_ticks_are_round() -> None:
    assert nice_ticks(0, 1) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0.45, 1.05) == [0.6, 0.8, 1.0]
    origin = T0.timestamp()
    ticks = time_ticks(origin - 10, origin + 146, origin)
    assert [tick - origin for tick in ticks] == [0, 30, 60, 90, 120]


def entry(
    run_id: str, started: str, ttd: float | None, ttm: float | None, score: float | None
) -> HistoryEntry:
    return HistoryEntry(
        run_id,
        "Checkout pool exhausted",
        "checkout-pool-exhausted",
        started,
        "completed",
        ttd,
        ttm,
        None,
        60.0,
        120.0,
        score,
        "A" if score else None,
        "report",
    )


def test_trend_chart_draws_every_run_and_highlights_this_one() -> None:
    entries = [
        entry("20261001-100000-aaaaaa", "2026-10-01T10:00:00Z", 95.0, 400.0, 41.0),
        entry("20261101-100000-bbbbbb", "2026-11-01T10:00:00Z", 40.0, None, None),
        entry("20261127-140000-5a3b1e", "2026-11-27T14:00:00Z", 20.0, 100.0, 92.1),
    ]
    svg = trend_chart(entries, current="20261127-140000-5a3b1e")
    root = ET.fromstring(svg)
    labels = texts(svg)
    assert {"10-01 10:00", "11-01 10:00", "11-27 14:00", "92.1", "41"} <= set(labels)
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.get("fill", "").startswith("#")]
    assert [bar.get("fill") for bar in bars] == ["#93c5fd", "#1d4ed8"]  # the unscored run has none
    assert len(list(root.iter(f"{SVG}circle"))) == 5  # 3 TTDs, 2 TTMs
