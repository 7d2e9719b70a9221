"""The channel hears the run: ChatNotifier posting through slack_sdk to a fake Slack on loopback.

The fake (tests/support/fake_slack.py) is a real HTTP server at our own seam:
slack_sdk's WebClient reaches it through the scenario's ``api_url`` and its
WebhookClient through the webhook URL, so everything but Slack itself is real -
the queue, the worker, the pacing, tenacity's retries and slack_sdk's requests.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaosrunner.gameday.chat.outbound import ChatNotifier, destinations_of
from chaosrunner.gameday.debrief import Debrief
from chaosrunner.gameday.measure import Measurement, Moment
from chaosrunner.gameday.scoring import score
from chaosrunner.gameday.verdict import experiment_verdict
from chaosrunner.scenario.loader import scenario_from_data
from chaosrunner.scenario.models import Scenario
from tests.support.fake_slack import BOT_TOKEN, FakeSlack

CHANNEL = "C0GAMEDAY"
OBSERVER_LINK = "http://127.0.0.1:8765/#token=observer-AbC_123"
JOINER = "\u2060"


def make_scenario(chat: dict[str, Any]) -> Scenario:
    return scenario_from_data(
        {
            "metadata": {
                "title": "Checkout <survives> a slow DB",
                "owner": "payments",
                "expected_severity": "P2",
                "hypothesis": "checkout stays up",
            },
            "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "chat"}}],
            "gameday": {"mode": "gameday", "ttd_target": "5m", "ttm_target": "15m"},
            "chat": chat,
        },
        source="test",
    )


def slack_bot(fake: FakeSlack) -> dict[str, Any]:
    return {"slack": {"channel": CHANNEL, "bot_token_env": "T_SLACK_BOT", "api_url": fake.api_url}}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


class Journaled:
    """What the session would journal as chat_posted."""

    def __init__(self) -> None:
        self.fields: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, fields: dict[str, Any]) -> None:
        with self.lock:
            self.fields.append(fields)


def every_kind(notifier: ChatNotifier) -> None:
    """Each event the channel hears, once (and some it does not), as the runner and the watcher emit them."""
    notifier({"type": "run_started", "run_id": "20250301T120000-chat"})
    notifier({"type": "phase", "phase": "injecting"})  # not heard
    notifier({"type": "alert", "source": "prometheus", "name": "ProbeFailing", "state": "pending"})  # not yet
    notifier(
        {
            "type": "alert",
            "source": "prometheus",
            "name": "ProbeFailing",
            "state": "firing",
            "layer": "synthetic",
        }
    )
    notifier(  # the same alert from Alertmanager: told once
        {
            "type": "alert",
            "source": "alertmanager",
            "name": "ProbeFailing",
            "state": "active",
            "layer": "synthetic",
        }
    )
    notifier(
        {"type": "escalation_due", "detail": "not mitigated 900s after the fault began: escalate one level"}
    )
    notifier({"type": "faults_ending", "reason": "alice marked the incident mitigated"})
    notifier({"type": "abort", "cause": "signal", "detail": "SIGINT while reverting"})
    notifier({"type": "run_finished", "status": "aborted", "detail": "aborted (signal)"})


def a_debrief(scenario: Scenario) -> Debrief:
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    measurement = Measurement(
        t0=t0,
        faults_ended=t0 + timedelta(minutes=8),
        run_end=t0 + timedelta(minutes=9),
        detection=Moment(t0 + timedelta(seconds=130), "alert ProbeFailing firing"),
        detection_layer="synthetic",
        mitigation=Moment(t0 + timedelta(minutes=8), "mitigated mark"),
        recovery=Moment(None, "not measured"),
    )
    return Debrief("r", scenario, [], measurement, score(measurement, scenario), experiment_verdict([]))


def notifier_for(scenario: Scenario, environ: dict[str, str], **options: Any) -> ChatNotifier:
    """Paced faster than Slack's one a second, so the tests do not wait for it (pacing has its own test)."""
    return ChatNotifier(scenario, destinations_of(scenario, environ), **{"min_interval": 0.05, **options})


def test_every_kind_goes_in_order_to_the_channel_with_the_bot_token(fake: FakeSlack) -> None:
    scenario = make_scenario(slack_bot(fake))
    journaled = Journaled()
    notifier = notifier_for(scenario, {"T_SLACK_BOT": BOT_TOKEN}, on_posted=journaled)
    notifier.set_console_link(OBSERVER_LINK)
    debrief = a_debrief(scenario)
    started = time.monotonic()
    every_kind(notifier)
    assert time.monotonic() - started < 1.0  # the listener only queues
    notifier.report_written("/state/runs/r/report.html", debrief)
    notifier.close(timeout=10)

    posted = fake.posted()
    assert [request.path for request in posted] == ["/api/chat.postMessage"] * 7
    assert {request.headers["Authorization"] for request in posted} == {f"Bearer {BOT_TOKEN}"}
    assert {request.body["channel"] for request in posted} == {CHANNEL}
    assert all(request.body["unfurl_links"] is False for request in posted)
    texts = [request.text for request in posted]
    assert texts[0].splitlines() == [
        ":test_tube: *Gameday started*: Checkout &lt;survives&gt; a slow DB (run 20250301T120000-chat)",
        "Hypothesis: checkout stays up",
        "Faults: flag (inprocess.flag)",
        f"<{OBSERVER_LINK}|Watch it live (read-only)>",
    ]
    assert texts[1] == ":rotating_light: *Alert firing* (synthetic): ProbeFailing"
    assert texts[2].startswith(":arrow_double_up: *Escalation due*: not mitigated 900s")
    assert texts[3].startswith(":white_check_mark: *Mitigated*: alice marked the incident mitigated")
    assert (
        texts[4]
        == ":octagonal_sign: *Aborted* (signal): SIGINT while reverting. The faults are being reverted."
    )
    assert texts[5] == ":checkered_flag: *Run finished*: aborted - aborted (signal)"
    figures = texts[6].splitlines()
    assert figures[0] == ":bar_chart: *Debrief*"
    assert figures[1] == (
        f"TTD 2m10s (target 5m), TTM 8m (target 15m), "
        f"score {debrief.score.total:g} (grade {debrief.score.grade})"
    )
    assert figures[2] == "Report: /state/runs/r/report.html"

    kinds = ["run_started", "alert_firing", "escalation_due", "mitigated", "abort", "finished", "report"]
    assert journaled.fields == [
        {"kind": kind, "chat": "slack", "ok": True, "error": None, "attempts": 1} for kind in kinds
    ]
    assert notifier.dropped == 0 and notifier.unsent == 0


def test_from_scenario_needs_a_token_or_webhook_in_the_environment(fake: FakeSlack) -> None:
    scenario = make_scenario(slack_bot(fake))
    assert ChatNotifier.from_scenario(scenario, environ={}) is None  # named, not set
    assert ChatNotifier.from_scenario(make_scenario({"slack": {"channel": CHANNEL}}), environ={}) is None
    assert ChatNotifier.from_scenario(make_scenario({}), environ={"T_SLACK_BOT": BOT_TOKEN}) is None
    both = make_scenario(
        {
            **slack_bot(fake),
            "mattermost": {"channel": "gameday", "webhook_url_env": "T_MM_HOOK"},
        }
    )
    notifier = ChatNotifier.from_scenario(
        both, environ={"T_SLACK_BOT": BOT_TOKEN, "T_MM_HOOK": fake.webhook_url("mm")}
    )
    assert notifier is not None
    assert notifier.destinations == [f"slack {CHANNEL} (bot)", "mattermost webhook"]
    notifier.close(timeout=1)


def test_webhook_mode_slack_and_mattermost_each_in_its_dialect(fake: FakeSlack) -> None:
    chat = {
        "slack": {"channel": CHANNEL, "webhook_url_env": "T_SLACK_HOOK"},
        "mattermost": {"channel": "gameday", "webhook_url_env": "T_MM_HOOK"},
    }
    scenario = make_scenario(chat)
    journaled = Journaled()
    environ = {"T_SLACK_HOOK": fake.webhook_url("slack"), "T_MM_HOOK": fake.webhook_url("mattermost")}
    notifier = notifier_for(scenario, environ, on_posted=journaled)
    notifier({"type": "run_started", "run_id": "r1"})
    notifier.set_console_link(OBSERVER_LINK)  # known only after the run-started message: a message of its own
    notifier({"type": "abort", "cause": "operator", "detail": "@channel stop [now](http://x)"})
    notifier.close(timeout=10)

    slack = [request for request in fake.posted() if request.path.startswith("/hooks/slack/")]
    mattermost = [request for request in fake.posted() if request.path.startswith("/hooks/mattermost/")]
    assert [len(slack), len(mattermost)] == [3, 3]
    assert all("Authorization" not in request.headers for request in fake.posted())
    assert mattermost[0].body.keys() == {"text"}  # Mattermost's plain {"text": ...}
    assert slack[0].body["unfurl_links"] is False
    assert slack[0].text.startswith(":test_tube: *Gameday started*: Checkout &lt;survives&gt; a slow DB")
    assert mattermost[0].text.startswith(r":test_tube: **Gameday started**: Checkout \<survives\> a slow DB")
    assert "live" not in slack[0].text
    assert slack[1].text == f":eyes: <{OBSERVER_LINK}|Watch the gameday live (read-only)>"
    assert mattermost[1].text == f":eyes: [Watch the gameday live (read-only)]({OBSERVER_LINK})"
    assert "@channel" not in slack[2].text and "@" + JOINER + "channel" in slack[2].text
    assert r"\[now\]\(http://x\)" in mattermost[2].text and "@channel" not in mattermost[2].text
    assert sorted(field["chat"] for field in journaled.fields) == ["mattermost"] * 3 + ["slack"] * 3
    # the webhook URL is the credential: nothing the session would journal holds it
    assert "secret" not in repr(journaled.fields)


def test_a_429_is_retried_after_its_retry_after_and_not_lost(fake: FakeSlack) -> None:
    scenario = make_scenario(slack_bot(fake))
    journaled = Journaled()
    notifier = notifier_for(scenario, {"T_SLACK_BOT": BOT_TOKEN}, on_posted=journaled)
    fake.answer_429(retry_after=1)
    notifier({"type": "escalation_due", "detail": "escalate"})
    notifier({"type": "run_finished", "status": "completed", "detail": "held"})
    notifier.close(timeout=10)

    assert [request.answered for request in fake.received] == [429, 200, 200]
    assert fake.received[0].text == fake.received[1].text  # the same message, again
    assert fake.received[1].at - fake.received[0].at >= 0.9  # Retry-After: 1 honoured
    assert [request.text.split(":", 2)[1] for request in fake.posted()] == [
        "arrow_double_up",
        "checkered_flag",
    ]
    assert journaled.fields[0] == {
        "kind": "escalation_due",
        "chat": "slack",
        "ok": True,
        "error": None,
        "attempts": 2,
    }


def test_a_500_twice_then_success(fake: FakeSlack) -> None:
    scenario = make_scenario(slack_bot(fake))
    journaled = Journaled()
    notifier = notifier_for(scenario, {"T_SLACK_BOT": BOT_TOKEN}, on_posted=journaled)
    fake.answer_500(times=2)
    notifier({"type": "abort", "cause": "condition", "detail": "errors > 5"})
    notifier.close(timeout=10)

    assert [request.answered for request in fake.received] == [500, 500, 200]
    assert journaled.fields == [{"kind": "abort", "chat": "slack", "ok": True, "error": None, "attempts": 3}]


def test_a_refusal_is_not_retried_and_the_reason_is_journaled(fake: FakeSlack) -> None:
    scenario = make_scenario(slack_bot(fake))
    journaled = Journaled()
    notifier = notifier_for(scenario, {"T_SLACK_BOT": "xoxb-wrong"}, on_posted=journaled)
    notifier({"type": "run_finished", "status": "completed", "detail": "held"})
    notifier.close(timeout=10)

    assert len(fake.received) == 1 and fake.posted() == []
    assert journaled.fields == [
        {"kind": "finished", "chat": "slack", "ok": False, "error": "invalid_auth", "attempts": 1}
    ]
    assert notifier.unsent == 1


def test_at_most_one_message_a_second_per_channel(fake: FakeSlack) -> None:
    scenario = make_scenario(slack_bot(fake))
    notifier = ChatNotifier.from_scenario(scenario, environ={"T_SLACK_BOT": BOT_TOKEN})
    assert notifier is not None
    for n in range(3):
        notifier({"type": "alert", "name": f"A{n}", "state": "firing", "layer": "synthetic"})
    notifier.close(timeout=10)

    arrivals = [request.at for request in fake.posted()]
    assert len(arrivals) == 3
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(arrivals))


def test_a_dead_endpoint_never_holds_close_beyond_its_bound() -> None:
    # A port that accepts connections and never answers (a hung proxy), and one that refuses them.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        chat = {
            "slack": {
                "channel": CHANNEL,
                "bot_token_env": "T_SLACK_BOT",
                "api_url": f"http://127.0.0.1:{hung.getsockname()[1]}/api/",
            },
            "mattermost": {"channel": "gameday", "webhook_url_env": "T_MM_HOOK"},
        }
        scenario = make_scenario(chat)
        environ = {
            "T_SLACK_BOT": BOT_TOKEN,
            "T_MM_HOOK": f"http://127.0.0.1:{refused.getsockname()[1]}/hooks/x",
        }
        journaled = Journaled()
        notifier = notifier_for(scenario, environ, on_posted=journaled)
        for n in range(5):
            notifier({"type": "alert", "name": f"A{n}", "state": "firing", "layer": "synthetic"})
        time.sleep(0.5)  # both workers are now inside a request or a backoff
        started = time.monotonic()
        notifier.close(timeout=2)
        assert time.monotonic() - started < 3.5  # the bound, plus a request timeout rounded up to a second
    finally:
        hung.close()
        refused.close()
    assert notifier.unsent >= 9  # nothing got through, and nothing claims it did
    assert all(not field["ok"] for field in journaled.fields)


def test_close_stops_the_retries_of_a_refusing_endpoint_at_its_bound() -> None:
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        scenario = make_scenario({"mattermost": {"channel": "gameday", "webhook_url_env": "T_MM_HOOK"}})
        environ = {"T_MM_HOOK": f"http://127.0.0.1:{refused.getsockname()[1]}/hooks/x"}
        notifier = notifier_for(scenario, environ)
        for n in range(3):
            notifier({"type": "alert", "name": f"A{n}", "state": "firing", "layer": "synthetic"})
        time.sleep(0.3)  # the first message is in its backoff (0.5 s, 1 s, 2 s, 4 s: 7.5 s in all)
        started = time.monotonic()
        notifier.close(timeout=1)
        assert time.monotonic() - started < 1.5
        assert not notifier.working  # the worker gave up, it is not sleeping through its backoff
        assert notifier.unsent == 3
    finally:
        refused.close()


def test_a_full_queue_drops_with_a_count_and_the_listener_never_waits(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = make_scenario(slack_bot(fake))
    notifier = notifier_for(scenario, {"T_SLACK_BOT": BOT_TOKEN}, queue_size=2, min_interval=0.5)
    started = time.monotonic()
    for n in range(10):
        notifier({"type": "alert", "name": f"A{n}", "state": "firing", "layer": "synthetic"})
    assert time.monotonic() - started < 1.0
    notifier.close(timeout=10)

    posted = len(fake.posted())
    assert notifier.dropped >= 10 - 3 and posted + notifier.dropped == 10  # at most 2 queued + 1 in hand
    assert "dropped a alert_firing message" in caplog.text


def test_a_closed_notifier_posts_nothing_more(fake: FakeSlack) -> None:
    notifier = notifier_for(make_scenario(slack_bot(fake)), {"T_SLACK_BOT": BOT_TOKEN})
    notifier.close(timeout=1)
    notifier({"type": "run_finished", "status": "completed", "detail": "held"})
    time.sleep(0.3)
    assert fake.received == []
