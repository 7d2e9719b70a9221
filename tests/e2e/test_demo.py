"""`chaosrunner demo` end to end, as a new user runs it: sandbox, gameday, debrief.

Real PostgreSQL, Prometheus and Alertmanager from the rig; the scripted team
reacts to real alerts; the measured TTD and TTM come from Prometheus data.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_chaosrunner


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state")}


def chaosrunner(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_chaosrunner(*args, env=env, timeout=timeout)


def test_the_demo_plays_a_whole_gameday_and_prints_the_debrief(env: dict[str, str], tmp_path: Path) -> None:
    try:
        result = chaosrunner(env, "demo", "--plain")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = result.stdout
        ttd = re.search(r"^TTD ([\d.]+s)", out, re.M)
        ttm = re.search(r"^TTM ([\dms.]+)", out, re.M)
        assert ttd and ttm, out[-2000:]
        assert "experiment: completed" in out
        assert re.search(r"team score \d+(\.\d+)?/100, grade [A-F]", out)
        # The scripted team did its job, as the journal shows.
        [run] = list((tmp_path / "state" / "runs").iterdir())
        events = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
        marks = [event["event"] for event in events if event["type"] == "responder"]
        for expected in ("detected", "severity", "ic", "status", "change", "mitigated"):
            assert expected in marks, marks
        assert any(event["type"] == "alert" and event["state"] == "firing" for event in events)
        assert [e["type"] for e in events if e.get("fault") == "exhaust-checkout-role"][
            -1
        ] == "fault_reverted"
        score = json.loads(chaosrunner(env, "score", run.name, "--json").stdout)
        assert (
            score["timings"]["ttd_seconds"] > 0
            and score["timings"]["ttm_seconds"] > score["timings"]["ttd_seconds"]
        )
        assert score["verdict"]["hypothesis_held"] is True
        # The run is in the results store at once: coverage shows the demo's alerts catching it.
        assert "results: stored in sqlite" in out, out[-1000:]
        coverage = json.loads(chaosrunner(env, "coverage", "--json").stdout)
        verdicts = {row["alert"]: row["verdict"] for row in coverage["rows"]}
        assert coverage["runs"] == 1 and verdicts.get("DemoCheckoutDbPoolSaturated") == "caught", coverage
        # A second demo on the running sandbox works too (`make demo` twice).
        again = chaosrunner(env, "demo", "--plain")
        assert again.returncode == 0, again.stdout[-2000:]
    finally:
        down = chaosrunner(env, "demo", "--down", timeout=60)
        assert down.returncode == 0 and "sandbox stopped" in down.stdout
