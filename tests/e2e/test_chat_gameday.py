"""A whole gameday run from the channel: signed /gameday commands from three chat users.

The demo sandbox (real PostgreSQL, Prometheus, Alertmanager, a checkout
service under traffic) is brought up with ``chaosrunner demo --up``; the
demo scenario, copied with a ``chat.slack`` section, runs with
``chaosrunner run --plain`` and is let go with ``chaosrunner go``. From then
on everything the team does comes in as Slack slash commands, signed with
the signing secret exactly as Slack signs them, from the facilitator (fran),
the incident commander (rosa) and an engineer (dev): detected, sev, ic,
status updates in the four-part format, note, change (the test ends the
hogging connections in PostgreSQL, as dev would with psql), status alone,
mitigated, cause. The journal must hold each mark with its author and
``source: slack``, and ``chaosrunner score`` the TTD, TTM and every finding
that response earns.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml

from tests.e2e.test_console_gameday import (
    PROMETHEUS,
    REPO,
    WELL_RUN_VERDICTS,
    Process,
    end_hogging_connections,
    journal,
    success_rate,
    wait_until,
)

pytestmark = pytest.mark.e2e

SECRET = "e2e-signing-secret-not-a-real-one"
CHANNEL = "C0GAMEDAY1"
USERS = {"fran": "U0FRAN", "rosa": "U0ROSA", "dev": "U0DEV"}


def slash(base: str, user: str, text: str, channel: str = CHANNEL) -> dict[str, Any]:
    """One /gameday command, as Slack's servers send it (through the proxy: no run token)."""
    body = urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T0TEAM",
            "channel_id": channel,
            "channel_name": "gameday",
            "user_id": USERS[user],
            "user_name": user,
            "command": "/gameday",
            "text": text,
            "response_url": "https://hooks.example.invalid/commands/1",
        }
    ).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    where = urlsplit(base)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/chat/slack/commands",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": f"v0={digest}",
            },
        )
        answer = connection.getresponse()
        reply = json.loads(answer.read())
    finally:
        connection.close()
    assert answer.status == 200, reply
    assert reply["response_type"] == "ephemeral", reply
    return reply


def recorded(base: str, user: str, text: str) -> str:
    reply = slash(base, user, text)
    assert reply["text"].startswith("recorded: ") and reply["text"].endswith(f" by {user}"), reply
    return str(reply["text"])


def alert_firing() -> bool:
    import urllib.request

    query = urlencode({"query": 'ALERTS{alertstate="firing",alertname=~"DemoCheckout.*"}'})
    with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?{query}", timeout=5) as answer:
        return bool(json.loads(answer.read())["data"]["result"])


def status_update(affected: str, hypothesis: str, owner: str) -> str:
    next_at = time.strftime("%H:%M", time.gmtime(time.time() + 60))
    return f"status {affected}; hypothesis: {hypothesis}; {owner}; next update {next_at}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    from chaosrunner.demo.sandbox import Sandbox

    clean = {key: value for key, value in os.environ.items() if key != "CHAOSRUNNER_TOKEN"}
    return {
        **clean,
        **Sandbox().fault_env(),
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
        "PYTHONPATH": str(REPO),
        "GAMEDAY_SLACK_SIGNING_SECRET": SECRET,
    }


def chaosrunner(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosrunner", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_whole_gameday_is_run_from_slack(env: dict[str, str], tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "chaosrunner" / "demo" / "checkout-pool-exhausted.yaml").read_text())
    document["chat"] = {"slack": {"channel": CHANNEL, "signing_secret_env": "GAMEDAY_SLACK_SIGNING_SECRET"}}
    scenario = tmp_path / "checkout-from-slack.yaml"
    scenario.write_text(yaml.safe_dump(document))
    state = Path(env["CHAOSRUNNER_STATE_DIR"])
    dsn = env["CHAOSRUNNER_DEMO_DSN"]

    up = chaosrunner(env, "demo", "--up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    run = Process(["run", "--plain", str(scenario)], env)
    try:
        base = run.wait_for_line(r"facilitator console: (http://[^/\s]+)/#token=", 180).group(1)
        run_id = wait_until(lambda: (events := journal(state)) and events[0]["run_id"], "the run's id", 60)
        # Another channel is told where the gameday is; nothing is journaled for it.
        elsewhere = slash(base, "dev", "detected", channel="C0RANDOM")
        assert elsewhere["text"] == f"this gameday is bound to {CHANNEL}; this channel is not"
        wait_until(lambda: any(e.get("phase") == "awaiting_go" for e in journal(state)), "awaiting go", 90)
        went = chaosrunner(env, "go", run_id, "--by", "fran", timeout=60)
        assert went.returncode == 0, went.stdout + went.stderr

        # The alert fires; the IC notices it, takes charge and sets the severity.
        wait_until(alert_firing, "a checkout alert firing", 90)
        recorded(base, "rosa", "detected via infrastructure")
        assert recorded(base, "rosa", "sev p1") == "recorded: sev P1 by rosa"
        assert recorded(base, "fran", "ic <@U0ROSA|rosa>") == "recorded: ic rosa by fran"
        recorded(
            base,
            "rosa",
            status_update(
                "checkout failing for most customers",
                "the checkout role's database connections are exhausted",
                "@dev is checking pg_stat_activity",
            ),
        )
        recorded(base, "dev", "note idle connections from another client hold the checkout role's slots")
        assert end_hogging_connections(dsn) > 0
        recorded(base, "dev", "change terminated the idle connections hogging demo_checkout")
        recorded(
            base,
            "rosa",
            status_update(
                "checkout errors falling for customers",
                "the cause is a client leaking connections as the checkout role",
                "@dev is watching the success rate",
            ),
        )
        state_reply = slash(base, "fran", "status")["text"]
        assert state_reply.startswith(f"run {run_id}: ") and "change by dev" in state_reply, state_reply

        wait_until(lambda: (rate := success_rate()) is not None and rate >= 0.99, "checkout to recover", 60)
        time.sleep(3)  # a few good samples, as a careful IC would wait for
        recorded(base, "rosa", "mitigated")
        recorded(base, "dev", "cause a client outside checkout kept the role's connections idle")
        assert run.finish(timeout=180) == 0, run.output[-4000:]
    finally:
        run.kill()
        chaosrunner(env, "demo", "--down", timeout=60)

    events = journal(state)
    marks = [(e["event"], e["by"], e.get("source")) for e in events if e["type"] == "responder"]
    assert marks == [
        ("detected", "rosa", "slack"),
        ("severity", "rosa", "slack"),
        ("ic", "fran", "slack"),
        ("status", "rosa", "slack"),
        ("note", "dev", "slack"),
        ("change", "dev", "slack"),
        ("status", "rosa", "slack"),
        ("mitigated", "rosa", "slack"),
        ("cause", "dev", "slack"),
    ], marks
    assert SECRET not in (state / "runs" / run_id / "journal.jsonl").read_text()

    scored = chaosrunner(env, "score", run_id, "--json", timeout=120)
    assert scored.returncode == 0, scored.stderr
    score = json.loads(scored.stdout)
    timings = score["timings"]
    assert timings["detected_by"] in ("synthetic", "real_user", "infrastructure"), timings
    assert 0 < timings["ttd_seconds"] <= 30, timings
    assert timings["ttd_seconds"] < timings["ttm_seconds"] <= 60, timings
    verdicts = {finding["criterion"]: finding["verdict"] for finding in score["findings"]}
    assert verdicts == WELL_RUN_VERDICTS, score["findings"]
