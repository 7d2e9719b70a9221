"""The renderers, rendered to strings and compared (rich's tests/render.py habit).

The input is the fixed sample run (chaosrunner.report.sample): every number
in it is known, so the Markdown is compared whole with a golden file a
person has read, and the HTML - too large for a readable golden - is
checked for what matters: self-contained, the same figures, escaped.

Regenerate the golden after an intended change:
    CHAOSRUNNER_UPDATE_GOLDENS=1 pytest tests/unit/test_report_render.py
and read the diff before committing it.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chaosrunner import __version__
from chaosrunner.engine.journal import JournalEvent
from chaosrunner.gameday.scoring import Verdict
from chaosrunner.report.html import render_html
from chaosrunner.report.markdown import render_markdown
from chaosrunner.report.model import Report, build_report
from chaosrunner.report.sample import sample_run

GOLDENS = Path(__file__).parent / "test_report_goldens"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sample_report() -> Report:
    debrief, metrics = sample_run()
    return build_report(debrief, metrics, now=NOW)


def compare_with_golden(name: str, text: str) -> None:
    text = text.replace(f"chaosrunner {__version__}", "chaosrunner VERSION")  # a release is no diff
    path = GOLDENS / name
    if os.environ.get("CHAOSRUNNER_UPDATE_GOLDENS"):
        # Writing the golden from the code under test proves nothing about the code: never pass here.
        path.write_text(text)
        pytest.fail(
            f"rewrote {path}; read `git diff` on it, then run again without CHAOSRUNNER_UPDATE_GOLDENS"
        )
    assert path.exists(), f"no golden {path}; run with CHAOSRUNNER_UPDATE_GOLDENS=1 and read it"
    expected = path.read_text()
    if text != expected:
        import difflib

        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "now")
        )
        pytest.fail(f"{name} differs from its golden:\n{diff}")


def test_markdown_matches_its_golden() -> None:
    compare_with_golden("sample.md", render_markdown(sample_report()))


# The sample run's figures worked out by hand from its script (chaosrunner/report/sample.py),
# not by the code under test: the golden above was written by the renderer, so on its own it
# would carry a wrong figure forward. Seconds are from t0 = 14:00:10; one sample a second.
SLI_BAD_FROM, SLI_BAD_UNTIL = 15, 100  # the SLI is 0.5 (10 requests/s, half failing) in [15, 100)
BAD_SAMPLES = SLI_BAD_UNTIL - SLI_BAD_FROM  # 85 one-second samples
RUN_SAMPLES = 136  # 14:00:10 .. 14:02:25, the run finishing at 14:02:26
HAND = {
    "ttd": "20s",  # the probe alert active since t0+20 (Prometheus' own timestamp)
    "ttm": "1m40s",  # the SLI back inside >= 0.99 at t0+100, held 20s with the fault still in place
    "ttr": "2m10s",  # faults ending at t0+130; `up` is always 1, so the first sample after holds
    "faults_in_place": "2m11s",  # injected t0, reverted t0+131
    "users_affected": "1m25s",  # 85 samples x 1s
    "worst_sli": "0.5",
    # 85 x (1 - 0.5) = 42.5s; a 30-day window at 99% allows 30 x 86400 x 0.01 = 25,920s = 7h12m;
    # 42.5 / 25,920 = 0.164%
    "error_budget": "42.5s of full outage = 0.16% of a 30-day budget",
    "failed_requests": "425 of 1,360",  # 85 x 0.5 x 10/s of 136 x 10/s
}
# Points per criterion with the default weights. One status update (t0+60) between detection
# (t0+20) and mitigation (t0+100): both gaps 40s, inside the 2m cadence (on time: 1), but it lacks
# the hypothesis and the next-update time (complete: 0) -> 15 x (1 + 0) / 2 = 7.5. Nobody
# escalated and none was due: not applicable, its 5 points leave the total.
HAND_POINTS = {
    "detected_by_monitoring": 15,
    "ttd_within_target": 10,
    "severity_declared": 10,
    "incident_commander": 10,
    "status_updates": 7.5,
    "mitigation_before_root_cause": 10,
    "ttm_within_target": 15,
    "single_changer": 10,
}
HAND_SCORE = "92.1"  # 87.5 earned of 95 possible = 92.105..%; grade A from 90


def test_the_figures_match_the_ones_worked_out_by_hand() -> None:
    report = sample_report()
    assert BAD_SAMPLES == 85 and RUN_SAMPLES * 10 == 1360  # the arithmetic in the comments above
    assert sum(HAND_POINTS.values()) == 87.5 and f"{100 * 87.5 / 95:.1f}" == HAND_SCORE
    applicable = {
        f.criterion: f.points for f in report.score.findings if f.verdict is not Verdict.NOT_APPLICABLE
    }
    assert applicable == HAND_POINTS
    assert f"{report.score.total:.1f}" == HAND_SCORE and report.score.grade == "A"
    for key in ("faults_in_place", "users_affected", "worst_sli", "error_budget", "failed_requests"):
        assert report.impact.get(key).shown == HAND[key], key

    markdown = render_markdown(report)
    headline = (
        f"| **Hypothesis held** (completed; blast radius contained) | **{HAND_SCORE}/100**, grade **A** "
        f"| **{HAND['ttd']}** (within 1m target) | **{HAND['ttm']}** (within 2m target) | **{HAND['ttr']}** |"
    )
    assert headline in markdown.splitlines()
    assert f"| Faults in place | **{HAND['faults_in_place']}** |" in markdown
    assert f"| Users affected (SLI outside its objective) | **{HAND['users_affected']}** |" in markdown
    assert f"| Worst SLI | **{HAND['worst_sli']}** |" in markdown
    assert f"| Error budget burned | **{HAND['error_budget']}** |" in markdown
    assert "allows 7h12m of full outage" in markdown
    assert f"| Failed requests | **{HAND['failed_requests']}** |" in markdown
    assert "| FAIL | Status updates at the severity's cadence, in the full format | 7.5 / 15 |" in markdown
    assert "| N/A | Escalated once the expected time passed unmitigated | 0 / 5 |" in markdown
    assert f"detected: alert CheckoutProbeFailing firing (synthetic) (TTD {HAND['ttd']})" in markdown
    assert f"mitigated: SLI >= 0.99 from 14:01:50.000 for 20s (TTM {HAND['ttm']})" in markdown

    html_text = " ".join(" ".join(parse(render_html(report)).text).split())
    for figure in (HAND_SCORE, *HAND.values()):
        assert figure in html_text, figure


def test_rendering_is_deterministic() -> None:
    assert render_html(sample_report()) == render_html(sample_report())


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def test_html_is_one_self_contained_file() -> None:
    html = render_html(sample_report())
    page = parse(html)
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    links = [attrs for tag, attrs in page.tags if tag == "link"]
    assert links == [{"rel": "icon", "href": "data:,"}]  # no favicon request either
    for _, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"^(https?:)?//", value), f"{name}={value} would fetch from the network"
    assert "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # url(#clip) refers inside the page; nothing else may
    assert html.count("<svg") == 1  # the run chart, inline (no history: no trend chart)


def test_html_headline_has_the_figures() -> None:
    html = render_html(sample_report())
    text = " ".join(" ".join(parse(html).text).split())
    for expected in (
        "Checkout pool exhausted",
        "Hypothesis held",
        "92.1",
        "grade A",
        "20s",
        "within 1m target",
        "1m40s",
        "within 2m target",
        "2m10s",
        "425 of 1,360",
        "42.5s of full outage",
    ):
        assert expected in text, expected


def test_html_and_markdown_tell_the_same_story() -> None:
    report = sample_report()
    html_text = " ".join(" ".join(parse(render_html(report)).text).split())
    markdown = render_markdown(report)
    for row in report.timeline:
        assert row.what.split(":")[0] in html_text and row.what.split(":")[0] in markdown
    for finding in report.score.findings:
        assert finding.title in html_text and finding.title in markdown
    for figure in report.impact.figures:
        assert figure.shown in html_text and figure.shown in markdown


def test_text_from_the_journal_is_escaped() -> None:
    debrief, metrics = sample_run()
    hostile = "<script>alert(1)</script> | **bold** <img src=x onerror=alert(2)>"
    debrief.events.append(
        JournalEvent(
            type="responder",
            time="2026-11-27T14:01:20.000000Z",
            offset=80.0,
            event="note",
            at="2026-11-27T14:01:20.000000Z",
            by="mallory",
            value=hostile,
        )
    )
    report = build_report(debrief, metrics, now=NOW)
    html = render_html(report)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = render_markdown(report)
    row = next(line for line in markdown.splitlines() if "mallory" in line)
    assert "<script>" not in row and "<img" not in row
    assert row.count(" | ") == 4  # the pipe in the note did not add a column


def test_a_run_without_prometheus_still_reports() -> None:
    debrief, _ = sample_run()
    report = build_report(debrief, None, now=NOW)
    html = render_html(report)
    assert "Prometheus was not queried" in html
    assert report.impact.get("faults_in_place").shown == "2m11s"  # the journal still knows
    assert report.impact.get("failed_requests").value is None
    assert "not measurable" in render_markdown(report)


def test_a_run_that_never_injected_is_not_scored() -> None:
    debrief, metrics = sample_run()
    debrief.events[:] = [e for e in debrief.events if e["type"] in ("run_started", "check")]
    debrief.events.append(
        JournalEvent(
            type="run_finished",
            time="2026-11-27T14:00:04.000000Z",
            offset=4.0,
            status="refused",
            exit_code=2,
            detail="steady state did not hold",
        )
    )
    from chaosrunner.gameday.measure import measure
    from chaosrunner.gameday.scoring import score
    from chaosrunner.gameday.verdict import experiment_verdict

    debrief.measurement = measure(list(debrief.events), debrief.scenario, metrics)
    debrief.score = score(debrief.measurement, debrief.scenario)
    debrief.verdict = experiment_verdict(list(debrief.events))
    report = build_report(debrief, metrics, now=NOW)
    html = render_html(report)
    assert "not scored" in html and "Hypothesis did not hold" in html
    assert "no fault was injected" in render_markdown(report)
