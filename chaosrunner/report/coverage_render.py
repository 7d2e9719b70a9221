"""Detection coverage for people: lines for a terminal, a self-contained HTML page.

The page is one file with its CSS inline, no script and nothing loaded, like
the debrief (report.html). Every text in it came from somebody's scenario or
rule file, so every text is escaped (``html.escape``, quotes too); nothing is
marked safe. Terminal lines are plain data; the cli strips terminal escapes.
"""

from __future__ import annotations

from html import escape

from chaosrunner.report.coverage import Cell, Coverage

VERDICT_WORDS = {"caught": "caught", "gap": "GAP", "noise": "noise", "untested": "untested"}


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 60 else f"{int(value // 60)}m{value % 60:04.1f}s"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def cell_text(cell: Cell) -> str:
    text = f"{cell.fired}/{cell.runs}"
    if cell.ttd_seconds is not None:
        text += f" {_seconds(cell.ttd_seconds)}"
    if cell.pre_existing:
        text += f" (+{cell.pre_existing} pre-existing)"
    return text


def text_lines(found: Coverage) -> list[tuple[str, ...]]:
    """Rows for ``echo_table``: per scenario its alerts that matter, then every alert's figures."""
    rows: list[tuple[str, ...]] = []
    for scenario in found.scenarios:
        rows.append(
            (
                f"{scenario.scenario} [{', '.join(scenario.fault_kinds)}]",
                f"{scenario.runs} runs",
                f"TTD best {_seconds(scenario.best_ttd_seconds)}"
                f" median {_seconds(scenario.median_ttd_seconds)}"
                f" target {_seconds(scenario.ttd_target_seconds)}"
                f" (met {scenario.within_target}/{scenario.runs});"
                f" caught by {', '.join(scenario.layers_caught) or 'no layer'}",
            )
        )
        for cell in found.cells:
            if cell.scenario != scenario.scenario or cell.verdict == "untested":
                continue
            rows.append(
                (
                    f"  {VERDICT_WORDS[cell.verdict]:<8} {cell.alert}",
                    cell_text(cell),
                    f"{cell.layer}{'' if cell.expected else ', not expected'}",
                )
            )
    rows.append(("alert", "fired/runs", "precision, recall, verdict"))
    for alert in found.alerts:
        rows.append(
            (
                f"  {alert.alert}",
                f"{alert.fired}/{alert.runs}",
                f"precision {_ratio(alert.precision)}, recall {_ratio(alert.recall)}: {alert.verdict}",
            )
        )
    return rows


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th.alert{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
td.caught{background:#d7f5d7}td.gap{background:#f9d0d0;font-weight:bold}
td.noise{background:#fde9c4}td.untested{color:#999}
.small{font-size:12px;color:#555}
"""


def html_page(found: Coverage, title: str = "Detection coverage") -> str:
    """The matrix page: rows scenarios, columns every alert rule seen."""
    alerts = found.alert_names()
    head = "".join(f'<th class="alert">{escape(name)}</th>' for name in alerts)
    body = []
    for scenario in found.scenarios:
        cells = []
        for name in alerts:
            cell = found.cell(scenario.scenario, name)
            if cell is None:
                cells.append('<td class="untested">not seen</td>')
                continue
            cells.append(
                f'<td class="{escape(cell.verdict)}" title="{escape(cell.layer)}">'
                f"{escape(VERDICT_WORDS[cell.verdict])}<br>{escape(cell_text(cell))}"
                f'<br><span class="small">{escape(cell.layer)}</span></td>'
            )
        body.append(
            f"<tr><th>{escape(scenario.scenario)}<br>"
            f'<span class="small">{escape(", ".join(scenario.fault_kinds))}; {scenario.runs} runs; '
            f"TTD best {escape(_seconds(scenario.best_ttd_seconds))}, "
            f"median {escape(_seconds(scenario.median_ttd_seconds))}, "
            f"target {escape(_seconds(scenario.ttd_target_seconds))}; "
            f"caught by {escape(', '.join(scenario.layers_caught) or 'no layer')}</span></th>"
            + "".join(cells)
            + "</tr>"
        )
    summary = "".join(
        f"<tr><td>{escape(alert.alert)}</td><td>{escape(', '.join(alert.layers))}</td>"
        f"<td>{alert.fired}/{alert.runs}</td><td>{escape(_ratio(alert.precision))}</td>"
        f"<td>{escape(_ratio(alert.recall))}</td><td>{escape(alert.verdict)}</td></tr>"
        for alert in found.alerts
    )
    skipped = ", ".join(
        f"{count} {escape(why.replace('_', ' '))}" for why, count in found.skipped.items() if count
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{found.runs} runs{' (skipped: ' + skipped + ')' if skipped else ''}. Each cell: the verdict, "
        "fired in k of n runs, the median time from t0 to its first firing, the layer. "
        "Runs in which the alert was already firing at t0 are pre-existing and not counted.</p>"
        f"<table><thead><tr><th>Scenario</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<h2>Alerts</h2><p>Precision: runs in which it fired and its scenario expected it, over runs in "
        "which it fired. Recall: the same, over runs whose scenario expected it.</p>"
        "<table><thead><tr><th>Alert</th><th>Layers</th><th>Fired/runs</th><th>Precision</th>"
        f"<th>Recall</th><th>Verdict</th></tr></thead><tbody>{summary}</tbody></table>"
        "</body></html>\n"
    )
