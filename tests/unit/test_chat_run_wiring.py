"""A run's chat wired to its runner: chat_posted in the journal, a bounded close, automated runs unscored.

``RunChat`` over a real journal in a temporary folder; the destinations are
fakes at our own seam (``Destination.post``), so no HTTP and no service: the
integration tests (test_chat_live_run.py) post through slack_sdk to loopback.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaosrunner.engine.journal import Journal, read_events
from chaosrunner.gameday.chat import messages
from chaosrunner.gameday.chat.messages import MATTERMOST, SLACK
from chaosrunner.gameday.chat.outbound import ChatNotifier, Destination, unset_variables
from chaosrunner.gameday.chat.run_chat import RunChat
from chaosrunner.gameday.chat.slack_api import PostResult
from chaosrunner.scenario.loader import scenario_from_data
from chaosrunner.scenario.models import Scenario

SECRET = "xoxb-not-for-the-journal-123456"


def make_scenario(chat: dict[str, Any], mode: str = "gameday") -> Scenario:
    return scenario_from_data(
        {
            "metadata": {
                "title": "Pool <exhausted>",
                "owner": "t",
                "expected_severity": "P2",
                "hypothesis": "h",
            },
            "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "wiring"}}],
            "gameday": {"mode": mode},
            "chat": chat,
        },
        source="test",
    )


SLACK_BOT = {"slack": {"channel": "C1", "bot_token_env": "W_BOT"}}


class Channel:
    """A destination's post: records texts, answers as told (ok unless ``refuse``), may hang until
    ``release`` (then it times out like a request would)."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.texts: list[str] = []
        self.refuse = refuse
        self.release = threading.Event()
        self.release.set()

    def post(self, text: str, timeout: float) -> PostResult:
        if not self.release.wait(timeout):
            return PostResult(ok=False, error="TimeoutError: no answer")  # as slack_api says it
        self.texts.append(text)
        if self.refuse:
            return PostResult(ok=False, status=200, error="channel_not_found")
        return PostResult(ok=True, status=200)


def wired(tmp_path: Path, scenario: Scenario, channel: Channel) -> tuple[RunChat, Journal]:
    journal = Journal(tmp_path / "journal.jsonl")
    runner = SimpleNamespace(scenario=scenario, journal=journal)
    chat = RunChat(runner, environ={"W_BOT": SECRET})  # type: ignore[arg-type]
    # the seam: the same notifier, posting to the fake channel instead of Slack
    chat.notifier = ChatNotifier(
        scenario,
        [Destination("slack", "slack C1 (bot)", SLACK, channel.post)],
        on_posted=chat._journal_posted,
    )
    return chat, journal


def journaled(journal: Journal, *types: str) -> list[dict[str, Any]]:
    return [dict(event) for event in read_events(journal.path) if event.type in types]


def test_each_message_is_journaled_as_chat_posted_without_text_or_secret(tmp_path: Path) -> None:
    channel = Channel()
    chat, journal = wired(tmp_path, make_scenario(SLACK_BOT), channel)
    chat({"type": "run_started", "run_id": "r1", "mode": "gameday"})
    chat({"type": "run_finished", "status": "completed", "detail": "held"})
    chat.report_written("/reports/r1/report.html")
    chat.close(timeout=10)

    posted = journaled(journal, "chat_posted")
    assert [(e["kind"], e["chat"], e["ok"], e["error"], e["attempts"]) for e in posted] == [
        ("run_started", "slack", True, None, 1),
        ("finished", "slack", True, None, 1),
        ("report", "slack", True, None, 1),
    ]
    closed = journaled(journal, "chat_closed")
    assert closed == [closed[0]] and closed[0]["given_up"] == 0 and closed[0]["dropped"] == 0
    assert closed[0]["destinations"] == ["slack C1 (bot)"]
    text = journal.path.read_text()
    assert SECRET not in text and "Gameday started" not in text and "Pool" not in text
    assert set(posted[0]) == {"type", "time", "offset", "kind", "chat", "ok", "error", "attempts"}


def test_close_is_bounded_journals_what_was_given_up_and_nothing_after(tmp_path: Path) -> None:
    channel = Channel()
    channel.release.clear()  # the channel hangs: the first request never answers before close
    chat, journal = wired(tmp_path, make_scenario(SLACK_BOT), channel)
    chat({"type": "run_started", "run_id": "r1", "mode": "gameday"})
    chat({"type": "run_finished", "status": "aborted", "detail": "x"})
    chat.close(timeout=0.5)
    channel.release.set()  # the hung request answers late: too late to be journaled
    chat.notifier.close(timeout=2)
    chat.close()  # idempotent

    closed = journaled(journal, "chat_closed")
    assert len(closed) == 1 and closed[0]["given_up"] == 2
    lines = [json.loads(line)["type"] for line in journal.path.read_text().splitlines()]
    assert lines[-1] == "chat_closed"  # whatever the late answer said, it came after close


def test_a_refusal_is_one_warning_line_and_a_failed_chat_posted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chat, journal = wired(tmp_path, make_scenario(SLACK_BOT), Channel(refuse=True))
    with caplog.at_level(logging.WARNING, logger="chaosrunner.chat"):
        chat({"type": "run_finished", "status": "completed", "detail": "held"})
        chat.close(timeout=5)
    posted = journaled(journal, "chat_posted")
    assert [(e["ok"], e["error"], e["attempts"]) for e in posted] == [(False, "channel_not_found", 1)]
    failures = [r for r in caplog.records if "could not post" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is None  # a line, not a traceback
    assert "channel_not_found" in failures[0].getMessage()


def test_an_automated_run_hears_start_abort_finish_and_report_unscored(tmp_path: Path) -> None:
    channel = Channel()
    chat, journal = wired(tmp_path, make_scenario(SLACK_BOT, mode="automated"), channel)
    chat({"type": "run_started", "run_id": "r1", "mode": "automated"})
    chat({"type": "alert", "name": "ProbeFailing", "state": "firing", "layer": "synthetic"})
    chat({"type": "escalation_due", "detail": "late"})
    chat({"type": "abort", "cause": "condition", "detail": "error rate 0.4 > 0.05"})
    chat({"type": "faults_ending", "reason": "x"})
    chat({"type": "run_finished", "status": "aborted", "detail": "aborted (condition)"})
    chat.report_written("/reports/r1/report.html", None)
    chat.close(timeout=10)

    assert [text.split("*")[1] for text in channel.texts] == [
        "Automated chaos run started",
        "Aborted",
        "Run finished",
        "Automated chaos run report",
    ]
    assert "error rate 0.4 &gt; 0.05" in channel.texts[1]
    assert "/reports/r1/report.html" in channel.texts[3]
    assert not any(word in "".join(channel.texts) for word in ("TTD", "TTM", "score", "Gameday"))
    assert [e["kind"] for e in journaled(journal, "chat_posted")] == [
        "run_started",
        "abort",
        "finished",
        "report",
    ]


def test_for_runner_warns_once_per_named_unset_variable_and_posts_nowhere_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario = make_scenario(
        {
            "slack": {"channel": "C1", "bot_token_env": "W_BOT", "webhook_url_env": "W_SLACK_HOOK"},
            "mattermost": {"channel": "g", "webhook_url_env": "W_MM_HOOK"},
        }
    )
    runner = SimpleNamespace(scenario=scenario, journal=None)
    with caplog.at_level(logging.WARNING, logger="chaosrunner.chat"):
        chat = RunChat.for_runner(runner, environ={"W_MM_HOOK": "http://127.0.0.1:9/hooks/x"})  # type: ignore[arg-type]
    assert chat is not None and chat.notifier.destinations == ["mattermost webhook"]
    warned = [record.getMessage() for record in caplog.records]
    assert warned == [
        "chat: chat.slack.bot_token_env names W_BOT, which is not set: no messages through it for this run",
        "chat: chat.slack.webhook_url_env names W_SLACK_HOOK, which is not set: "
        "no messages through it for this run",
    ]
    assert all(record.exc_info is None for record in caplog.records)
    assert RunChat.for_runner(runner, environ={}) is None  # type: ignore[arg-type]
    assert unset_variables(make_scenario({}), {}) == []


def test_the_run_started_heading_says_which_kind_of_run_it_is() -> None:
    for dialect in (SLACK, MATTERMOST):
        gameday = messages.run_started("T", "H", [("f", "k")], "r1", None, dialect)
        automated = messages.run_started("T", "H", [("f", "k")], "r1", None, dialect, automated=True)
        assert "Gameday started" in gameday.text and "Automated" not in gameday.text
        assert "Automated chaos run started" in automated.text and "Gameday" not in automated.text
    report = messages.automated_report(None, MATTERMOST)
    assert report.kind == "report" and "No report was written." in report.text


def test_a_cronjob_carries_the_outbound_chat_secrets_and_not_the_inbound_ones() -> None:
    from chaosrunner.schedule.export_secrets import env_names

    scenario = make_scenario(
        {
            "slack": {"channel": "C1", "bot_token_env": "W_BOT", "signing_secret_env": "W_SIGN"},
            "mattermost": {"channel": "g", "webhook_url_env": "W_MM_HOOK", "command_token_env": "W_MM_CMD"},
        },
        mode="automated",
    )
    assert env_names(scenario) == ["W_BOT", "W_MM_HOOK"]
    assert env_names(make_scenario({})) == []
