"""The HTML debrief: one self-contained file a facilitator puts on the screen.

Everything is inline - the CSS, the charts as SVG - and the page has no
script and loads nothing (not even a favicon), so it opens the same from a
laptop, a wiki attachment or an air-gapped room, and can be archived as is.
The layout follows the blameless postmortem (timeline, impact, root cause
analysis, what went well, action items) with the headline figures on top.
"""

from __future__ import annotations

from chaosrunner import __version__
from chaosrunner.gameday.scoring import Verdict
from chaosrunner.report.chart import run_chart, trend_chart
from chaosrunner.report.model import Report
from chaosrunner.report.postmortem import BLAMELESS, five_whys
from chaosrunner.report.render_env import TEMPLATES, environment

VERDICT_WORDS = {"passed": "PASS", "failed": "FAIL", "not_applicable": "N/A"}


def render_html(report: Report, chart: str | None = None, trend: str | None = None) -> str:
    """The page; ``chart``/``trend`` are the SVGs when the caller has already drawn them."""
    from markupsafe import Markup

    if chart is None:
        chart = run_chart(report)
    if trend is None and len(report.history) > 1:
        trend = trend_chart(report.history, report.run_id)

    applicable = [f for f in report.score.findings if f.verdict is not Verdict.NOT_APPLICABLE]
    return str(
        environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            scenario=report.scenario,
            headlines=report.headlines(),
            applicable=len(applicable),
            whys=five_whys(report),
            blameless=BLAMELESS,
            verdict_words=VERDICT_WORDS,
            css=Markup((TEMPLATES / "report.css").read_text()),
            chart=Markup(chart),  # built with every text escaped (report.chart)
            trend=Markup(trend or ""),
            state_dir_hint="the state folder",
            version=__version__,
        )
    )
