"""What the inbound chat reads from Slack's Web API, against a fake of it on loopback (chat.slack.api_url).

``slack_api.user_display_name`` and ``message_text`` through slack_sdk's real
WebClient, then a run server on loopback serving the handlers a run makes
from its scenario and environment (bot token included): signed slash
commands whose author and mention become display names, a slow or failing
``users.info`` that falls back to the request's ``user_name``, and
:stopwatch: reactions on a channel message and on a reply in a thread that
become notes, once each.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.chat.inbound import RunContext, handlers
from chaosrunner.gameday.chat.reactions import SlackReactions
from chaosrunner.gameday.chat.slack_api import message_text, user_display_name
from chaosrunner.gameday.endpoint import RunServer
from chaosrunner.gameday.server.chat_routes import chat_routes
from chaosrunner.scenario.models import ChatSettings, SlackChat
from tests.support.fake_slack_web import BOT_TOKEN, FakeSlackWeb

pytestmark = pytest.mark.integration

SECRET = "integration-signing-secret"
CHANNEL = "C0GAMEDAY"
TOP_TS, THREAD_TS = "1767225600.000100", "1767225660.000200"


@pytest.fixture
def slack() -> Iterator[FakeSlackWeb]:
    fake = FakeSlackWeb().start()
    fake.person("U1", "Maria López", name="maria.lopez")
    fake.person("U7", "Rosa Díaz", name="rosa")
    fake.person("U8", "", real_name="Fran Ortega", name="fran")  # no display name set: the real name
    fake.messages[CHANNEL] = [
        {"ts": TOP_TS, "text": "checkout p99 4s &amp; rising, <@U7> is on it"},
        {"ts": THREAD_TS, "thread_ts": TOP_TS, "text": "db pool at 100/100"},  # a reply in the thread
    ]
    yield fake
    fake.stop()


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunDir:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    folder = RunDir.create()
    journal = Journal(folder.journal_path)
    journal.append("run_started", run_id=folder.run_id, monotonic_start=journal.monotonic_start)
    return folder


@pytest.fixture
def server(run: RunDir, slack: FakeSlackWeb) -> Iterator[tuple[RunServer, list[Any]]]:
    chat = ChatSettings(
        slack=SlackChat(
            channel=CHANNEL,
            signing_secret_env="SLACK_SECRET",
            bot_token_env="SLACK_BOT",
            api_url=slack.api_url,
        )
    )
    found, warnings = handlers(chat, RunContext(run), {"SLACK_SECRET": SECRET, "SLACK_BOT": BOT_TOKEN})
    assert warnings == []
    started = RunServer()
    started.start(run, more_routes=chat_routes(found))
    yield started, found
    started.close()
    for handler in found:
        if isinstance(handler, SlackReactions):
            handler.close()


def marks(run: RunDir) -> list[tuple[str, str, str]]:
    return [(e["event"], e["value"], e["by"]) for e in run.events() if e.type == "responder"]


def post(server: RunServer, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
    timestamp = int(time.time())
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Host": "gameday.example.net",  # through the team's proxy, as Slack reaches it
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
    }
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def command(server: RunServer, text: str, user_id: str, user_name: str) -> tuple[int, Any]:
    form = {
        "command": "/gameday",
        "text": text,
        "user_id": user_id,
        "user_name": user_name,
        "channel_id": CHANNEL,
    }
    return post(server, "/chat/slack/commands", urlencode(form).encode(), "application/x-www-form-urlencoded")


def stopwatch(server: RunServer, user: str, ts: str) -> tuple[int, Any]:
    event = {
        "type": "reaction_added",
        "user": user,
        "reaction": "stopwatch",
        "item": {"type": "message", "channel": CHANNEL, "ts": ts},
        "event_ts": f"{time.time():.6f}",
    }
    body = json.dumps({"type": "event_callback", "event_id": f"Ev{user}{ts}", "event": event}).encode()
    return post(server, "/chat/slack/events", body, "application/json")


def wait_for_marks(run: RunDir, count: int) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + 15
    while len(marks(run)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return marks(run)


# -- the boundary itself --------------------------------------------------------------------------


def test_users_info_gives_the_name_people_see(slack: FakeSlackWeb) -> None:
    def name(user_id: str, token: str = BOT_TOKEN) -> str | None:
        return user_display_name(token, user_id, api_url=slack.api_url, timeout=5)

    assert name("U1") == "Maria López"
    assert name("U8") == "Fran Ortega"
    assert name("U404") is None  # user_not_found
    assert name("U1", token="xoxb-wrong") is None  # invalid_auth
    assert name("not an id") is None
    assert [params["user"] for params in slack.calls("users.info")] == ["U1", "U8", "U404", "U1"]
    slack.failing.add("users.info")
    assert name("U7") is None


def test_a_message_is_read_from_the_channel_or_its_thread(slack: FakeSlackWeb) -> None:
    def text(ts: str) -> str | None:
        return message_text(BOT_TOKEN, CHANNEL, ts, api_url=slack.api_url, timeout=5)

    assert text(TOP_TS) == "checkout p99 4s &amp; rising, <@U7> is on it"  # Slack's markup: made plain later
    assert slack.calls("conversations.replies") == []
    assert text(THREAD_TS) == "db pool at 100/100"
    [history, _] = slack.calls("conversations.history")
    assert (history["latest"], history["inclusive"], history["limit"]) == (TOP_TS, "1", "1")
    assert text("1767225999.000000") is None


# -- the run server, with the handlers a run makes ---------------------------------------------------


def test_commands_are_authored_by_display_names_looked_up_once(
    server: tuple[RunServer, list[Any]], run: RunDir, slack: FakeSlackWeb
) -> None:
    served, _ = server
    # The names are asked for by a command that records nothing, and answered before the marks:
    # the marks then do not depend on how fast a loaded machine answers within the 1.5 s budget.
    assert command(served, "help <@U7>", "U1", "maria.lopez")[0] == 200
    assert command(served, "status", "U8", "fran")[0] == 200
    slack.wait_answered("users.info", "user", {"U1", "U7", "U8"})
    assert command(served, "ic <@U7>", "U1", "maria.lopez") == (
        200,
        {"response_type": "ephemeral", "text": "recorded: ic Rosa Díaz by Maria López"},
    )
    assert command(served, "sev p2", "U1", "maria.lopez")[1]["text"] == "recorded: sev P2 by Maria López"
    assert command(served, "note paged &lt;@U7&gt; by hand", "U8", "fran")[0] == 200
    assert marks(run) == [
        ("ic", "Rosa Díaz", "Maria López"),
        ("severity", "P2", "Maria López"),
        ("note", "paged <@U7> by hand", "Fran Ortega"),
    ]
    assert sorted(params["user"] for params in slack.calls("users.info")) == ["U1", "U7", "U8"]


def test_when_slack_is_slow_or_failing_the_request_names_the_author(
    server: tuple[RunServer, list[Any]], run: RunDir, slack: FakeSlackWeb
) -> None:
    served, _ = server
    slack.delay["users.info"] = 4.0  # longer than the 1.5 s the request waits for names
    assert (
        command(served, "ic <@U7|rosa>", "U1", "maria.lopez")[1]["text"] == "recorded: ic rosa by maria.lopez"
    )
    slack.delay.clear()
    slack.failing.add("users.info")
    assert command(served, "mitigated", "U8", "fran")[1]["text"] == "recorded: mitigated by fran"
    assert marks(run) == [("ic", "rosa", "maria.lopez"), ("mitigated", "", "fran")]


def test_stopwatch_reactions_become_notes_once_each(
    server: tuple[RunServer, list[Any]], run: RunDir, slack: FakeSlackWeb
) -> None:
    served, _ = server
    assert stopwatch(served, "U8", TOP_TS) == (200, {"ok": "noting"})
    assert stopwatch(served, "U1", THREAD_TS)[0] == 200
    assert wait_for_marks(run, 2) == [
        ("note", "checkout p99 4s & rising, @Rosa Díaz is on it", "Fran Ortega"),
        ("note", "db pool at 100/100", "Maria López"),
    ]
    assert stopwatch(served, "U7", TOP_TS) == (200, {"ok": "this message is already a note"})
    [reactions] = [handler for handler in server[1] if isinstance(handler, SlackReactions)]
    assert reactions.wait_idle(10)
    assert len(marks(run)) == 2
    assert all(event.get("source") == "slack" for event in run.events() if event.type == "responder")
