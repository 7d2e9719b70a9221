"""A finished gameday run and the team's channel during it, as Slack and Mattermost export it.

The story (seconds from the run's start, 14:00:00 UTC): the fault is in
effect at +10, monitoring pages at +40, alice marks mitigated live at +400,
the run finishes at +420. Nobody used ``chaosrunner mark`` for severity,
IC or status updates: they said it in #incident-checkout -

  -3600   alice   "sev P3"                       before the run (outside the window)
  +5      (join)  bob joined                     a system message
  +50     bob     "we're seeing errors"          chatter: no mark
  +60     bob     "this is a P1 ..."             edited (it said P2 at first)
  +70     alice   "I'm IC"                       starts a thread
  +100    alice   a full status update           a reply in that thread
  +200    (bot)   "sev P3"                       a bot: never a mark
  +330    U999    "Status update: ..."           a user the export does not list
  +900    bob     "sev P2"                       after the run (outside the window)

The exports are written by the test into tmp_path, in each platform's own
shape; nothing large is committed.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import FILE_NAME, format_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.scenario.loader import scenario_from_data

START = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)
CHANNEL = "incident-checkout"
SEVERITY_TEXT = "this is a P1, payments are failing for everyone"
FIRST_UPDATE = (
    "checkout failing for 40% of users; hypothesis: db pool exhausted; "
    "@bob is checking the db; next update in 5m"
)
SECOND_UPDATE = (
    "Status update: checkout errors down to 5% of users; hypothesis: pool exhausted; "
    "@bob is restarting the pool; next update in 5m"
)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


SCENARIO: dict[str, Any] = {
    "metadata": {
        "title": "Checkout pool exhausted",
        "owner": "payments-sre",
        "expected_severity": "P1",
        "hypothesis": "Checkout sheds load and recovers once the pool is freed.",
    },
    "faults": [{"name": "pool", "kind": "inprocess.flag", "params": {"flag": "chat"}}],
    "detection": {"synthetic": ["CheckoutProbeFailing"]},
    "gameday": {"mode": "gameday", "ttd_target": "2m", "ttm_target": "10m", "status_update_every": "5m"},
}


def finished_run(tmp_path: Path) -> RunDir:
    """The run's folder in a state folder of its own (set CHAOSRUNNER_STATE_DIR to tmp_path/state first)."""
    run = RunDir.create("20261127-140000-c4a7e1")
    scenario = scenario_from_data(SCENARIO, source="chat test")
    lines = []

    def event(seconds: float, event_type: str, **fields: Any) -> None:
        lines.append(
            json.dumps({"type": event_type, "time": format_time(at(seconds)), "offset": seconds, **fields})
        )

    event(
        0,
        "run_started",
        run_id=run.run_id,
        version=1,
        scenario_title=scenario.metadata.title,
        scenario_file="scenarios/checkout-pool.yaml",
        scenario=scenario.model_dump(mode="json", by_alias=True),
        mode="gameday",
        pid=4242,
        pid_start_ticks=1,
        host="gameday-laptop",
        monotonic_start=0.0,
    )
    event(10, "fault_injected", fault="pool", kind="inprocess.flag", revert_record={"flag": "chat"})
    event(
        41,
        "alert",
        source="alertmanager",
        name="CheckoutProbeFailing",
        state="firing",
        since=format_time(at(40)),
        layer="synthetic",
    )
    event(400.2, "responder", event="mitigated", at=format_time(at(400)), by="alice", value="")
    event(410, "faults_ending", reason="alice marked mitigated")
    event(411, "fault_reverted", fault="pool", kind="inprocess.flag", attempts=1, by="runner")
    event(420, "run_finished", status="completed", exit_code=0, detail="steady state returned")
    (run.path / FILE_NAME).write_text("\n".join(lines) + "\n")
    return run


# -- Slack: users.json, channels.json, CHANNEL/YYYY-MM-DD.json -------------------------------------


def _ts(seconds: float) -> str:
    return f"{at(seconds).timestamp():.6f}"


SLACK_USERS = [
    {"id": "U1", "name": "alice", "real_name": "Alice", "profile": {"display_name": "alice"}},
    {"id": "U2", "name": "bob", "profile": {"display_name": "", "real_name": "bob"}},
]


def slack_messages() -> list[dict[str, Any]]:
    thread = _ts(70)
    return [
        {"type": "message", "user": "U1", "text": "sev P3", "ts": _ts(-3600)},
        {"type": "message", "subtype": "channel_join", "user": "U2", "text": "<@U2> joined", "ts": _ts(5)},
        {"type": "message", "user": "U2", "text": "we're seeing errors", "ts": _ts(50)},
        {
            "type": "message",
            "user": "U2",
            "text": SEVERITY_TEXT,
            "ts": _ts(60),
            "edited": {"user": "U2", "ts": _ts(65)},
        },
        {
            "type": "message",
            "user": "U1",
            "text": "I'm IC",
            "ts": thread,
            "thread_ts": thread,
            "reply_count": 1,
        },
        {
            "type": "message",
            "user": "U1",
            "text": FIRST_UPDATE.replace("@bob", "<@U2>"),
            "ts": _ts(100),
            "thread_ts": thread,
            "parent_user_id": "U1",
        },
        {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "sev P3", "ts": _ts(200)},
        {"type": "message", "user": "U999", "text": SECOND_UPDATE.replace("@bob", "<@U2>"), "ts": _ts(330)},
        {"type": "message", "user": "U2", "text": "sev P2", "ts": _ts(900)},
    ]


def write_slack_export(folder: Path, *, zipped: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / "users.json").write_text(json.dumps(SLACK_USERS))
    (folder / "channels.json").write_text(
        json.dumps([{"id": "C1", "name": CHANNEL}, {"id": "C2", "name": "random"}])
    )
    days: dict[str, list[dict[str, Any]]] = {}
    for message in slack_messages():
        day = datetime.fromtimestamp(float(message["ts"]), UTC).date().isoformat()
        days.setdefault(day, []).append(message)
    days.setdefault("2026-11-26", []).append(
        {"type": "message", "user": "U1", "text": "sev P3", "ts": "1764165600"}
    )
    (folder / CHANNEL).mkdir()
    for day, messages in days.items():
        (folder / CHANNEL / f"{day}.json").write_text(json.dumps(messages, indent=1))
    if not zipped:
        return folder
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(folder).as_posix())
    return archive


# -- Mattermost: a bulk export's JSONL ---------------------------------------------------------------


def _ms(seconds: float) -> int:
    return int(at(seconds).timestamp() * 1000)


def mattermost_lines() -> list[dict[str, Any]]:
    def post(seconds: float, user: str, message: str, **more: Any) -> dict[str, Any]:
        return {
            "type": "post",
            "post": {
                "team": "payments",
                "channel": CHANNEL,
                "user": user,
                "message": message,
                "create_at": _ms(seconds),
                **more,
            },
        }

    return [
        {"type": "version", "version": 1},
        {"type": "team", "team": {"name": "payments", "display_name": "Payments"}},
        {
            "type": "channel",
            "channel": {"team": "payments", "name": CHANNEL, "display_name": "Incident: checkout"},
        },
        {
            "type": "channel",
            "channel": {"team": "payments", "name": "town-square", "display_name": "Town Square"},
        },
        {"type": "user", "user": {"username": "alice", "email": "alice@example.com"}},
        {"type": "user", "user": {"username": "bob", "email": "bob@example.com"}},
        post(-3600, "alice", "sev P3"),
        post(5, "bob", "bob joined the channel.", type="system_join_channel"),
        post(50, "bob", "we're seeing errors"),
        post(60, "bob", SEVERITY_TEXT, edit_at=_ms(65)),
        post(
            70,
            "alice",
            "I'm IC",
            replies=[{"user": "alice", "message": FIRST_UPDATE, "create_at": _ms(100)}],
        ),
        post(200, "alice", "sev P3", props={"from_bot": "true"}),
        post(330, "ghost", SECOND_UPDATE),
        post(900, "bob", "sev P2"),
        {
            "type": "post",
            "post": {
                "team": "payments",
                "channel": "town-square",
                "user": "bob",
                "message": "sev P3",
                "create_at": _ms(120),
            },
        },
    ]


def write_mattermost_export(path: Path) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in mattermost_lines()))
    return path
