"""``serve --chat``: one endpoint for every live gameday, the request's channel picks the run.

Runs are real run folders whose lock this process holds (``RunDir.is_live``);
their chat settings come from their ``run_started`` as a runner journals
them. The integration test (tests/integration/test_serve_chat.py) does the
same with two real ``chaosrunner run`` processes and ``chaosrunner serve --chat``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.chat.routing import NO_GAMEDAY_HERE, ChatRouter, LiveGamedays

pytestmark = pytest.mark.unit

SECRET = "one-slack-app-signing-secret"
ENVIRON = {"SLACK_SECRET": SECRET, "OTHER_SECRET": "another-app-secret", "MM_TOKEN": "mm-token"}


def start_run(chat: dict[str, Any], mode: str = "gameday", live: bool = True) -> RunDir:
    folder = RunDir.create()
    if live:
        folder.hold_lock()
    journal = Journal(folder.journal_path)
    journal.append(
        "run_started",
        run_id=folder.run_id,
        mode=mode,
        scenario={"chat": chat},
        monotonic_start=journal.monotonic_start,
    )
    return folder


def slack(channel: str, env: str = "SLACK_SECRET") -> dict[str, Any]:
    return {"slack": {"channel": channel, "signing_secret_env": env}}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def runs(state: Path) -> Iterator[list[RunDir]]:
    made = [
        start_run(slack("C0FIRST")),
        start_run(
            {**slack("C0SECOND"), "mattermost": {"channel": "gameday-2", "command_token_env": "MM_TOKEN"}}
        ),
        start_run(slack("C0OTHERAPP", env="OTHER_SECRET")),
        start_run(slack("C0DONE"), live=False),  # its runner is gone
        start_run(slack("C0AUTO"), mode="automated"),  # takes no marks from chat
    ]
    yield made
    for run in made:
        run.release_lock()


@pytest.fixture
def router(runs: list[RunDir]) -> Iterator[dict[str, Any]]:
    made = ChatRouter(LiveGamedays(ENVIRON, runs=lambda: list(runs)))
    yield {handler.path: handler for handler in made.handlers()}
    made.close()


def marks(run: RunDir) -> list[tuple[str, str, str]]:
    return [(e["event"], e["value"], e["by"]) for e in run.events() if e.type == "responder"]


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}


def command(channel: str, text: str, user: str = "maria") -> bytes:
    return urlencode({"text": text, "user_id": "U1", "user_name": user, "channel_id": channel}).encode()


def test_the_channel_picks_the_run(router: dict[str, Any], runs: list[RunDir]) -> None:
    commands = router["/chat/slack/commands"]
    first, second = command("C0FIRST", "sev P2"), command("C0SECOND", "ic <@U7|rosa>", user="fran")
    assert commands.handle(first, sign(first)).body["text"] == "recorded: sev P2 by maria"
    assert commands.handle(second, sign(second)).body["text"] == "recorded: ic rosa by fran"
    other = command("C0OTHERAPP", "mitigated")
    assert (
        commands.handle(other, sign(other, "another-app-secret")).body["text"]
        == "recorded: mitigated by maria"
    )
    assert [marks(run) for run in runs] == [
        [("severity", "P2", "maria")],
        [("ic", "rosa", "fran")],
        [("mitigated", "", "maria")],
        [],
        [],
    ]


def test_a_channel_without_a_live_gameday_is_told_so_and_nothing_is_journaled(
    router: dict[str, Any], runs: list[RunDir]
) -> None:
    commands = router["/chat/slack/commands"]
    for channel in ("C0NOWHERE", "C0DONE", "C0AUTO", "C0OTHERAPP"):  # C0OTHERAPP: not this app's secret
        body = command(channel, "sev P1")
        reply = commands.handle(body, sign(body))
        assert (reply.status, reply.body["text"]) == (200, NO_GAMEDAY_HERE), channel
    assert all(marks(run) == [] for run in runs)


def test_no_live_runs_secret_verifies_it_so_it_is_refused(router: dict[str, Any], runs: list[RunDir]) -> None:
    commands = router["/chat/slack/commands"]
    body = command("C0FIRST", "sev P1")
    assert commands.handle(body, sign(body, "a guess")).status == 401
    assert commands.handle(body, sign(body, at=int(time.time()) - 301)).status == 401
    assert commands.handle(body, {}).status == 401
    headers = sign(body)
    assert commands.handle(body, headers).status == 200
    assert commands.handle(body, headers).status == 401  # a replay
    assert marks(runs[0]) == [("severity", "P1", "maria")]


def test_reactions_are_routed_by_the_messages_channel(router: dict[str, Any], runs: list[RunDir]) -> None:
    events = router["/chat/slack/events"]
    check = json.dumps({"type": "url_verification", "challenge": "abc"}).encode()
    assert events.handle(check, sign(check)).body == {"challenge": "abc"}
    item = {"type": "message", "channel": "C0SECOND", "ts": "1767225600.000100"}
    event = {
        "type": "reaction_added",
        "user": "U3",
        "reaction": "stopwatch",
        "item": item,
        "event_ts": f"{time.time():.6f}",
    }
    body = json.dumps({"type": "event_callback", "event": event}).encode()
    assert events.handle(body, sign(body)).status == 200
    elsewhere = json.dumps(
        {"type": "event_callback", "event": {**event, "item": {**item, "channel": "C0X"}}}
    ).encode()
    assert events.handle(elsewhere, sign(elsewhere)).body == {"ok": "ignored"}
    deadline = time.monotonic() + 10
    while not marks(runs[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [mark[0] for mark in marks(runs[1])] == ["note"]  # no bot token here: the text is unreadable
    assert marks(runs[0]) == []


def test_mattermost_is_routed_by_its_token_and_channel(router: dict[str, Any], runs: list[RunDir]) -> None:
    commands = router["/chat/mattermost/commands"]

    def form(token: str, channel: str) -> bytes:
        return urlencode(
            {"token": token, "channel_name": channel, "user_name": "dev", "text": "escalated"}
        ).encode()

    assert commands.handle(form("guess", "gameday-2"), {}).status == 401
    assert commands.handle(form("mm-token", "town-square"), {}).body["text"] == NO_GAMEDAY_HERE
    assert commands.handle(form("mm-token", "gameday-2"), {}).body["text"] == "recorded: escalated by dev"
    assert marks(runs[1]) == [("escalated", "", "dev")]


def test_a_run_that_ends_is_no_longer_routed_to_and_its_channel_is_told_so(
    router: dict[str, Any], runs: list[RunDir]
) -> None:
    commands = router["/chat/slack/commands"]
    for run in runs:
        run.release_lock()  # every gameday has ended: the secret is still this team's app's
    body = command("C0FIRST", "sev P1")
    assert commands.handle(body, sign(body)).body["text"] == NO_GAMEDAY_HERE
    assert commands.handle(body, sign(body, "a guess")).status == 401
    assert marks(runs[0]) == []


def test_with_no_gameday_in_the_state_folder_everything_is_refused(state: Path) -> None:
    router = ChatRouter(LiveGamedays(ENVIRON, runs=lambda: []))
    try:
        for handler in router.handlers():
            assert (
                handler.handle(b"text=sev+P1&token=mm-token", sign(b"text=sev+P1&token=mm-token")).status
                == 401
            )
    finally:
        router.close()


def test_a_run_caught_before_its_first_event_is_looked_at_again(state: Path) -> None:
    folder = RunDir.create()
    folder.hold_lock()
    folder.journal_path.touch()  # the runner made the folder and has not journaled run_started yet
    live = LiveGamedays(ENVIRON, runs=lambda: [folder])
    try:
        assert live.handlers() == [] and live.slack_secrets() == set()
        journal = Journal(folder.journal_path)
        journal.append(
            "run_started",
            run_id=folder.run_id,
            mode="gameday",
            scenario={"chat": slack("C0LATE")},
            monotonic_start=0,
        )
        assert live.slack_secrets() == {SECRET}
        assert [handler.path for handler in live.handlers()] == ["/chat/slack/commands", "/chat/slack/events"]
    finally:
        live.close()
        folder.release_lock()
