"""The :stopwatch: reaction: Slack's URL check, a reaction becoming a note, once, and every refusal.

The message reader and the names are functions at our own seam (the Web API
behind them is tested in tests/integration/test_chat_slack_reads.py against a
fake Slack on loopback). Signatures are made here with ``hmac``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.chat.display_names import DisplayNames
from chaosrunner.gameday.chat.inbound import RunContext, handlers
from chaosrunner.gameday.chat.reactions import UNREADABLE, SlackReactions, stopwatch_reaction
from chaosrunner.scenario.models import ChatSettings, SlackChat

pytestmark = pytest.mark.unit

SECRET = "test-signing-secret"
CHANNEL = "C0GAMEDAY"
MESSAGE_TS = "1767225600.000100"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunDir:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    folder = RunDir.create()
    journal = Journal(folder.journal_path)
    journal.append("run_started", run_id=folder.run_id, monotonic_start=journal.monotonic_start)
    return folder


def marks(run: RunDir) -> list[dict[str, Any]]:
    return [dict(event) for event in run.events() if event.type == "responder"]


def signed(
    payload: dict[str, Any], secret: str = SECRET, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}


def reaction(
    user: str = "U1",
    reaction_name: str = "stopwatch",
    channel: str = CHANNEL,
    ts: str = MESSAGE_TS,
    at: float = 0,
) -> dict[str, Any]:
    event_ts = f"{at or time.time():.6f}"
    return {
        "type": "event_callback",
        "event_id": f"Ev{user}{reaction_name}",
        "event": {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction_name,
            "item_user": "U9",
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": event_ts,
        },
    }


class Messages:
    def __init__(self, texts: dict[tuple[str, str], str]) -> None:
        self.texts = texts
        self.asked: list[tuple[str, str]] = []

    def __call__(self, channel: str, ts: str) -> str | None:
        self.asked.append((channel, ts))
        return self.texts.get((channel, ts))


@pytest.fixture
def messages() -> Messages:
    return Messages({(CHANNEL, MESSAGE_TS): "checkout 5xx at 40%, paging <@U9> &amp; db team"})


@pytest.fixture
def reactions(run: RunDir, messages: Messages) -> Iterator[SlackReactions]:
    people = {"U1": "Maria López", "U2": "Rosa", "U9": "Fran"}
    made = SlackReactions(SECRET, CHANNEL, RunContext(run), reader=messages, names=DisplayNames(people.get))
    yield made
    made.close()


def test_slacks_url_check_gets_its_challenge_back_only_when_signed(reactions: SlackReactions) -> None:
    body, headers = signed({"type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV"})
    assert reactions.handle(body, headers).body == {"challenge": "3eZbrw1aBm2rZgRNFdxV"}
    forged, _ = signed({"type": "url_verification", "challenge": "x"})
    assert reactions.handle(forged, signed({}, secret="not the secret")[1]).status == 401


def test_a_stopwatch_becomes_a_note_by_the_person_who_reacted_at_the_reactions_time(
    reactions: SlackReactions, run: RunDir
) -> None:
    at = time.time()
    reply = reactions.handle(*signed(reaction(at=at)))
    assert reply.status == 200
    assert reactions.wait_idle(10)
    [mark] = marks(run)
    assert (mark["event"], mark["value"], mark["by"], mark["source"]) == (
        "note",
        "checkout 5xx at 40%, paging @Fran & db team",
        "Maria López",
        "slack",
    )
    assert abs(datetime.fromisoformat(mark["at"].replace("Z", "+00:00")).timestamp() - at) < 0.01


def test_a_message_is_noted_once_however_many_stopwatches_it_gets(
    reactions: SlackReactions, run: RunDir, messages: Messages
) -> None:
    assert reactions.handle(*signed(reaction(user="U1"))).status == 200
    assert reactions.handle(*signed(reaction(user="U2"))).status == 200  # someone else, same message
    assert reactions.wait_idle(10)
    assert [mark["by"] for mark in marks(run)] == ["Maria López"]
    assert messages.asked == [(CHANNEL, MESSAGE_TS)]


def test_a_replayed_event_is_refused(reactions: SlackReactions, run: RunDir) -> None:
    body, headers = signed(reaction())
    assert reactions.handle(body, headers).status == 200
    assert reactions.handle(body, headers).status == 401
    stale_body, stale = signed(reaction(ts="1767225601.000200"), at=int(time.time()) - 301)
    assert reactions.handle(stale_body, stale).status == 401
    assert reactions.wait_idle(10)
    assert len(marks(run)) == 1


@pytest.mark.parametrize(
    "payload",
    [
        reaction(reaction_name="eyes"),
        reaction(reaction_name="stopwatch::skin-tone-2"),
        reaction(channel="C0RANDOM"),
        {**reaction(), "event": {**reaction()["event"], "type": "reaction_removed"}},
        {**reaction(), "event": {**reaction()["event"], "item": {"type": "file", "file": "F1"}}},
        {**reaction(), "type": "app_rate_limited"},
        {"type": "event_callback", "event": "not an object"},
    ],
)
def test_everything_else_is_answered_and_ignored(
    reactions: SlackReactions, run: RunDir, payload: Any
) -> None:
    reply = reactions.handle(*signed(payload))
    assert reply.status == 200 and reply.body == {"ok": "ignored"}
    assert reactions.wait_idle(10)
    assert marks(run) == []


def test_a_body_that_is_not_a_json_object_is_a_400_after_verification(reactions: SlackReactions) -> None:
    timestamp = int(time.time())

    def headers(body: bytes) -> dict[str, str]:
        digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
        return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}

    for body in (b"[1, 2]", b"not json", b"[" * 5000 + b"]" * 5000):
        assert reactions.handle(body, headers(body)).status == 400
    assert reactions.handle(b"\xff\xfe", headers(b"\xff\xfe")).status == 401  # not UTF-8: not from Slack


def test_without_a_bot_token_the_note_says_its_text_could_not_be_read(run: RunDir) -> None:
    chat = ChatSettings(slack=SlackChat(channel=CHANNEL, signing_secret_env="SLACK_SECRET"))
    found, _ = handlers(chat, RunContext(run), {"SLACK_SECRET": SECRET})
    [events] = [handler for handler in found if isinstance(handler, SlackReactions)]
    assert events.path == "/chat/slack/events"
    try:
        assert events.handle(*signed(reaction(user="U1"))).status == 200
        assert events.wait_idle(10)
    finally:
        events.close()
    [mark] = marks(run)
    assert (mark["value"], mark["by"]) == (UNREADABLE, "U1")


def test_a_reaction_time_in_the_future_is_taken_as_now() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    found = stopwatch_reaction(reaction(at=now.timestamp() + 30), now)
    assert found is not None and found.at == now
    broken = reaction()
    broken["event"]["event_ts"] = "soon"
    assert stopwatch_reaction(broken, now) is not None and stopwatch_reaction(broken, now).at == now  # type: ignore[union-attr]


def test_a_reaction_stuck_on_slack_never_holds_the_process_open_at_exit(run: RunDir) -> None:
    script = f"""
import subprocess
import sys
import time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.chat.inbound import RunContext
from chaosrunner.gameday.chat.reactions import SlackReactions
context = RunContext(RunDir.find({run.run_id!r}))
reactions = SlackReactions("s", "C1", context, reader=lambda channel, ts: time.sleep(600))
event = {{"type": "reaction_added", "user": "U1", "reaction": "stopwatch",
          "item": {{"type": "message", "channel": "C1", "ts": "1.000001"}}}}
assert reactions.act({{"type": "event_callback", "event": event}}).body == {{"ok": "noting"}}
print("exiting", flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout) == (0, "exiting\n"), done.stderr
