"""`abort --all` is a machine-wide kill switch: it stops runs whoever started them.

A real `chaosrunner run` pauses a real process (`sleep`) with HOME=A and its
own state folder; `chaosrunner abort --all` is issued with HOME=B and another
state folder - another operator's terminal. The run must abort on the kill
switch, resume the process and exit 1. The machine-wide folder is a
throwaway one (CHAOSRUNNER_KILL_SWITCH_DIR) made the way root makes
/run/chaosrunner: sticky and writable by all, so that the same works when the
operator is another user (tested as `nobody` when we are root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cli import run_chaosrunner
from tests.support.paused_process import (
    REPO,
    as_nobody,
    process_state,
    sleeping_victim,
    start_run_until_injected,
    write_pause_scenario,
)


@pytest.fixture
def switch_dir() -> Iterator[Path]:
    """A machine-wide switch folder like /run/chaosrunner: 01777, reachable by every user."""
    folder = Path(tempfile.mkdtemp(prefix="chaosrunner-switch-", dir="/tmp"))
    os.chmod(folder, 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    yield from sleeping_victim(tmp_path)


def home_env(home: Path, switch_dir: Path) -> dict[str, str]:
    """A user's terminal: their own HOME, no state folder override, the machine-wide switch folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOSRUNNER_STATE_DIR", "XDG_STATE_HOME")}
    home.mkdir(mode=0o755, exist_ok=True)
    return {**env, "HOME": str(home), "CHAOSRUNNER_KILL_SWITCH_DIR": str(switch_dir), "PYTHONPATH": str(REPO)}


def start_pausing_run(tmp_path: Path, pid_file: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    scenario = write_pause_scenario(tmp_path / "pause.yaml", pid_file, "kill switch", check_interval="200ms")
    return start_run_until_injected(scenario, env)


def journal_of(home: Path) -> list[dict]:
    [run] = list((home / ".local" / "state" / "chaosrunner" / "runs").iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def test_abort_all_from_another_home_stops_the_run_and_reverts(
    tmp_path: Path, switch_dir: Path, victim: tuple[subprocess.Popen[bytes], Path]
) -> None:
    sleeper, pid_file = victim
    runner_env = home_env(tmp_path / "home-a", switch_dir)
    operator_env = home_env(tmp_path / "home-b", switch_dir)
    run = start_pausing_run(tmp_path, pid_file, runner_env)
    try:
        assert process_state(sleeper.pid) == "T"  # the fault is really in place
        engaged = run_chaosrunner("abort", "--all", "--reason", "stop everything", env=operator_env)
        assert engaged.returncode == 0, engaged.stderr
        rest, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, rest
    assert "ABORT (kill_switch)" in rest
    assert process_state(sleeper.pid) != "T"  # resumed by the revert
    assert str(switch_dir) in engaged.stdout and "every run on this machine" in engaged.stdout
    events = journal_of(tmp_path / "home-a")
    assert next(e for e in events if e["type"] == "abort")["cause"] == "kill_switch"
    assert [e["fault"] for e in events if e["type"] == "fault_reverted"] == ["pause"]
    # New runs, from either home, refuse while it is engaged; the operator releases it.
    refused = run_chaosrunner("run", str(tmp_path / "pause.yaml"), env=runner_env)
    assert refused.returncode == 3 and "kill switch is engaged" in refused.stderr
    released = run_chaosrunner("abort", "--release", env=operator_env)
    assert released.returncode == 0 and released.stdout.strip() == "kill switch released"
    assert not (switch_dir / "kill-switch.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_engages_a_switch_root_cannot_ignore_and_only_they_or_root_release(
    tmp_path: Path, switch_dir: Path, victim: tuple[subprocess.Popen[bytes], Path]
) -> None:
    """`nobody` engages (a shell script can); root's run reverts; no third user may release it."""
    sleeper, pid_file = victim
    runner_env = home_env(tmp_path / "home-a", switch_dir)
    run = start_pausing_run(tmp_path, pid_file, runner_env)
    switch = switch_dir / "kill-switch.json"
    try:
        engage = subprocess.run(
            as_nobody("sh", "-c", 'printf \'{"by": "nobody", "reason": "drill"}\' > "$1"', "sh", str(switch)),
            capture_output=True,
            text=True,
            check=False,
        )
        assert engage.returncode == 0, engage.stderr
        rest, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, rest
    assert "ABORT (kill_switch)" in rest and "nobody" in rest
    assert process_state(sleeper.pid) != "T"
    # A third user may not remove nobody's switch: the sticky folder says so, and so do we.
    other = subprocess.run(
        ["setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "rm", "-f", str(switch)],
        capture_output=True,
        check=False,
    )
    assert other.returncode != 0 and switch.exists()
    # Root may: it is root's machine.
    released = run_chaosrunner("abort", "--release", env=runner_env)
    assert released.returncode == 0 and not switch.exists()


def test_a_planted_symlink_or_fifo_counts_as_engaged(tmp_path: Path, switch_dir: Path) -> None:
    """Fail closed: something odd in place of the switch stops runs rather than being ignored."""
    scenario = tmp_path / "noop.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "metadata": {"title": "noop", "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
                "faults": [
                    {"name": "one", "kind": "inprocess.flag", "params": {"flag": "one"}, "duration": "1s"}
                ],
            }
        )
    )
    env = home_env(tmp_path / "home-a", switch_dir)
    switch = switch_dir / "kill-switch.json"
    switch.symlink_to("/nonexistent/target")
    refused = run_chaosrunner("run", str(scenario), env=env)
    assert refused.returncode == 3 and "kill switch is engaged" in refused.stderr, refused.stderr
    switch.unlink()
    os.mkfifo(switch)  # opening a FIFO to read would block forever without O_NONBLOCK
    refused = run_chaosrunner("run", str(scenario), env=env, timeout=60)
    assert refused.returncode == 3 and "kill switch is engaged" in refused.stderr, refused.stderr
