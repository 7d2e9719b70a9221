"""What the channel reads: each event's message in Slack's and Mattermost's dialects, outside text as data."""

from __future__ import annotations

import pytest

from chaosrunner.gameday.chat import messages
from chaosrunner.gameday.chat.messages import MATTERMOST, SLACK, DebriefFigures

JOINER = "\u2060"


def test_run_started_names_the_title_hypothesis_faults_and_the_observer_link() -> None:
    message = messages.run_started(
        "Slow checkout DB",
        "checkout stays under 500ms",
        [("slow-db", "postgres_latency"), ("kill-api", "docker_kill")],
        "20250101T000000-abcd",
        "http://127.0.0.1:8123/#token=AbC-_123",
        SLACK,
    )
    assert message.kind == "run_started"
    assert message.text.splitlines() == [
        ":test_tube: *Gameday started*: Slow checkout DB (run 20250101T000000-abcd)",
        "Hypothesis: checkout stays under 500ms",
        "Faults: slow-db (postgres_latency), kill-api (docker_kill)",
        "<http://127.0.0.1:8123/#token=AbC-_123|Watch it live (read-only)>",
    ]


def test_run_started_without_a_link_says_nothing_of_one_and_mattermost_bolds_its_way() -> None:
    message = messages.run_started("T", "H", [("f", "k")], "r1", None, MATTERMOST)
    assert message.text.splitlines()[0] == ":test_tube: **Gameday started**: T (run r1)"
    assert "live" not in message.text


def test_a_link_that_could_end_early_is_shown_as_text_not_as_a_link() -> None:
    shown = messages.link("http://evil.example/x|Click me>", "Watch", SLACK)
    assert shown == "Watch: http://evil.example/x|Click me&gt;"
    assert messages.link("http://h:1/#token=a) [x](y", "Watch", MATTERMOST).startswith("Watch: ")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"type": "alert", "name": "CheckoutProbeFailing", "state": "firing", "layer": "synthetic"},
            ":rotating_light: *Alert firing* (synthetic): CheckoutProbeFailing",
        ),
        (
            {"type": "alert", "name": "Errors", "state": "active", "layer": "real_user"},
            ":rotating_light: *Alert firing* (real user): Errors",
        ),
        (
            {"type": "escalation_due", "detail": "not mitigated 900s after the fault began"},
            ":arrow_double_up: *Escalation due*: not mitigated 900s after the fault began",
        ),
        (
            {"type": "abort", "cause": "condition", "detail": "error rate 0.4 > 0.2"},
            ":octagonal_sign: *Aborted* (condition): error rate 0.4 &gt; 0.2. The faults are being reverted.",
        ),
        (
            {"type": "faults_ending", "reason": "alice marked it mitigated"},
            ":white_check_mark: *Mitigated*: alice marked it mitigated. The faults are being reverted.",
        ),
        (
            {"type": "run_finished", "status": "completed", "detail": "the team mitigated"},
            ":checkered_flag: *Run finished*: completed - the team mitigated",
        ),
    ],
)
def test_each_event_the_channel_hears(event: dict[str, str], expected: str) -> None:
    assert messages.heard(event)
    message = messages.for_event(event, SLACK)
    assert message is not None and message.text == expected


@pytest.mark.parametrize(
    "event",
    [
        {"type": "alert", "name": "A", "state": "pending"},
        {"type": "alert", "name": "A", "state": "inactive"},
        {"type": "phase", "phase": "injecting"},
        {"type": "responder", "event": "note", "value": "x"},
        {"type": "chat_posted", "kind": "abort", "ok": True},
    ],
)
def test_events_the_channel_does_not_hear(event: dict[str, str]) -> None:
    assert not messages.heard(event)
    assert messages.for_event(event, SLACK) is None


def test_slack_data_cannot_ping_the_channel_or_make_a_link() -> None:
    event = {
        "type": "alert",
        "name": "<!channel> <http://evil|ok> & @here",
        "state": "firing",
        "layer": "synthetic",
    }
    message = messages.for_event(event, SLACK)
    assert message is not None
    assert "<" not in message.text.split("): ", 1)[1] and ">" not in message.text.split("): ", 1)[1]
    assert "&lt;!channel&gt; &lt;http://evil|ok&gt; &amp; @" + JOINER + "here" in message.text


def test_mattermost_data_is_markdown_escaped_and_mentions_are_broken() -> None:
    event = {
        "type": "abort",
        "cause": "error",
        "detail": "@channel see [docs](http://x) ![img](http://y) **now**",
    }
    message = messages.for_event(event, MATTERMOST)
    assert message is not None
    assert "@channel" not in message.text and "@" + JOINER + "channel" in message.text
    assert r"\[docs\]\(http://x\) \!\[img\]\(http://y\) \*\*now\*\*" in message.text


def test_data_is_one_line_bounded_and_scrubbed_of_secrets() -> None:
    detail = "line one\nline two\x1b[31m postgresql://app:hunter2@db/x " + "y" * 1000
    shown = messages.data(detail, SLACK)
    assert shown.startswith("line one line two postgresql://app:[redacted]@" + JOINER + "db/x yyy")
    assert "hunter2" not in shown and "\x1b" not in shown and "[31m" not in shown
    assert len(shown.replace(JOINER, "")) == messages.DATA_LIMIT and shown.endswith("…")


def test_the_debrief_gives_ttd_ttm_against_targets_the_score_and_the_report() -> None:
    figures = DebriefFigures(
        ttd_seconds=130.04,
        ttd_target_seconds=300,
        ttm_seconds=None,
        ttm_target_seconds=900,
        score=85.0,
        grade="B",
    )
    message = messages.report(figures, "/runs/r_1/report.html", MATTERMOST)
    assert message.kind == "report"
    assert message.text.splitlines() == [
        ":bar_chart: **Debrief**",
        "TTD 2m10s (target 5m), TTM not measured (target 15m), score 85 (grade B)",
        r"Report: /runs/r\_1/report.html",
    ]


def test_a_debrief_without_figures_or_report_says_so() -> None:
    text = messages.report(None, None, SLACK).text
    assert "could not be measured" in text and "No report was written." in text
