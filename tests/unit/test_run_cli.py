"""`chaosrunner run` as a process: signals, kill -9 and recover, runs, abort.

The faults here are in-process flags, so what is checked is the engine's
bookkeeping on every exit path; tests/integration/test_engine.py repeats the
exit paths with real faults whose effects are observed on real services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]

SCENARIO = {
    "metadata": {"title": "Signals", "owner": "o", "expected_severity": "P3", "hypothesis": "h"},
    "faults": [
        {"name": "one", "kind": "inprocess.flag", "params": {"flag": "one"}, "duration": "30s"},
        {"name": "two", "kind": "inprocess.flag", "params": {"flag": "two"}, "duration": "30s"},
    ],
    "gameday": {"check_interval": "100ms"},
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "signals.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_chaosrunner(*args, env=env, timeout=60)


def start_run(env: dict[str, str], scenario: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", str(scenario)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        seen += "injected " in line
        if seen == 2:
            return process
    raise AssertionError("the run never injected both faults")


def journal(env: dict[str, str]) -> list[dict]:
    [run] = list((Path(env["CHAOSRUNNER_STATE_DIR"]) / "runs").iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_reverts_every_fault_and_exits_1(env: dict[str, str], scenario: Path, signum: int) -> None:
    process = start_run(env, scenario)
    process.send_signal(signum)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 1, rest
    events = journal(env)
    abort = next(event for event in events if event["type"] == "abort")
    assert abort["cause"] == "signal" and signal.Signals(signum).name in abort["detail"]
    assert sorted(e["fault"] for e in events if e["type"] == "fault_reverted") == ["one", "two"]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "aborted"


def test_a_second_ctrl_c_does_not_skip_reverts(env: dict[str, str], tmp_path: Path) -> None:
    slow = yaml.safe_load(yaml.safe_dump(SCENARIO))
    for fault in slow["faults"]:
        fault["params"]["revert_delay"] = "1s"  # the second Ctrl-C lands while reverts run
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(yaml.safe_dump(slow))
    process = start_run(env, scenario)
    process.send_signal(signal.SIGINT)
    # Wait until the first Ctrl-C was handled and reverts run: two signals sent before the
    # process gets to run its handler coalesce into one (a fixed sleep did on a loaded machine).
    assert process.stdout is not None
    for line in process.stdout:
        if "] reverting " in line:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 1, rest
    events = journal(env)
    assert any(event["type"] == "signal_ignored" for event in events)
    assert sorted(e["fault"] for e in events if e["type"] == "fault_reverted") == ["one", "two"]


def test_kill_9_then_recover_reverts_what_was_left(env: dict[str, str], scenario: Path) -> None:
    process = start_run(env, scenario)
    process.kill()
    process.wait()
    listed = json.loads(cli(env, "runs", "--json").stdout)
    assert listed[0]["status"] == "dead" and listed[0]["unreverted"] == 2
    recovered = cli(env, "recover")
    assert recovered.returncode == 0
    assert "reverted one" in recovered.stdout and "reverted two" in recovered.stdout
    events = journal(env)
    assert [e["by"] for e in events if e["type"] == "fault_reverted"] == ["recover", "recover"]
    assert json.loads(cli(env, "runs", "--json").stdout)[0]["status"] == "aborted"
    assert "nothing to recover" in cli(env, "recover").stdout  # safe to run again


def test_recover_never_touches_a_live_run(env: dict[str, str], scenario: Path) -> None:
    process = start_run(env, scenario)
    try:
        assert "nothing to recover" in cli(env, "recover").stdout
        assert json.loads(cli(env, "runs", "--json").stdout)[0]["status"] == "live"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_abort_by_run_id_and_the_global_kill_switch(env: dict[str, str], scenario: Path) -> None:
    process = start_run(env, scenario)
    run_id = json.loads(cli(env, "runs", "--json").stdout)[0]["run_id"]
    assert cli(env, "abort", run_id, "--reason", "drill over").returncode == 0
    process.communicate(timeout=30)
    assert process.returncode == 1
    assert (
        next(e for e in journal(env) if e["type"] == "abort")["detail"] == "aborted by operator: drill over"
    )

    assert cli(env, "abort", "--all").returncode == 0
    refused = cli(env, "run", str(scenario))
    assert refused.returncode == 3 and "kill switch is engaged" in refused.stderr
    assert cli(env, "abort", "--release").stdout.strip() == "kill switch released"


def test_abort_of_an_unknown_run_is_a_user_error(env: dict[str, str]) -> None:
    result = cli(env, "abort", "20990101-000000-abcdef")
    assert result.returncode == 2 and "no run '20990101-000000-abcdef'" in result.stderr
