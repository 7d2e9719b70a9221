"""The console's server in a real gameday run: the links it prints, the stream, the abort button's path.

`chaosrunner run` of a gameday scenario (the `inprocess.flag` fault) on the
real Prometheus, in its own process, as a facilitator starts it. The test
reads the three links from stderr, opens the event stream with the observer
link, marks from another process with `chaosrunner mark` (it must reach the
stream within a second), and aborts through `POST /api/abort` with the team
link - the same request as `chaosrunner abort RUN_ID`: the run reverts and
exits 1 with cause `operator`, and the stream carries the report and `bye`.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
import yaml

from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from tests.support.cli import run_chaosrunner
from tests.support.sse_client import EventStream, request

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(
    r"^(facilitator console|team link|observer link)[^:]*: http://127\.0\.0\.1:(\d+)/#token=(\S+)$"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if key != "CHAOSRUNNER_TOKEN"}
    return {
        **clean,
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
        "PYTHONPATH": str(REPO),
    }


def scenario(tmp_path: Path, prometheus_url: str) -> Path:
    path = tmp_path / "console-gameday.yaml"
    document = {
        "metadata": {
            "title": "Console gameday",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "target": {"prometheus": prometheus_url},
        "steady_state": [{"name": "up", "expr": "vector(1)", "comparator": ">=", "threshold": 1}],
        "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "console-run"}}],
        "gameday": {"mode": "gameday", "max_duration": "120s", "check_interval": "200ms"},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def lines_of(stream: IO[str], into: queue.Queue[str], kept: list[str]) -> None:
    for line in stream:
        kept.append(line)
        into.put(line.rstrip("\n"))


def test_a_real_gameday_serves_the_console_and_aborts_from_it(
    tmp_path: Path, env: dict[str, str], prometheus_url: str
) -> None:
    ACTIVE_FLAGS.clear()
    state = Path(env["CHAOSRUNNER_STATE_DIR"])
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", str(scenario(tmp_path, prometheus_url))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    stdout: list[str] = []
    stderr: list[str] = []
    readers = [
        threading.Thread(target=lines_of, args=(runner.stdout, queue.Queue(), stdout), daemon=True),
        threading.Thread(target=lines_of, args=(runner.stderr, out, stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    stream = None
    try:
        links: dict[str, tuple[int, str]] = {}
        deadline = time.monotonic() + 60
        while len(links) < 3:
            found = LINK.match(out.get(timeout=max(0.1, deadline - time.monotonic())))
            if found:
                links[found.group(1)] = (int(found.group(2)), found.group(3))
        port, observer = links["observer link"]
        team = links["team link"][1]
        facilitator = links["facilitator console"][1]
        assert len({observer, team, facilitator}) == 3
        [run_folder] = list((state / "runs").iterdir())
        run_id = run_folder.name
        assert (run_folder / "team-token").read_text().strip() == team

        # Without a token: no run data.
        assert request(port, "GET", "/api/run").status == 401
        # The observer watches: the stream replays the run so far, then goes live.
        stream = EventStream(port, observer).open()
        assert stream.status == 200
        stream.until(lambda m: m.event == "series")
        if not any(m.event == "journal" and m.data["type"] == "fault_injected" for m in stream.received):
            stream.until(lambda m: m.event == "journal" and m.data["type"] == "fault_injected", timeout=60)
        # ... but cannot post.
        refused = request(port, "POST", "/api/abort", token=observer, body={"by": "olive"})
        assert refused.status == 403

        # A mark from the CLI, in another process, reaches the page within a second.
        marked = run_chaosrunner("mark", run_id, "severity", "P3", "--by", "alice", env=env)
        assert marked.returncode == 0, marked.stderr
        written = time.monotonic()
        shown = stream.until(lambda m: m.event == "journal" and m.data["type"] == "responder", timeout=10)
        assert time.monotonic() - written < 1.0
        assert (shown.data["event"], shown.data["value"], shown.data["by"]) == ("severity", "P3", "alice")
        stream.until(lambda m: m.event == "snapshot", timeout=10)  # the live view is wired in

        # The abort button's path, from the team's link.
        aborted = request(port, "POST", "/api/abort", token=team, body={"by": "tom", "reason": "too hot"})
        assert aborted.status == 202, aborted.body
        rest = stream.rest(timeout=120)
        runner.wait(timeout=120)
    finally:
        if stream is not None:
            stream.close()
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for reader in readers:
            reader.join(timeout=10)
    errors = "".join(stderr)
    assert runner.returncode == 1, "".join(stdout) + errors
    assert "Traceback" not in errors
    events = [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    [abort] = [event for event in events if event["type"] == "abort"]
    assert abort["cause"] == "operator" and abort["detail"] == "aborted by tom from the console: too hot"
    assert any(event["type"] == "fault_reverted" for event in events)
    # The pages saw the end, then the report, then bye - the server outlived the run.
    seen = [m.event if m.event != "journal" else m.data["type"] for m in rest]
    assert "run_finished" in seen and seen[-2:] == ["report", "bye"], seen
    assert seen.index("run_finished") < seen.index("report")
    [endpoint] = [event for event in events if event["type"] == "responder_endpoint"]
    assert endpoint["console_url"] == f"http://127.0.0.1:{port}/"
    journal_text = (run_folder / "journal.jsonl").read_text()
    for token in (observer, team, facilitator):
        assert token not in journal_text
    for name in ("responder-token", "team-token", "observer-token"):
        assert not (run_folder / name).exists()
