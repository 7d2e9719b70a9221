"""A gameday run as a user starts it, and marks posted to its endpoint as responders would.

`chaosrunner run` in gameday mode on the real Prometheus, in its own process;
the test reads the endpoint's address from the console, the token from the
run folder, and posts: without the token (refused, nothing journaled), with
`chaosrunner mark --url` taking the token from the run folder, with a wrong
`CHAOSRUNNER_TOKEN` (refused), and finally `mitigated` with the right one,
which ends the run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"responder endpoint: POST JSON events to (http://\S+)")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if key != "CHAOSRUNNER_TOKEN"}
    return {**clean, "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}


def scenario(tmp_path: Path, prometheus_url: str, pushgateway_url: str) -> Path:
    path = tmp_path / "endpoint-gameday.yaml"
    document = {
        "metadata": {
            "title": "Endpoint gameday",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "target": {"prometheus": prometheus_url, "pushgateway": pushgateway_url},
        "steady_state": [{"name": "up", "expr": "vector(1)", "comparator": ">=", "threshold": 1}],
        "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "endpoint-run"}}],
        "gameday": {"mode": "gameday", "max_duration": "90s", "check_interval": "200ms"},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def journal(state: Path) -> list[dict]:
    [run] = list((state / "runs").iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def test_a_live_gameday_takes_marks_only_with_its_token(
    tmp_path: Path, env: dict[str, str], prometheus_url: str, pushgateway_url: str
) -> None:
    state = Path(env["CHAOSRUNNER_STATE_DIR"])
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaosrunner",
            "run",
            str(scenario(tmp_path, prometheus_url, pushgateway_url)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        url = None
        for line in runner.stdout:
            found = URL_LINE.search(line)
            if found:
                url = found.group(1)
            if "injected flag" in line:
                break
        assert url is not None, "the console never showed the endpoint"
        [run_folder] = list((state / "runs").iterdir())
        run_id = run_folder.name
        token = (run_folder / "responder-token").read_text().strip()

        # No token: 401, and nothing journaled.
        forged = urllib.request.Request(
            url, data=b'{"event": "mitigated"}', headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401

        # A local responder: the token comes from the run folder.
        marked = run_chaosrunner("mark", "--url", url, run_id, "severity", "P3", "--by", "alice", env=env)
        assert marked.returncode == 0, marked.stderr
        assert "recorded severity 'P3' by alice" in marked.stdout

        # A responder elsewhere with the wrong token: refused, exit 2.
        wrong = run_chaosrunner(
            "mark", "--url", url, run_id, "mitigated", env={**env, "CHAOSRUNNER_TOKEN": "not-the-token"}
        )
        assert wrong.returncode == 2 and "401" in wrong.stderr

        # The right token in the environment: the mark ends the gameday (no mitigation SLI).
        right = run_chaosrunner(
            "mark", "--url", url, run_id, "mitigated", "--by", "bob", env={**env, "CHAOSRUNNER_TOKEN": token}
        )
        assert right.returncode == 0, right.stderr
        rest, errors = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, rest + errors
    assert "the team mitigated" in rest and "report: " in rest
    assert f"facilitator console: http://127.0.0.1:{url.split(':')[2].split('/')[0]}/#token={token}" in errors
    assert f"responder token for `chaosrunner mark --url` (the facilitator's): {run_folder}" in errors
    assert "Traceback" not in errors
    events = journal(state)
    marks = [(e["event"], e["by"]) for e in events if e["type"] == "responder"]
    assert marks == [("severity", "alice"), ("mitigated", "bob")]
    assert token not in (run_folder / "journal.jsonl").read_text()
    for name in ("responder-token", "team-token", "observer-token"):
        assert not (run_folder / name).exists()  # worthless after the run; removed
