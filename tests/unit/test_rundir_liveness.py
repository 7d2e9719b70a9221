"""A run is live only while its runner holds its lock: a lock anyone else takes does not count.

Real processes and real flock(2) locks; the forger is `flock -s`, as any
user who can open the file could run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.engine.rundir import RunDir, lock_holders

REPO = Path(__file__).resolve().parents[2]

RUNNER = """
import sys
from chaosrunner.engine.rundir import RunDir
from chaosrunner.engine.journal import Journal
run = RunDir.create()
run.hold_lock()
Journal(run.journal_path).append("run_started", run_id=run.run_id)
print(run.path, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def runner(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], RunDir]]:
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    yield process, RunDir(Path(process.stdout.readline().strip()))
    process.kill()
    process.wait()


def hold_shared_lock(path: Path) -> subprocess.Popen[bytes]:
    """Another process takes a shared lock on ``path`` and keeps it; returns once the kernel lists it."""
    forger = subprocess.Popen(["flock", "--shared", "--nonblock", "--close", str(path), "sleep", "120"])
    inode = path.stat().st_ino
    deadline = time.monotonic() + 10
    while forger.pid not in (lock_holders(inode) or set()):
        assert forger.poll() is None, "flock could not take the lock"
        assert time.monotonic() < deadline, "the forged lock never showed in /proc/locks"
        time.sleep(0.05)
    return forger


def test_a_live_runner_is_live_from_another_process_and_from_its_own(
    runner: tuple[subprocess.Popen[str], RunDir],
) -> None:
    _, run = runner
    assert run.is_live()
    assert RunDir(run.path).is_live()


def test_a_dead_runner_is_dead_even_while_someone_else_holds_its_lock(
    runner: tuple[subprocess.Popen[str], RunDir],
) -> None:
    process, run = runner
    process.kill()
    process.wait()
    assert not run.is_live()
    forger = hold_shared_lock(run.lock_path)
    try:
        assert not run.is_live()
    finally:
        forger.kill()
        forger.wait()


def test_a_dead_run_of_an_older_version_is_judged_by_the_pid_its_journal_recorded(
    runner: tuple[subprocess.Popen[str], RunDir],
) -> None:
    """Older lock files are empty: the runner's pid and start time come from run_started."""
    process, run = runner
    from chaosrunner.engine.journal import Journal
    from chaosrunner.faults.holder import process_start_ticks

    ticks = process_start_ticks(process.pid)
    process.kill()
    process.wait()
    run.lock_path.write_bytes(b"")
    run.journal_path.unlink()
    Journal(run.journal_path).append("run_started", pid=process.pid, pid_start_ticks=ticks)
    forger = hold_shared_lock(run.lock_path)
    try:
        assert not run.is_live()
    finally:
        forger.kill()
        forger.wait()


def test_the_lock_table_is_read_for_holders_not_waiters(tmp_path: Path) -> None:
    path = tmp_path / "some.lock"
    path.write_bytes(b"")
    forger = hold_shared_lock(path)
    try:
        holders = lock_holders(path.stat().st_ino)
        assert holders is not None and forger.pid in holders
    finally:
        forger.kill()
        forger.wait()
    assert lock_holders(path.stat().st_ino) == set()
