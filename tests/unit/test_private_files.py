"""Private files: 0600/0700, written without following symlinks, read without blocking on FIFOs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chaosrunner.engine.rundir import RunDir
from chaosrunner.private_files import create_exclusive, private_dir, read_no_follow, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_write_private_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    planted = tmp_path / "abort-request"
    planted.symlink_to(victim)
    write_private(planted, "stop")
    assert victim.read_text() == "precious"
    assert not planted.is_symlink() and planted.read_text() == "stop" and mode(planted) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_private_applies_its_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_private(tmp_path / "shared", "x", mode=0o644)
    finally:
        os.umask(old)
    assert mode(tmp_path / "shared") == 0o644


def test_create_exclusive_never_opens_an_existing_name(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        create_exclusive(tmp_path / "link")
    assert not (tmp_path / "elsewhere").exists()


def test_read_no_follow_refuses_symlinks_and_fifos_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x" * 10)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "fifo")
    assert read_no_follow(tmp_path / "real", limit=4) == b"xxxx"
    with pytest.raises(OSError):
        read_no_follow(tmp_path / "link")
    with pytest.raises(OSError):
        read_no_follow(tmp_path / "fifo")
    with pytest.raises(FileNotFoundError):
        read_no_follow(tmp_path / "absent")


def test_private_dir_creates_0700_and_tightens_a_looser_one(tmp_path: Path) -> None:
    assert mode(private_dir(tmp_path / "a" / "b")) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    assert mode(private_dir(loose)) == 0o700


def test_a_run_folder_and_its_files_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    old = os.umask(0o022)
    try:
        run = RunDir.create()
        run.hold_lock()
        run.request_abort("enough")
    finally:
        os.umask(old)
        run.release_lock()
    assert [mode(p) for p in (tmp_path / "state", tmp_path / "state" / "runs", run.path)] == [0o700] * 3
    assert mode(run.lock_path) == 0o600 and mode(run.abort_request_path) == 0o600
    assert run.abort_requested() == "enough"


def test_an_unreadable_abort_request_still_asks_the_run_to_stop(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    os.mkfifo(run.abort_request_path)
    requested = run.abort_requested()
    assert requested is not None and "abort requested" in requested
