"""Where reports go, and the one call that makes one from a run.

``write_run_report(run_id)`` is what ``chaosrunner report`` and the end of
``chaosrunner run`` call: debrief the run, fetch its ranges once, render the
formats asked for, scrub secrets from every one of them, and write them into
one folder - by default ``reports/<date>-<scenario-slug>-<run-id>/`` under
the working directory (``$CHAOSRUNNER_REPORTS_DIR`` moves the ``reports``
part, ``--out`` names the folder itself). The Markdown's charts are written
beside it as ``chart.svg`` and ``trend.svg``.

It also leaves the run's measured figures beside its journal, so that
``chaosrunner history`` can compare runs long after Prometheus has dropped
their data (see ``report.history``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UnknownRun, UsageError
from chaosrunner.gameday.debrief import Debrief, debrief, default_metrics
from chaosrunner.observe.metrics import MetricsSource
from chaosrunner.report import fmt
from chaosrunner.report.chart import run_chart, trend_chart
from chaosrunner.report.history import entry_from_debrief, of_scenario, save_summary
from chaosrunner.report.html import render_html
from chaosrunner.report.json_schema import render_json
from chaosrunner.report.markdown import render_markdown
from chaosrunner.report.model import Report, build_report
from chaosrunner.report.redact import Redactor

FORMATS = ("html", "md", "json")
FILE_NAMES = {"html": "report.html", "md": "report.md", "json": "report.json"}
ENV_REPORTS_DIR = "CHAOSRUNNER_REPORTS_DIR"


@dataclass
class WrittenReport:
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # html | md | json | chart | trend -> path

    @property
    def main(self) -> Path:
        """The file to open first: the HTML when there is one."""
        for name in ("html", "md", "json"):
            if name in self.files:
                return self.files[name]
        return self.folder


def parse_formats(text: str | None) -> list[str]:
    """``html,md,json`` (any order, any subset) -> the formats, deduplicated, in that order."""
    if not text:
        return list(FORMATS)
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    aliases = {"markdown": "md", "htm": "html"}
    wanted = [aliases.get(part, part) for part in wanted]
    unknown = [part for part in wanted if part not in FORMATS]
    if unknown or not wanted:
        raise UsageError(f"--format {text!r}: expected a comma-separated list of {', '.join(FORMATS)}")
    return [name for name in FORMATS if name in wanted]


def default_folder(report: Report) -> Path:
    base = Path(os.environ.get(ENV_REPORTS_DIR) or "reports")
    return base / f"{fmt.day(report.started)}-{fmt.slug(report.scenario.metadata.title)}-{report.run_id}"


def render(report: Report, formats: list[str]) -> dict[str, str]:
    """File name -> redacted text, for every format asked for (and the Markdown's SVGs)."""
    chart = run_chart(report)  # drawn once, used by the HTML and written for the Markdown
    trend = trend_chart(report.history, report.run_id) if len(report.history) > 1 else None
    texts: dict[str, str] = {}
    if "html" in formats:
        texts["html"] = render_html(report, chart, trend)
    if "md" in formats:
        texts["md"] = render_markdown(report, "chart.svg", "trend.svg" if trend else None)
        texts["chart"] = chart
        if trend:
            texts["trend"] = trend
    if "json" in formats:
        texts["json"] = render_json(report)
    redactor = Redactor.for_scenario(report.scenario)
    return {name: redactor.scrub(text) for name, text in texts.items()}


def write_report(report: Report, formats: list[str], out: Path | None = None) -> WrittenReport:
    folder = out if out is not None else default_folder(report)
    folder.mkdir(parents=True, exist_ok=True)
    written = WrittenReport(folder)
    names = {**FILE_NAMES, "chart": "chart.svg", "trend": "trend.svg"}
    for name, text in render(report, formats).items():
        path = folder / names[name]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # a reader never sees half a report
        written.files[name] = path
    return written


def write_run_report(
    run: str | Debrief,
    *,
    metrics: MetricsSource | None = None,
    formats: list[str] | None = None,
    out: Path | None = None,
    offline: bool = False,
    now: datetime | None = None,
) -> WrittenReport:
    """Debrief a run (or take its debrief), build its report once, write every format."""
    result = run if isinstance(run, Debrief) else debrief(run, metrics, offline=offline)
    source = None if offline else (metrics or default_metrics(result.scenario))
    report = build_report(result, source, history=of_scenario(result), now=now)
    written = write_report(report, formats or list(FORMATS), out)
    if not offline and not result.measurement.notes:  # only figures measured with full data are kept
        # A debrief of a run outside the state folder (tests, benchmarks) has nowhere to keep it.
        with contextlib.suppress(UnknownRun):
            save_summary(RunDir.find(result.run_id), entry_from_debrief(result))
    return written
