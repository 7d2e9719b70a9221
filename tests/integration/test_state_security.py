"""Another local user can neither read a run's state nor make `recover` spare a dead run.

A real `chaosrunner run` pauses a real process and is killed with -9. Then:

- the state it left is private: folders 0700, files 0600, and `nobody`
  cannot even open the runner's lock;
- on the layout older versions left (folders 0755, lock 0644), `nobody`
  takes a shared flock on the dead run's lock - which used to make the run
  look live - and `chaosrunner recover` still reverts the pause.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaosrunner.engine.rundir import lock_holders
from tests.support.cli import run_chaosrunner
from tests.support.paused_process import (
    REPO,
    as_nobody,
    process_state,
    sleeping_victim,
    start_run_until_injected,
    write_pause_scenario,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user (nobody)")


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.fixture
def state() -> Iterator[Path]:
    """A state folder where `nobody` could reach it, were the modes loose (not under pytest's 0700 tmp)."""
    parent = Path(tempfile.mkdtemp(prefix="chaosrunner-state-", dir="/tmp"))
    os.chmod(parent, 0o755)
    yield parent / "state"
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    yield from sleeping_victim(tmp_path)


@pytest.fixture
def dead_run(tmp_path: Path, state: Path, victim: tuple[subprocess.Popen[bytes], Path]) -> Path:
    """The folder of a run killed with -9 while its process.pause was in place."""
    sleeper, pid_file = victim
    scenario = write_pause_scenario(tmp_path / "pause.yaml", pid_file, "state")
    run = start_run_until_injected(
        scenario, {**os.environ, "PYTHONPATH": str(REPO)}, "--state-dir", str(state)
    )
    run.kill()
    run.wait()
    assert process_state(sleeper.pid) == "T", "the run never paused its victim"
    [folder] = list((state / "runs").iterdir())
    return folder


def test_run_state_is_private_and_another_user_cannot_open_the_lock(dead_run: Path, state: Path) -> None:
    for folder in (state, state / "runs", dead_run):
        assert mode(folder) == "0o700", folder
    for name in ("journal.jsonl", "runner.lock"):
        assert mode(dead_run / name) == "0o600", name
    # Even with the folders opened up, the lock file itself is not for others.
    for folder in (state, state / "runs", dead_run):
        os.chmod(folder, 0o755)
    forged = subprocess.run(
        as_nobody("flock", "--shared", "--nonblock", str(dead_run / "runner.lock"), "true"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert forged.returncode != 0 and "Permission denied" in forged.stderr


def test_a_forged_lock_on_the_old_layout_does_not_stop_recover(
    dead_run: Path, state: Path, victim: tuple[subprocess.Popen[bytes], Path]
) -> None:
    sleeper, _ = victim
    for folder in (state, state / "runs", dead_run):  # the layout older versions left behind
        os.chmod(folder, 0o755)
    lock = dead_run / "runner.lock"
    os.chmod(lock, 0o644)
    forger = subprocess.Popen(
        as_nobody("flock", "--shared", "--nonblock", "--close", str(lock), "sleep", "120")
    )
    try:
        deadline = time.monotonic() + 10
        while forger.pid not in (lock_holders(lock.stat().st_ino) or set()):
            assert forger.poll() is None, "nobody could not take the lock"
            assert time.monotonic() < deadline, "the forged lock never showed in /proc/locks"
            time.sleep(0.05)
        recovered = run_chaosrunner(
            "--state-dir", str(state), "recover", env={**os.environ, "PYTHONPATH": str(REPO)}
        )
    finally:
        forger.kill()
        forger.wait()
    assert recovered.returncode == 0, recovered.stderr
    assert "reverted pause" in recovered.stdout, recovered.stdout
    assert process_state(sleeper.pid) != "T"


def test_a_new_run_tightens_run_folders_an_older_version_left_open(
    state: Path, tmp_path: Path, victim: tuple[subprocess.Popen[bytes], Path]
) -> None:
    old = state / "runs" / "20200101-000000-abcdef"
    old.mkdir(parents=True)
    for folder in (state, state / "runs", old):
        os.chmod(folder, 0o755)
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
    finished = run_chaosrunner(
        "--state-dir", str(state), "run", str(scenario), env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert finished.returncode == 0, finished.stderr
    for folder in (state, state / "runs", old):
        assert mode(folder) == "0o700", folder
