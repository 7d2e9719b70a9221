"""Slash commands in: verification, replays, the channel binding, and a real run server on loopback.

Slack's published known-answer example first (through ``slack_api.signature_is_valid``
and through the handler), then every refusal - wrong signature, stale
timestamp, replay, Mattermost's wrong token, another channel - each checked
for its answer and for an untouched journal. The signatures in the wire
tests are made here with ``hmac``, independently of slack_sdk.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.chat.display_names import DisplayNames
from chaosrunner.gameday.chat.inbound import (
    Handler,
    MattermostCommands,
    ReplayGuard,
    RunContext,
    SlackCommands,
    handlers,
    run_state,
)
from chaosrunner.gameday.chat.slack_api import signature_is_valid
from chaosrunner.gameday.endpoint import RunServer
from chaosrunner.gameday.server.chat_routes import chat_routes
from chaosrunner.scenario.models import ChatSettings, MattermostChat, SlackChat

pytestmark = pytest.mark.unit

# Slack's worked example (docs: "Verifying requests from Slack").
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "test-signing-secret"
TOKEN = "mattermost-command-token"
CHANNEL = "C0GAMEDAY"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunDir:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    folder = RunDir.create()
    journal = Journal(folder.journal_path)
    journal.append("run_started", run_id=folder.run_id, monotonic_start=journal.monotonic_start)
    return folder


def marks(run: RunDir) -> list[dict[str, Any]]:
    return [dict(event) for event in run.events() if event.type == "responder"]


def sign(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}


def slack_form(text: str, user: str = "maria", channel: str = CHANNEL) -> bytes:
    return urlencode(
        {"command": "/gameday", "text": text, "user_id": "U1", "user_name": user, "channel_id": channel}
    ).encode()


# -- Slack's known answer, and the refusals, at the handler ---------------------------------------


def test_slacks_published_example_verifies() -> None:
    at = float(DOC_TIMESTAMP)
    assert signature_is_valid(DOC_SECRET, DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, now=at + 60)
    assert not signature_is_valid(DOC_SECRET, DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, now=at + 301)
    assert not signature_is_valid(DOC_SECRET, DOC_BODY + b"x", DOC_TIMESTAMP, DOC_SIGNATURE, now=at)
    assert not signature_is_valid("another secret", DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, now=at)


def test_the_example_passes_the_handler_and_its_replay_does_not(run: RunDir) -> None:
    at = float(DOC_TIMESTAMP)
    slack = SlackCommands(DOC_SECRET, "G8PSS9T3V", RunContext(run), clock=lambda: at + 10)
    headers = {"x-slack-request-timestamp": DOC_TIMESTAMP, "x-slack-signature": DOC_SIGNATURE}
    first = slack.handle(DOC_BODY, headers)
    assert first.status == 200 and first.body["response_type"] == "ephemeral"
    assert "/gameday sev P1|P2|P3" in first.body["text"]  # empty text: the help
    again = slack.handle(DOC_BODY, headers)
    assert again.status == 401 and "replay" in again.body["error"]


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no signature"),
        ({"x-slack-request-timestamp": "1531420618"}, "no signature header"),
        ({"x-slack-request-timestamp": "1531420618", "x-slack-signature": "v0=" + "0" * 64}, "wrong"),
        ({"x-slack-request-timestamp": "soon", "x-slack-signature": DOC_SIGNATURE}, "not a number"),
    ],
)
def test_a_request_without_a_good_signature_is_refused(
    run: RunDir, headers: dict[str, str], why: str
) -> None:
    slack = SlackCommands(DOC_SECRET, "G8PSS9T3V", RunContext(run), clock=lambda: 1531420618.0)
    assert slack.handle(DOC_BODY, headers).status == 401, why


def test_wrong_secret_stale_and_replayed_commands_journal_nothing(run: RunDir) -> None:
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, RunContext(run), clock=lambda: now)
    body = slack_form("sev P1")
    assert slack.handle(body, sign(body, int(now), secret="not the secret")).status == 401
    assert slack.handle(body, sign(body, int(now) - 301)).status == 401  # stale
    assert slack.handle(body, sign(body, int(now) + 301)).status == 401  # from the future
    assert marks(run) == []
    headers = sign(body, int(now))
    assert slack.handle(body, headers).body["text"] == "recorded: sev P1 by maria"
    assert slack.handle(body, headers).status == 401  # the same request again
    assert [(m["event"], m["value"], m["by"], m["source"]) for m in marks(run)] == [
        ("severity", "P1", "maria", "slack")
    ]


def test_the_replay_guard_forgets_only_what_no_longer_verifies() -> None:
    guard = ReplayGuard(limit=2)
    assert guard.first_time("a", timestamp=1000, now=1000) is True
    assert guard.first_time("a", timestamp=1000, now=1200) is False
    assert guard.first_time("b", timestamp=1100, now=1200) is True
    assert guard.first_time("c", timestamp=1200, now=1200) is None  # full: refused, nothing forgotten
    assert guard.first_time("a", timestamp=1000, now=1301) is True  # a is too old to verify by now
    assert guard.first_time("b", timestamp=1100, now=1301) is False


def test_another_channel_is_told_where_the_gameday_is(run: RunDir) -> None:
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, RunContext(run), clock=lambda: now)
    body = slack_form("detected", channel="C0RANDOM")
    reply = slack.handle(body, sign(body, int(now)))
    assert reply.status == 200
    assert reply.body == {
        "response_type": "ephemeral",
        "text": f"this gameday is bound to {CHANNEL}; this channel is not",
    }
    assert marks(run) == []


def test_a_mistake_is_an_ephemeral_line_and_peoples_text_is_not_slack_markup(run: RunDir) -> None:
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, RunContext(run), clock=lambda: now)
    body = slack_form("sev <!channel>")
    reply = slack.handle(body, sign(body, int(now)))
    assert reply.status == 200
    assert reply.body["text"] == "severity must be P1, P2 or P3, not '&lt;!channel&gt;'"
    assert marks(run) == []


def test_mattermost_needs_its_command_token_and_its_channel(run: RunDir) -> None:
    mattermost = MattermostCommands(TOKEN, "gameday", RunContext(run))

    def form(token: str, **fields: str) -> bytes:
        base = {"token": token, "channel_id": "abc123", "channel_name": "town-square", "user_name": "dev"}
        return urlencode({**base, **fields}).encode()

    assert mattermost.handle(form("wrong", text="mitigated"), {}).status == 401
    assert mattermost.handle(form("", text="mitigated"), {}).status == 401
    assert mattermost.handle(b"\xff\xfe", {}).status == 401
    elsewhere = mattermost.handle(form(TOKEN, text="mitigated"), {})
    assert elsewhere.body["text"] == "this gameday is bound to gameday; this channel is not"
    assert marks(run) == []
    done = mattermost.handle(form(TOKEN, text="note vendor <b>paged</b>", channel_name="gameday"), {})
    assert done.body["text"] == 'recorded: note "vendor <b>paged</b>" by dev'
    [mark] = marks(run)
    assert (mark["event"], mark["value"], mark["by"], mark["source"]) == (
        "note",
        "vendor <b>paged</b>",
        "dev",
        "mattermost",
    )


def test_status_alone_tells_the_state_of_the_run(run: RunDir) -> None:
    context = RunContext(run, measured=lambda: None)
    assert "no fault in effect yet" in run_state(context) and "no marks yet" in run_state(context)
    Journal(run.journal_path).append("phase", phase="injecting")
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, context, clock=lambda: now)
    body = slack_form("detected via real-user", user="rosa")
    assert slack.handle(body, sign(body, int(now))).body["text"] == (
        "recorded: detected via real_user by rosa"
    )
    measured = {"t0": "2026-01-01T00:00:00Z", "ttd_s": 12.5, "ttd_layer": "real_user", "ttm_s": None}
    state = run_state(RunContext(run, measured=lambda: measured))
    assert state.startswith(f"run {run.run_id}: injecting; t0+")
    assert "TTD 12.5s (real_user); TTM not measured yet; marks: detected by rosa" in state


def test_a_secret_named_but_not_set_serves_nothing_and_the_warning_names_only_the_variable(
    run: RunDir,
) -> None:
    chat = ChatSettings(
        slack=SlackChat(channel=CHANNEL, signing_secret_env="GAMEDAY_SLACK_SECRET"),
        mattermost=MattermostChat(channel="gameday", command_token_env="GAMEDAY_MM_TOKEN"),
    )
    found, warnings = handlers(chat, RunContext(run), {"GAMEDAY_MM_TOKEN": TOKEN})
    assert [handler.source for handler in found] == ["mattermost"]
    assert warnings == [
        "chat: chat.slack.signing_secret_env names GAMEDAY_SLACK_SECRET, which is not set: "
        "/gameday from Slack is off for this run"
    ]
    assert TOKEN not in "".join(warnings)
    none, _ = handlers(ChatSettings(slack=SlackChat(channel=CHANNEL)), RunContext(run), {})
    assert none == []  # no secret named: no route


# -- a real run server on loopback -------------------------------------------------------------------


@pytest.fixture
def server(run: RunDir) -> Iterator[RunServer]:
    context = RunContext(run)
    found: list[Handler] = [
        SlackCommands(SECRET, CHANNEL, context),
        MattermostCommands(TOKEN, "gameday", context),
    ]
    started = RunServer()
    started.start(run, more_routes=chat_routes(found))
    yield started
    started.close()


def post(
    server: RunServer, path: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        # As Slack's servers reach us: through the team's proxy, under its public name, no run token.
        connection.request(method, path, body=body, headers={"Host": "gameday.example.net", **headers})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_signed_commands_reach_the_run_through_the_proxy(server: RunServer, run: RunDir) -> None:
    body = slack_form("ic <@U7|rosa>", user="fran")
    status, reply = post(server, "/chat/slack/commands", body, {**FORM, **sign(body, int(time.time()))})
    assert (status, reply) == (200, {"response_type": "ephemeral", "text": "recorded: ic rosa by fran"})
    form = urlencode({"token": TOKEN, "channel_name": "gameday", "user_name": "dev", "text": "mitigated"})
    status, reply = post(server, "/chat/mattermost/commands", form.encode(), FORM)
    assert (status, reply["text"]) == (200, "recorded: mitigated by dev")
    assert [(m["event"], m["value"], m["by"], m["source"]) for m in marks(run)] == [
        ("ic", "rosa", "fran", "slack"),
        ("mitigated", "", "dev", "mattermost"),
    ]


def test_refusals_on_the_wire_journal_nothing(server: RunServer, run: RunDir) -> None:
    body = slack_form("sev P1")
    good = sign(body, int(time.time()))
    assert post(server, "/chat/slack/commands", body, {**FORM, **sign(body, 1531420618)})[0] == 401
    assert post(server, "/chat/slack/commands", body, {**FORM, **sign(body, int(time.time()), "x")})[0] == 401
    json_type = {"Content-Type": "application/json", **good}
    assert post(server, "/chat/slack/commands", body, json_type)[0] == 415
    big = b"text=" + b"a" * (16 * 1024)
    assert post(server, "/chat/slack/commands", big, {**FORM, **sign(big, int(time.time()))})[0] == 413
    wrong = urlencode({"token": "guess", "channel_name": "gameday", "text": "mitigated"}).encode()
    assert post(server, "/chat/mattermost/commands", wrong, FORM)[0] == 401
    assert marks(run) == []


def test_only_the_signed_routes_skip_the_guards(server: RunServer, run: RunDir) -> None:
    # Under the public name and without a token, everything else is refused as before.
    assert post(server, "/events", b"{}", {"Content-Type": "application/json"})[0] == 403
    assert post(server, "/chat/slack/commands", b"", {}, method="GET")[0] == 403
    assert post(server, "/chat/teams/commands", b"", FORM)[0] == 403


# -- display names: the author and the mentions as Slack shows them ---------------------------------


def test_the_author_and_a_mention_are_display_names_when_a_bot_token_can_look_them_up(run: RunDir) -> None:
    people = {"U1": "Maria López", "U7": "Rosa Díaz"}
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, RunContext(run), clock=lambda: now, names=DisplayNames(people.get))
    body = slack_form("ic <@U7>", user="maria.lopez")
    assert slack.handle(body, sign(body, int(now))).body["text"] == "recorded: ic Rosa Díaz by Maria López"
    body = slack_form("note a &lt; b &amp;&amp; <@U7|rosa> paged; &lt;@U1&gt; typed", user="maria.lopez")
    assert slack.handle(body, sign(body, int(now))).status == 200
    assert [(m["event"], m["value"], m["by"]) for m in marks(run)] == [
        ("ic", "Rosa Díaz", "Maria López"),
        ("note", "a < b && @Rosa Díaz paged; <@U1> typed", "Maria López"),
    ]


def test_without_an_answer_in_time_the_request_carries_the_names(run: RunDir) -> None:
    answered = threading.Event()

    def stuck(user_id: str) -> str | None:
        answered.wait(10)  # Slack does not answer within the budget
        return None

    names = DisplayNames(stuck)
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, RunContext(run), clock=lambda: now, names=names)
    try:
        body = slack_form("ic <@U7|rosa>", user="fran")
        assert slack.handle(body, sign(body, int(now))).body["text"] == "recorded: ic rosa by fran"
    finally:
        answered.set()
        names.close()


def test_a_mention_typed_by_hand_is_text_not_a_person(run: RunDir) -> None:
    now = time.time()
    slack = SlackCommands(SECRET, CHANNEL, RunContext(run), clock=lambda: now)
    body = slack_form("ic &lt;@U7|rosa&gt;")
    assert slack.handle(body, sign(body, int(now))).body["text"] == "expected `ic @someone`"
    assert marks(run) == []


def test_slacks_url_check_reaches_the_events_route_as_json_only(run: RunDir) -> None:
    chat = ChatSettings(slack=SlackChat(channel=CHANNEL, signing_secret_env="SLACK_SECRET"))
    found, _ = handlers(chat, RunContext(run), {"SLACK_SECRET": SECRET})
    assert [handler.path for handler in found] == ["/chat/slack/commands", "/chat/slack/events"]
    started = RunServer()
    started.start(run, more_routes=chat_routes(found))
    try:
        body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
        json_type = {"Content-Type": "application/json"}
        assert post(started, "/chat/slack/events", body, {**json_type, **sign(body, int(time.time()))}) == (
            200,
            {"challenge": "c-123"},
        )
        assert post(started, "/chat/slack/events", body, {**json_type, **sign(body, 1531420618)})[0] == 401
        assert post(started, "/chat/slack/events", body, {**FORM, **sign(body, int(time.time()))})[0] == 415
        big = b'{"a": "' + b"x" * (64 * 1024) + b'"}'
        assert (
            post(started, "/chat/slack/events", big, {**json_type, **sign(big, int(time.time()))})[0] == 413
        )
    finally:
        started.close()
