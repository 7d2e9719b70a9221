"""The charts, as inline SVG written by hand.

Why by hand and not matplotlib: the report must render a four-hour run with
ten series in well under three seconds, be byte-for-byte deterministic for
golden tests, and be readable on a projector - large type, thick lines,
colours that survive a washed-out beamer, and a dash pattern per marker
kind so they do not rely on colour alone. Importing matplotlib costs about
as much as all of that; a few hundred lines of SVG cost nothing.

The run chart is small multiples sharing one time axis: one panel per
expression (SLI, each abort condition, each steady-state check), because
their units differ and one shared y axis would flatten all but one. Across
every panel: the fault windows shaded, and the moments that matter drawn as
vertical lines - detection, mitigation, recovery, escalation, abort - with
their labels in a band above, staggered so they never overlap. Each panel
tints the side of its threshold that is bad (below the SLI's objective,
above an abort threshold), so "where it went wrong" needs no legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from chaosrunner.report import fmt
from chaosrunner.report.history import HistoryEntry
from chaosrunner.report.model import Report
from chaosrunner.report.series import Panel, downsample, label_text
from chaosrunner.scenario.models import Comparator

WIDTH = 1200
LEFT = 92
RIGHT = 28
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PANEL_HEIGHT = 140
PANEL_TITLE = 40  # the title line above each panel
LABEL_ROW = 24
BOTTOM = 62
CHAR_WIDTH = 8.6  # of the 15px label font: to stagger labels without measuring text

LINE_COLOURS = {
    "sli": ("#1d4ed8", "#0891b2", "#4f46e5", "#0369a1"),
    "abort_condition": ("#7e22ce", "#a21caf", "#6d28d9", "#86198f"),
    "steady_state": ("#15803d", "#4d7c0f", "#047857", "#166534"),
}
MARKER_STYLE = {  # colour, dash: distinct by dash as well as colour
    "detected": ("#b45309", ""),
    "mitigated": ("#15803d", "10 5"),
    "recovered": ("#0e7490", "3 4"),
    "escalation": ("#c2410c", "14 4 3 4"),
    "abort": ("#b91c1c", ""),
}

STYLE = """
.c-t{font:600 17px system-ui,'DejaVu Sans',sans-serif;fill:#111827}
.c-r{font:400 15px system-ui,'DejaVu Sans',sans-serif;fill:#374151}
.c-a{font:400 14px system-ui,'DejaVu Sans',sans-serif;fill:#374151}
.c-m{font:600 15px system-ui,'DejaVu Sans',sans-serif}
.c-n{font:italic 15px system-ui,'DejaVu Sans',sans-serif;fill:#6b7280}
.c-g{stroke:#e5e7eb;stroke-width:1}
.c-f{fill:#fca5a5;fill-opacity:.28}
.c-fl{font:600 14px system-ui,'DejaVu Sans',sans-serif;fill:#991b1b}
.c-b{fill:#fee2e2;fill-opacity:.55}
.c-th{stroke:#dc2626;stroke-width:2;stroke-dasharray:8 5}
.c-box{fill:none;stroke:#9ca3af;stroke-width:1}
"""


ORDERED = (Comparator.LT, Comparator.LE, Comparator.GT, Comparator.GE)
"""Comparators with a bad *side* to tint; == and != have none."""


def _x(t: float, start: float, end: float) -> float:
    return LEFT + (t - start) / (end - start) * PLOT_WIDTH


def _label(x: float, y: float, text: str, anchor: str = "end", extra: str = "") -> str:
    """An axis label (escaped) in the small axis font."""
    return f'<text class="c-a" x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _f(value: float) -> str:
    """Coordinates to 0.1 px: precise enough to look right, short enough to stay small."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def time_ticks(start: float, end: float, origin: float, most: int = 10) -> list[float]:
    """Tick times at round offsets from ``origin`` (t0), at most ``most`` of them."""
    span = end - start
    step = next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])
    first = math.ceil((start - origin) / step) * step
    ticks = []
    offset = first
    while origin + offset <= end:
        ticks.append(origin + offset)
        offset += step
    return ticks


def _tick_label(offset_seconds: float) -> str:
    if abs(offset_seconds) < 1e-6:
        return "t0"
    return ("+" if offset_seconds > 0 else "-") + fmt.duration(abs(offset_seconds))


def _y_range(panel: Panel) -> tuple[float, float]:
    values = [v for _, v in panel.points() if not math.isnan(v)]
    if panel.threshold is not None:
        values.append(panel.threshold)
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _stagger(labels: list[tuple[float, str]], rows: int) -> list[int]:
    """A row per label so that no two labels in a row overlap (greedy, left to right)."""
    ends = [-math.inf] * rows
    chosen = []
    for x, text in labels:
        width = len(text) * CHAR_WIDTH + 14
        row = next((r for r in range(rows) if ends[r] < x - 4), min(range(rows), key=lambda r: ends[r]))
        ends[row] = x + width
        chosen.append(row)
    return chosen


def run_chart(report: Report) -> str:
    """The run as an SVG document (also inlined in the HTML)."""
    panels = report.panels
    start, end = report.window_start, report.window_end
    origin = report.measurement.t0.timestamp() if report.measurement.t0 else start
    top_labels: list[tuple[float, str, str]] = []  # (x, text, kind)
    for window in report.fault_windows:
        x = _x(max(window.start.timestamp(), start), start, end)
        top_labels.append((x, f"fault {window.name}", "fault"))
    for marker in report.markers:
        top_labels.append((_x(marker.at.timestamp(), start, end), marker.label, marker.kind))
    top_labels.sort(key=lambda item: item[0])
    label_rows = 3
    rows = _stagger([(x, text) for x, text, _ in top_labels], label_rows)
    band = LABEL_ROW * (max(rows) + 1 if rows else 1) + 10
    first_top = band + PANEL_TITLE
    height = first_top + max(len(panels), 1) * (PANEL_HEIGHT + PANEL_TITLE) - PANEL_TITLE + BOTTOM
    plot_bottom = height - BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-label="{escape(_aria(report))}" class="chart">',
        f"<style>{STYLE}</style>",
    ]
    for window in report.fault_windows:  # shaded behind everything, across every panel
        x0 = _x(max(window.start.timestamp(), start), start, end)
        x1 = _x(min(window.end.timestamp() if window.end else end, end), start, end)
        out.append(
            f'<rect class="c-f" x="{_f(x0)}" y="{_f(band)}" width="{_f(max(x1 - x0, 1))}" '
            f'height="{_f(plot_bottom - band)}"><title>fault {escape(window.name)}: '
            f"{escape(fmt.clock(window.start))} to {escape(fmt.clock(window.end))}</title></rect>"
        )
    if not panels:
        out.append(
            f'<text class="c-n" x="{LEFT + PLOT_WIDTH / 2}" y="{first_top + PANEL_HEIGHT / 2}" '
            'text-anchor="middle">no series: the scenario has no SLI, abort condition or steady state</text>'
        )
    for index, panel in enumerate(panels):
        top = first_top + index * (PANEL_HEIGHT + PANEL_TITLE)
        out.extend(_panel(panel, index, top, start, end))
    for (x, text, kind), row in zip(top_labels, rows, strict=True):
        colour = "#991b1b" if kind == "fault" else MARKER_STYLE[kind][0]
        y = LABEL_ROW * row + 18
        out.append(f'<text class="c-m" x="{_f(x + 4)}" y="{y}" fill="{colour}">{escape(text)}</text>')
        if kind != "fault":
            colour, dash = MARKER_STYLE[kind]
            dashes = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{_f(x)}" y1="{y - 14}" x2="{_f(x)}" y2="{_f(plot_bottom)}" stroke="{colour}" '
                f'stroke-width="2.5"{dashes}/>'
            )
    for tick in time_ticks(start, end, origin):
        x = _x(tick, start, end)
        out.append(
            f'<line class="c-g" x1="{_f(x)}" y1="{_f(plot_bottom)}" x2="{_f(x)}" y2="{_f(plot_bottom + 6)}"/>'
        )
        out.append(
            f'<text class="c-a" x="{_f(x)}" y="{_f(plot_bottom + 24)}" text-anchor="middle">'
            f"{escape(_tick_label(tick - origin))}</text>"
        )
    caption = (
        f"time since t0 = {fmt.clock(report.measurement.t0)} UTC (first fault injected); "
        f"one sample every {fmt.duration(report.step)}"
        if report.measurement.t0
        else f"time since the run started; one sample every {fmt.duration(report.step)}"
    )
    out.append(f'<text class="c-a" x="{LEFT}" y="{_f(plot_bottom + 50)}">{escape(caption)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _aria(report: Report) -> str:
    names = ", ".join(panel.title for panel in report.panels) or "no series"
    return f"Chart of {names} over the run, with fault windows and detection, mitigation and abort marked"


def _panel(panel: Panel, index: int, top: float, start: float, end: float) -> list[str]:
    out = [
        f'<text class="c-t" x="{LEFT}" y="{_f(top - 12)}">{escape(panel.title)}'
        f'<tspan class="c-r" dx="12">{escape(panel.rule)}</tspan></text>',
        f'<rect class="c-box" x="{LEFT}" y="{_f(top)}" width="{PLOT_WIDTH}" height="{PANEL_HEIGHT}">'
        f"<title>{escape(panel.expr)}</title></rect>",
    ]
    if not panel.points():
        out.append(
            f'<text class="c-n" x="{_f(LEFT + PLOT_WIDTH / 2)}" y="{_f(top + PANEL_HEIGHT / 2 + 5)}" '
            f'text-anchor="middle">{escape(_shorten(panel.note or "no data", 110))}</text>'
        )
        return out
    low, high = _y_range(panel)

    def y(value: float) -> float:
        return top + PANEL_HEIGHT - (value - low) / (high - low) * PANEL_HEIGHT

    if panel.threshold is not None and panel.comparator in ORDERED:
        threshold_y = y(panel.threshold)
        bad_above = panel.bad(panel.threshold + abs(panel.threshold) * 1e-9 + 1e-12)
        y0, y1 = (top, threshold_y) if bad_above else (threshold_y, top + PANEL_HEIGHT)
        out.append(
            f'<rect class="c-b" x="{LEFT}" y="{_f(y0)}" width="{PLOT_WIDTH}" height="{_f(max(y1 - y0, 0))}"/>'
        )
    for tick in nice_ticks(low, high):
        ty = y(tick)
        out.append(f'<line class="c-g" x1="{LEFT}" y1="{_f(ty)}" x2="{LEFT + PLOT_WIDTH}" y2="{_f(ty)}"/>')
        out.append(_label(LEFT - 8, ty + 5, fmt.number(tick, 3)))
    if panel.threshold is not None:
        ty = y(panel.threshold)
        out.append(f'<line class="c-th" x1="{LEFT}" y1="{_f(ty)}" x2="{LEFT + PLOT_WIDTH}" y2="{_f(ty)}"/>')
    # Prometheus may answer a little outside the window (its client rounds the range to
    # whole seconds): clip the data to the panel rather than draw over the axis.
    clip = f"c-clip-{index}"
    out.append(
        f'<clipPath id="{clip}"><rect x="{LEFT}" y="{_f(top - 4)}" width="{PLOT_WIDTH}" '
        f'height="{PANEL_HEIGHT + 8}"/></clipPath><g clip-path="url(#{clip})">'
    )
    colours = LINE_COLOURS[panel.role]
    for number, line in enumerate(panel.lines):
        colour = colours[number % len(colours)]
        name = label_text(line.labels)
        for segment in downsample(line.points, start, end, PLOT_WIDTH, panel.step):
            if len(segment) == 1:
                t, v = segment[0]
                out.append(f'<circle cx="{_f(_x(t, start, end))}" cy="{_f(y(v))}" r="2.5" fill="{colour}"/>')
                continue
            coords = " ".join(f"{_f(_x(t, start, end))},{_f(y(v))}" for t, v in segment)
            tooltip = f"<title>{escape(name)}</title>" if name else ""
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" stroke-linejoin="round" '
                f'points="{coords}">{tooltip}</polyline>'
            )
    out.append("</g>")
    return out


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- history -----------------------------------------------------------------------------------

TREND_HEIGHT = 200
TREND_GAP = 70


def trend_chart(entries: Sequence[HistoryEntry], current: str | None = None) -> str:
    """TTD and TTM (seconds, with their targets) and the score, one point per run."""
    shown = [entry for entry in entries if entry.started][-20:]
    count = len(shown)
    top1 = 40
    top2 = top1 + TREND_HEIGHT + TREND_GAP
    height = top2 + TREND_HEIGHT + 70
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="Time to detect, time to mitigate and score across {count} runs" class="chart">',
        f"<style>{STYLE}</style>",
    ]
    if not count:
        out.append(f'<text class="c-n" x="{LEFT}" y="{top1 + 40}">no runs yet</text></svg>')
        return "\n".join(out)

    def x(index: int) -> float:
        return LEFT + (index + 0.5) / count * PLOT_WIDTH

    timings = [v for e in shown for v in (e.ttd_seconds, e.ttm_seconds) if v is not None]
    targets = [v for e in shown[-1:] for v in (e.ttd_target_seconds, e.ttm_target_seconds) if v is not None]
    high = max([*timings, *targets, 1.0]) * 1.1

    def y1(value: float) -> float:
        return top1 + TREND_HEIGHT - value / high * TREND_HEIGHT

    out.append(
        f'<text class="c-t" x="{LEFT}" y="{top1 - 14}">Time to detect '
        f'<tspan fill="#b45309">(solid)</tspan> and to mitigate <tspan fill="#15803d">(dashed)</tspan>'
        f'<tspan class="c-r" dx="12">targets as thin lines</tspan></text>'
    )
    out.append(f'<rect class="c-box" x="{LEFT}" y="{top1}" width="{PLOT_WIDTH}" height="{TREND_HEIGHT}"/>')
    every = next((step for step in TIME_STEPS if high / step <= 4), TIME_STEPS[-1])
    for tick in [every * k for k in range(int(high // every) + 1)]:  # round durations: 30s, 1m, 2m
        ty = y1(tick)
        out.append(f'<line class="c-g" x1="{LEFT}" y1="{_f(ty)}" x2="{LEFT + PLOT_WIDTH}" y2="{_f(ty)}"/>')
        out.append(_label(LEFT - 8, ty + 5, fmt.duration(tick)))
    last = shown[-1]
    for target, colour in ((last.ttd_target_seconds, "#b45309"), (last.ttm_target_seconds, "#15803d")):
        if target is not None and target <= high:
            out.append(
                f'<line x1="{LEFT}" y1="{_f(y1(target))}" x2="{LEFT + PLOT_WIDTH}" y2="{_f(y1(target))}" '
                f'stroke="{colour}" stroke-width="1.2" stroke-opacity=".7"/>'
            )
    for attribute, colour, dash in (
        ("ttd_seconds", "#b45309", ""),
        ("ttm_seconds", "#15803d", ' stroke-dasharray="10 5"'),
    ):
        points = [
            (x(i), y1(getattr(e, attribute)))
            for i, e in enumerate(shown)
            if getattr(e, attribute) is not None
        ]
        if len(points) > 1:
            coords = " ".join(f"{_f(px)},{_f(py)}" for px, py in points)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="3"{dash} points="{coords}"/>')
        for px, py in points:
            out.append(f'<circle cx="{_f(px)}" cy="{_f(py)}" r="5" fill="{colour}"/>')
    out.append(f'<text class="c-t" x="{LEFT}" y="{top2 - 14}">Team score (0-100)</text>')
    out.append(f'<rect class="c-box" x="{LEFT}" y="{top2}" width="{PLOT_WIDTH}" height="{TREND_HEIGHT}"/>')
    for tick in (0, 50, 100):
        ty = top2 + TREND_HEIGHT - tick / 100 * TREND_HEIGHT
        out.append(f'<line class="c-g" x1="{LEFT}" y1="{_f(ty)}" x2="{LEFT + PLOT_WIDTH}" y2="{_f(ty)}"/>')
        out.append(f'<text class="c-a" x="{LEFT - 8}" y="{_f(ty + 5)}" text-anchor="end">{tick}</text>')
    bar = min(60.0, PLOT_WIDTH / count * 0.6)
    for i, entry in enumerate(shown):
        if entry.score is None:
            continue
        h = entry.score / 100 * TREND_HEIGHT
        fill = "#1d4ed8" if entry.run_id == current else "#93c5fd"
        tooltip = f"{entry.run_id}: {entry.score:g} ({entry.grade or ''})"
        out.append(
            f'<rect x="{_f(x(i) - bar / 2)}" y="{_f(top2 + TREND_HEIGHT - h)}" width="{_f(bar)}" '
            f'height="{_f(h)}" fill="{fill}"><title>{escape(tooltip)}</title></rect>'
        )
        out.append(
            f'<text class="c-r" x="{_f(x(i))}" y="{_f(top2 + TREND_HEIGHT - h - 6)}" text-anchor="middle">'
            f"{entry.score:g}</text>"
        )
    every = max(1, math.ceil(count / 8))
    for i, entry in enumerate(shown):
        if i % every and i != count - 1:
            continue
        started = entry.started_at
        label = started.strftime("%m-%d %H:%M") if started else entry.run_id
        weight = ' font-weight="700"' if entry.run_id == current else ""
        out.append(_label(x(i), top2 + TREND_HEIGHT + 24, label, "middle", weight))
    out.append(
        _label(
            LEFT,
            top2 + TREND_HEIGHT + 52,
            "runs of this scenario, oldest first (UTC); this run in dark blue",
            "start",
        )
    )
    out.append("</svg>")
    return "\n".join(out)
