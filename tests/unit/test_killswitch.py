"""The kill switch's two places, where engage falls back, and who may release."""

from __future__ import annotations

import json
import os
import pwd
import tempfile
from pathlib import Path

import pytest

from chaosrunner.engine import killswitch


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    machine = tmp_path / "machine"
    machine.mkdir(mode=0o1777)
    os.chmod(machine, 0o1777)
    monkeypatch.setenv("CHAOSRUNNER_KILL_SWITCH_DIR", str(machine))
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    return machine / "kill-switch.json", tmp_path / "state" / "kill-switch.json"


def test_the_default_machine_wide_place_is_under_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSRUNNER_KILL_SWITCH_DIR", raising=False)
    assert killswitch.machine_switch_path() == Path("/run/chaosrunner/kill-switch.json")


def test_engage_writes_the_machine_wide_switch_readable_by_every_run(places: tuple[Path, Path]) -> None:
    machine, own = places
    engagement = killswitch.engage("drill")
    assert engagement.machine_wide and engagement.path == machine and not own.exists()
    assert oct(machine.stat().st_mode & 0o777) == oct(killswitch.MACHINE_FILE_MODE)
    details = killswitch.engaged()
    assert details is not None and details["reason"] == "drill" and details["path"] == str(machine)
    assert killswitch.release().released == [machine] and killswitch.engaged() is None


def test_engage_falls_back_to_the_own_switch_and_says_why(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, own = places
    monkeypatch.setenv("CHAOSRUNNER_KILL_SWITCH_DIR", str(tmp_path / "no" / "such" / "folder"))
    engagement = killswitch.engage()
    assert not engagement.machine_wide and engagement.path == own
    assert "could not be engaged" in engagement.note and "docs/kill-switch.md" in engagement.note
    assert oct(own.stat().st_mode & 0o777) == "0o600"
    assert killswitch.engaged() is not None  # the own switch is obeyed too


def test_a_folder_others_may_write_without_the_sticky_bit_is_not_trusted(
    places: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)  # anyone could delete anyone's switch
    monkeypatch.setenv("CHAOSRUNNER_KILL_SWITCH_DIR", str(loose))
    engagement = killswitch.engage()
    assert not engagement.machine_wide and "not sticky" in engagement.note


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"[1, 2]", json.dumps({"by": "\x1b[2Jevil\n" * 100}).encode()]
)
def test_anything_present_is_engaged_and_its_text_is_tamed(places: tuple[Path, Path], content: bytes) -> None:
    machine, _ = places
    machine.write_bytes(content)
    details = killswitch.engaged()
    assert details is not None
    assert all(ch.isprintable() for ch in details["by"]) and len(details["by"]) <= 300


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_may_not_release_a_switch_that_is_not_theirs(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(tempfile.mkdtemp(prefix="chaosrunner-switch-", dir="/tmp"))  # reachable by nobody
    os.chmod(folder, 0o1777)
    monkeypatch.setenv("CHAOSRUNNER_KILL_SWITCH_DIR", str(folder))
    machine = folder / "kill-switch.json"
    killswitch.engage("root's drill")
    nobody = pwd.getpwnam("nobody")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code only
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.environ["CHAOSRUNNER_STATE_DIR"] = "/nonexistent/state"
            outcome = killswitch.release()
            os._exit(0 if outcome.refused and "only they or root" in outcome.refused and not outcome else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert machine.exists()
    assert killswitch.release().released == [machine]
    folder.rmdir()
