"""The schedule daemon for real: a scheduled run on dockerd end to end, then SIGTERM mid-run.

A cron entry fires every minute; the scenario pauses a real container for a
few seconds. The first run completes (history, Pushgateway metrics, webhook);
during the second, the daemon gets SIGTERM: the container must be unpaused,
the history must say aborted, and the daemon must exit cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IMAGE = "chaosrunner/schedule-e2e:latest"
PUSHGATEWAY = os.environ.get("CHAOSRUNNER_PUSHGATEWAY_URL", "http://127.0.0.1:19091")


@pytest.fixture
def container() -> Iterator[Any]:
    subprocess.run(
        [str(REPO / "scripts" / "build-image.sh"), IMAGE, "--with-python"], check=True, capture_output=True
    )
    client = docker.from_env()
    name = f"sched-{uuid.uuid4().hex[:8]}"
    victim = client.containers.run(
        IMAGE,
        ["python3", "-c", "import time; time.sleep(10**9)"],
        name=name,
        detach=True,
        labels={"org.chaosrunner.test": name},
    )
    yield victim
    victim.remove(force=True)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _last_exit_code_line(schedule: str) -> str | None:
    metrics = urllib.request.urlopen(f"{PUSHGATEWAY}/metrics").read().decode()
    return next(
        (
            row
            for row in metrics.splitlines()
            if row.startswith("chaosrunner_scheduled_run_last_exit_code") and f'schedule="{schedule}"' in row
        ),
        None,
    )


def paused(victim: Any) -> bool:
    victim.reload()
    return bool(victim.attrs["State"]["Paused"])


def history(state: Path, name: str) -> list[dict]:
    path = state / "schedules" / name / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s")


def test_a_scheduled_run_end_to_end_then_sigterm_reverts_and_exits(
    tmp_path: Path, container: Any, webhook: tuple[str, list[dict]]
) -> None:
    hook_url, received = webhook
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    scenario = {
        "metadata": {
            "title": "scheduled pause",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "faults": [
            {
                "name": "pause",
                "kind": "docker.container-pause",
                "selector": {"name": container.name},
                "duration": "8s",
            }
        ],
    }
    (tmp_path / "pause.yaml").write_text(yaml.safe_dump(scenario))
    schedule = {
        "kind": "Schedule",
        "name": name,
        "pushgateway": PUSHGATEWAY,
        "defaults": {"webhooks": [{"url": hook_url, "format": "json"}]},
        "entries": [{"name": "pause-every-minute", "scenario": "pause.yaml", "cron": "* * * * *"}],
    }
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    state = tmp_path / "state"
    env = {
        **os.environ,
        "CHAOSRUNNER_STATE_DIR": str(state),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
    }
    daemon = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "schedule", "run", str(tmp_path / "schedule.yaml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = wait(lambda: [r for r in history(state, name) if r["outcome"] == "run"], timeout=90)[0]
        assert (first["status"], first["exit_code"]) == ("completed", 0), first
        assert not paused(container)
        # The history is written first (it is the record); the push and the webhooks follow.
        line = wait(lambda: _last_exit_code_line(name), timeout=15)
        assert line.endswith(" 0")
        wait(lambda: len(received) >= 2, timeout=15)
        assert [event["event"] for event in received] == ["start", "finish"]
        # The second run: SIGTERM while the container is paused.
        wait(lambda: paused(container), timeout=75)
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, output
        assert not paused(container)
        runs = [r for r in history(state, name) if r["outcome"] == "run"]
        assert runs[-1]["status"] == "aborted" and runs[-1]["exit_code"] == 1
        assert "stopped" in output.splitlines()[-1]
        assert received[-1]["event"] == "finish" and received[-2]["event"] == "abort"
    finally:
        if daemon.poll() is None:
            daemon.kill()
        urllib.request.urlopen(
            urllib.request.Request(
                f"{PUSHGATEWAY}/metrics/job/chaosrunner_schedule/schedule/{name}/entry/pause-every-minute",
                method="DELETE",
            )
        )
