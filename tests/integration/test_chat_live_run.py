"""Every run tells its channel: real runs posting through slack_sdk to a fake Slack on loopback.

- a scripted gameday on the real Prometheus and Alertmanager rig, its session
  posting with a bot token to a fake Slack Web API (``chat.slack.api_url``)
  that answers one 429 with Retry-After and one 500: the channel hears every
  message in order, and the journal holds a ``chat_posted`` line for each;
- ``chaosrunner run --mode automated`` that an operator aborts, posting to a
  Slack and a Mattermost incoming webhook: unscored, and no chat command is
  taken even with a correct signature;
- a chat endpoint that never answers does not hold the revert;
- the schedule daemon's executor (``run_scheduled``) posts like any automated run.

The fake (tests/support/fake_slack.py) is at our own seam; everything else is real.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.journal import read_events
from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.gameday.debrief import debrief
from chaosrunner.gameday.marks import record
from chaosrunner.gameday.session import GamedaySession
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.report.writer import write_run_report
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.schedule.execute import run_scheduled
from chaosrunner.schedule.models import ResolvedEntry
from tests.support.cli import run_chaosrunner
from tests.support.fake_slack import BOT_TOKEN, FakeSlack

CHANNEL = "C0LIVECHAT"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHAOSRUNNER_REPORTS_DIR", str(tmp_path / "reports"))
    ACTIVE_FLAGS.clear()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


def chat_lines(journal: Path) -> list[dict[str, Any]]:
    return [dict(event) for event in read_events(journal) if event.type in ("chat_posted", "chat_closed")]


def heading(text: str) -> str:
    """The message's bold words: ``*Alert firing*`` (Slack) or ``**Aborted**`` (Mattermost)."""
    return text.split("*")[1] if "**" not in text else text.split("**")[1]


def write_scenario(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# -- a gameday on the rig ---------------------------------------------------------------------


def test_a_gameday_on_the_rig_tells_the_channel_everything_in_order(
    tmp_path: Path,
    prometheus_url: str,
    alertmanager_url: str,
    pushgateway: Any,
    prometheus_rules: Any,
    rig: Any,
    unique_name: str,
    fake: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique_name
    probe_alert = f"ProbeFailing_{name}"
    sli = f'max(gameday_sli{{job="{name}"}})'
    pushgateway.push("gameday_sli", 1.0, instance="sli")
    prometheus_rules.add(
        [
            {
                "name": f"{name}-alerts",
                "interval": "1s",
                "rules": [{"alert": probe_alert, "expr": f"{sli} < 0.9", "for": "0s"}],
            }
        ]
    )
    rig.wait_for(lambda: rig.prom_query(prometheus_url, sli), timeout=20, what="the SLI in Prometheus")
    monkeypatch.setenv("LIVE_SLACK_BOT", BOT_TOKEN)
    scenario = load_scenario(
        write_scenario(
            tmp_path / "chat-gameday.yaml",
            {
                "metadata": {
                    "title": f"Checkout pool <{name}>",
                    "owner": "tests",
                    "expected_severity": "P2",
                    "hypothesis": "checkout sheds load",
                },
                "target": {"prometheus": prometheus_url, "alertmanager": alertmanager_url},
                "steady_state": [{"name": "sli", "expr": sli, "comparator": ">=", "threshold": 0.99}],
                "faults": [{"name": "pool", "kind": "inprocess.flag", "params": {"flag": name}}],
                "detection": {"synthetic": [probe_alert]},
                "mitigation": {"sli": sli, "comparator": ">=", "objective": 0.99, "confirm_for": "2s"},
                "gameday": {
                    "mode": "gameday",
                    "max_duration": "2m",
                    "ttd_target": "10s",
                    "ttm_target": "30s",
                },
                "chat": {
                    "slack": {"channel": CHANNEL, "bot_token_env": "LIVE_SLACK_BOT", "api_url": fake.api_url}
                },
            },
        )
    )
    fake.answer_429(retry_after=1)  # the first message is rate-limited, then meets a server error
    fake.answer_500()
    metrics = PrometheusHTTP(prometheus_url)
    injected = threading.Event()
    runner = Runner(
        scenario,
        "chat-gameday.yaml",
        metrics,
        RunOptions(handle_signals=False),
        [lambda event: injected.set() if event["type"] == "fault_injected" else None],
    )
    session = GamedaySession(runner, metrics)
    runner.listeners.append(session)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
    try:
        thread.start()
        assert injected.wait(30), "the fault was never injected"
        assert runner.run_dir is not None
        pushgateway.push("gameday_sli", 0.5, instance="sli")  # users feel it; the probe alert fires
        rig.wait_for(
            lambda: any(p.text and "Alert firing" in p.text for p in fake.posted()),
            timeout=30,
            what="the alert in the channel",
        )
        record(runner.run_dir, "severity", "P2", by="alice")
        pushgateway.push("gameday_sli", 1.0, instance="sli")  # the mitigation works
        rig.wait_for(
            lambda: any(float(row["value"][1]) >= 0.99 for row in rig.prom_query(prometheus_url, sli)),
            timeout=20,
            what="the SLI back in Prometheus",
        )
        time.sleep(2.5)  # the SLI's confirmation window (2s): TTM is measured from the data
        record(runner.run_dir, "mitigated", by="alice")
        thread.join(90)
        result = outcome["result"]
        assert result.status is RunStatus.COMPLETED and not ACTIVE_FLAGS
        session.end_of_run()
        report = debrief(result.run_id, metrics)
        written = write_run_report(report, metrics=metrics)
        session.report_written(written.files["html"], report)
    finally:
        session.close()

    posted = [request.text for request in fake.posted()]
    assert [heading(text) for text in posted] == [
        "Gameday started",
        "Alert firing",
        "Mitigated",
        "Run finished",
        "Debrief",
    ]
    started = posted[0]
    assert f"Checkout pool &lt;{name}&gt;" in started and "Hypothesis: checkout sheds load" in started
    assert "Faults: pool (inprocess.flag)" in started
    observer = session.server.tokens.observer.value
    facilitator, team = session.server.tokens.facilitator.value, session.server.tokens.team.value
    assert f"#token={observer}|Watch it live (read-only)>" in started  # the observer's link, only
    assert all(facilitator not in text and team not in text for text in posted)
    assert f"(synthetic): {probe_alert}" in posted[1]
    assert "Mitigated" in posted[2] and "The faults are being reverted" in posted[2]
    assert "completed" in posted[3]
    assert report.measurement.ttd is not None and report.measurement.ttm is not None
    assert "TTD " in posted[4] and "(target 10s)" in posted[4] and "(target 30s)" in posted[4]
    assert f"score {report.score.total:g} (grade {report.score.grade})" in posted[4]
    assert str(written.files["html"]) in posted[4]
    # what the fake answered: 429, 500, then the same run-started message went through
    assert [request.answered for request in fake.received[:3]] == [429, 500, 200]
    assert fake.received[0].text == fake.received[2].text
    assert all(request.headers.get("Authorization") == f"Bearer {BOT_TOKEN}" for request in fake.received)

    journal = result.journal_path
    lines = chat_lines(journal)
    assert [(e["type"], e.get("kind"), e.get("ok"), e.get("attempts")) for e in lines] == [
        ("chat_posted", "run_started", True, 3),
        ("chat_posted", "alert_firing", True, 1),
        ("chat_posted", "mitigated", True, 1),
        ("chat_posted", "finished", True, 1),
        ("chat_posted", "report", True, 1),
        ("chat_closed", None, None, None),
    ]
    assert lines[-1]["given_up"] == 0 and lines[-1]["dropped"] == 0
    types = [event.type for event in read_events(journal)]
    assert types.index("run_finished") < types.index("chat_posted", types.index("run_finished"))
    assert BOT_TOKEN not in journal.read_text() and "Hypothesis" not in journal.read_text()


# -- an automated run from the command line ---------------------------------------------------


def slack_signed(secret: str, body: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def wait_for_event(state: Path, kind: str, timeout: float) -> tuple[Path, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for journal in (state / "runs").glob("*/journal.jsonl"):
            for event in read_events(journal):
                if event.type == kind:
                    return journal.parent, dict(event)
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event within {timeout}s")


def test_an_automated_run_that_aborts_tells_slack_and_mattermost_unscored(
    tmp_path: Path, fake: FakeSlack
) -> None:
    secret = "live-signing-secret-0000"
    scenario = write_scenario(
        tmp_path / "auto.yaml",
        {
            "metadata": {
                "title": "nightly pool check",
                "owner": "tests",
                "expected_severity": "P3",
                "hypothesis": "h",
            },
            "target": {},
            "faults": [
                {"name": "flag", "kind": "inprocess.flag", "params": {"flag": "auto-chat"}, "duration": "2m"}
            ],
            "gameday": {"mode": "automated", "max_duration": "3m"},
            "chat": {
                "slack": {
                    "channel": CHANNEL,
                    "webhook_url_env": "LIVE_SLACK_HOOK",
                    "signing_secret_env": "LIVE_SIGN",
                },
                "mattermost": {"channel": "gameday", "webhook_url_env": "LIVE_MM_HOOK"},
            },
        },
    )
    state = tmp_path / "state"
    env = {
        **os.environ,
        "LIVE_SLACK_HOOK": fake.webhook_url("slack"),
        "LIVE_MM_HOOK": fake.webhook_url("mattermost"),
        "LIVE_SIGN": secret,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", str(scenario), "--plain"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_dir, endpoint = wait_for_event(state, "responder_endpoint", timeout=60)
        wait_for_event(state, "fault_injected", timeout=60)
        # A correctly signed /gameday command: an automated run takes no marks from the channel.
        body = f"token=x&channel_id={CHANNEL}&user_name=mallory&command=%2Fgameday&text=mitigated"
        request = urllib.request.Request(
            endpoint["url"].removesuffix("/events") + "/chat/slack/commands",
            data=body.encode(),
            headers=slack_signed(secret, body),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code in (401, 403, 404)
        aborted = run_chaosrunner("abort", run_dir.name, "--reason", "pager went off for real", env=env)
        assert aborted.returncode == 0, aborted.stderr
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "LIVE_SIGN" not in stderr

    for platform in ("slack", "mattermost"):
        texts = [r.text for r in fake.posted() if r.path.startswith(f"/hooks/{platform}/")]
        assert [heading(text) for text in texts] == [
            "Automated chaos run started",
            "Aborted",
            "Run finished",
            "Automated chaos run report",
        ], platform
        assert "pager went off for real" in texts[1] and "operator" in texts[1]
        assert "aborted" in texts[2]
        reports = list((tmp_path / "reports").glob("*/report.html"))
        assert len(reports) == 1 and reports[0].name in texts[3]
        assert not any(word in "\n".join(texts) for word in ("TTD", "TTM", "score", "Gameday"))
    journal = run_dir / "journal.jsonl"
    assert not any(event.type == "responder" for event in read_events(journal))  # mallory marked nothing
    lines = chat_lines(journal)
    posted = sorted((e["chat"], e["kind"]) for e in lines if e["type"] == "chat_posted" and e["ok"])
    kinds = ["abort", "finished", "report", "run_started"]
    assert posted == sorted([("mattermost", kind) for kind in kinds] + [("slack", kind) for kind in kinds])
    assert lines[-1]["type"] == "chat_closed" and lines[-1]["given_up"] == 0
    assert "hooks/" not in journal.read_text()  # a webhook's URL is its credential


# -- a chat endpoint that never answers --------------------------------------------------------


def test_a_chat_endpoint_that_never_answers_does_not_hold_the_revert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hung = socket.socket()  # accepts connections (the backlog) and never answers: a hung proxy
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    monkeypatch.setenv("LIVE_HUNG_HOOK", f"http://127.0.0.1:{hung.getsockname()[1]}/hooks/hung")
    scenario = load_scenario(
        write_scenario(
            tmp_path / "hung.yaml",
            {
                "metadata": {
                    "title": "hung chat",
                    "owner": "tests",
                    "expected_severity": "P3",
                    "hypothesis": "h",
                },
                "target": {},
                "faults": [
                    {"name": "flag", "kind": "inprocess.flag", "params": {"flag": "hung"}, "duration": "1s"}
                ],
                "gameday": {"mode": "automated", "max_duration": "1m"},
                "chat": {"mattermost": {"channel": "gameday", "webhook_url_env": "LIVE_HUNG_HOOK"}},
            },
        )
    )
    runner = Runner(scenario, "hung.yaml", None, RunOptions(handle_signals=False))
    session = GamedaySession(runner, None)
    runner.listeners.append(session)
    try:
        result = runner.run()
        # The faults are reverted and the run has finished while not one message has been answered:
        # the revert did not wait for the channel.
        events = list(read_events(result.journal_path))
        assert result.status is RunStatus.COMPLETED and not ACTIVE_FLAGS
        assert [e.type for e in events].count("fault_reverted") == 1 and events[-1].type == "run_finished"
        assert session.chat is not None and session.chat.notifier.unsent >= 1
    finally:
        session.close()  # bounded: gives up what the hung endpoint holds
        hung.close()
    lines = chat_lines(result.journal_path)
    assert all(not e["ok"] for e in lines if e["type"] == "chat_posted")
    assert lines[-1]["type"] == "chat_closed" and lines[-1]["given_up"] >= 2  # started, finished


# -- a scheduled run ------------------------------------------------------------------------------


def test_a_scheduled_run_tells_its_channel(
    tmp_path: Path, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_SLACK_BOT", BOT_TOKEN)
    path = write_scenario(
        tmp_path / "scheduled.yaml",
        {
            "metadata": {
                "title": "scheduled pool",
                "owner": "tests",
                "expected_severity": "P3",
                "hypothesis": "h",
            },
            "target": {},
            "faults": [
                {"name": "flag", "kind": "inprocess.flag", "params": {"flag": "sched"}, "duration": "1s"}
            ],
            "gameday": {"mode": "gameday", "max_duration": "1m"},  # the daemon runs it automated anyway
            "chat": {
                "slack": {"channel": CHANNEL, "bot_token_env": "LIVE_SLACK_BOT", "api_url": fake.api_url}
            },
        },
    )
    entry = ResolvedEntry(
        name="pool-nightly",
        scenario=str(path),
        cron="0 3 * * *",
        lock="pool",
        timezone="UTC",
        windows=[],
        blackout_dates=[],
        jitter=0,
        max_runs_per_day=None,
        webhooks=[],
    )
    outcome = run_scheduled(entry, load_scenario(path), path)
    assert outcome.status == "completed" and outcome.run_id is not None and not ACTIVE_FLAGS

    texts = [request.text for request in fake.posted()]
    assert [heading(text) for text in texts] == [
        "Automated chaos run started",
        "Run finished",
        "Automated chaos run report",
    ]
    assert "scheduled pool" in texts[0] and "completed" in texts[1]
    assert outcome.report is not None and Path(outcome.report).parent.name in texts[2]
    journal = tmp_path / "state" / "runs" / outcome.run_id / "journal.jsonl"
    lines = chat_lines(journal)
    assert [(e["type"], e.get("kind"), e.get("ok")) for e in lines] == [
        ("chat_posted", "run_started", True),
        ("chat_posted", "finished", True),
        ("chat_posted", "report", True),
        ("chat_closed", None, None),
    ]
    assert json.dumps(lines).count(BOT_TOKEN) == 0
