"""A holder's log is run state: only its owner may read it (names targets and errors)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from chaosrunner.faults.holder import spawn, stop

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _importable_tests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_holder_logs_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    holders = tmp_path / "state" / "holders"
    holders.mkdir(parents=True, mode=0o755)
    os.chmod(holders, 0o755)  # as an older version left it
    record = spawn(
        "tests.unit.sample_holder", {"marker": str(tmp_path / "m")}, deadline=time.time() + 30, label="t-priv"
    )
    try:
        assert _mode(holders) == 0o700
        assert _mode(Path(record.log)) == 0o600
    finally:
        stop(record)


def test_a_symlink_planted_as_the_log_is_not_followed(tmp_path: Path) -> None:
    holders = tmp_path / "state" / "holders"
    holders.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (holders / "t-link.log").symlink_to(victim)
    with pytest.raises(OSError):
        spawn(
            "tests.unit.sample_holder",
            {"marker": str(tmp_path / "m")},
            deadline=time.time() + 30,
            label="t-link",
        )
    assert victim.read_text() == "untouched"


def test_a_holders_log_lines_carry_no_credentials(tmp_path: Path) -> None:
    dsn = "host=db user=app password=hunter2 dbname=shop"
    record = spawn(
        "tests.unit.sample_holder",
        {"marker": str(tmp_path / "m"), "log": dsn},
        deadline=time.time() + 30,
        label="t-redact",
    )
    stop(record)
    log = Path(record.log).read_text()
    assert "connecting with host=db user=app password=" in log
    assert "hunter2" not in log
