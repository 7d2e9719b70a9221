"""The Markdown debrief: the same content as the HTML, for a wiki or an issue tracker.

Same sections, same figures, same wording (one set of filters, see
``render_env``). Markdown cannot hold the charts inline everywhere, so it
links ``chart.svg`` and ``trend.svg``, which the writer puts beside it.
"""

from __future__ import annotations

from chaosrunner import __version__
from chaosrunner.report.html import VERDICT_WORDS
from chaosrunner.report.model import Report
from chaosrunner.report.postmortem import BLAMELESS, five_whys
from chaosrunner.report.render_env import environment


def render_markdown(
    report: Report, chart_file: str | None = "chart.svg", trend_file: str | None = "trend.svg"
) -> str:
    text = (
        environment()
        .get_template("report.md.j2")
        .render(
            report=report,
            scenario=report.scenario,
            headlines=report.headlines(),
            whys=five_whys(report),
            blameless=BLAMELESS,
            verdict_words=VERDICT_WORDS,
            chart_file=chart_file,
            trend_file=trend_file,
            version=__version__,
        )
    )
    return str(text)
