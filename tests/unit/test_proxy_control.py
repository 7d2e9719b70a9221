"""The control file: desired toxics in, applied generation out, typos ignored."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chaosrunner.errors import FaultError
from chaosrunner.faults.proxy.control import (
    ControlWatcher,
    ProxyStatus,
    read_status,
    read_toxics,
    switch,
    write_status,
    write_toxics,
)
from chaosrunner.faults.proxy.toxics import Latency, Reset, ToxicSet

TOXICS = ToxicSet(toxics=[Latency(name="latency", delay=0.1), Reset(name="reset", enabled=False)])


def test_toxics_round_trip(tmp_path: Path) -> None:
    write_toxics(tmp_path / "p", TOXICS)
    assert read_toxics(tmp_path / "p") == TOXICS


def test_reading_a_missing_proxy_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match=r"no fault proxy is controlled from .*nowhere"):
        read_toxics(tmp_path / "nowhere")


def test_the_watcher_reports_each_change_once(tmp_path: Path) -> None:
    write_toxics(tmp_path, TOXICS)
    watcher = ControlWatcher(tmp_path)
    assert watcher.poll() == TOXICS
    assert watcher.poll() is None
    changed = TOXICS.switched("reset", True)
    write_toxics(tmp_path, changed)
    assert watcher.poll() == changed
    assert watcher.poll() is None


def test_a_broken_control_file_is_ignored_not_fatal(tmp_path: Path) -> None:
    write_toxics(tmp_path, TOXICS)
    watcher = ControlWatcher(tmp_path)
    watcher.poll()
    (tmp_path / "toxics.json").write_text('{"toxics": [{"type": "latency"')  # a half-typed edit
    assert watcher.poll() is None
    assert ControlWatcher(tmp_path / "missing").poll() is None


def _fake_holder(directory: Path, stop: threading.Event) -> None:
    """Applies whatever the control file says and reports it, like the real holder's loop."""
    watcher = ControlWatcher(directory)
    while not stop.wait(0.01):
        toxics = watcher.poll()
        if toxics is not None:
            status = ProxyStatus(pid=1, start_ticks=1, address="127.0.0.1:1", generation=toxics.generation)
            write_status(directory, status)


def test_switch_returns_once_the_holder_applied_the_change(tmp_path: Path) -> None:
    write_toxics(tmp_path, TOXICS)
    stop = threading.Event()
    holder = threading.Thread(target=_fake_holder, args=(tmp_path, stop))
    holder.start()
    try:
        updated = switch(tmp_path, "latency", False)
        status = read_status(tmp_path)
        assert status is not None and status.generation == updated.generation == 1
        assert read_toxics(tmp_path).toxics[0].enabled is False
        assert switch(tmp_path, "latency", True).generation == 2
    finally:
        stop.set()
        holder.join()


def test_switch_fails_when_no_holder_applies_it(tmp_path: Path) -> None:
    write_toxics(tmp_path, TOXICS)
    with pytest.raises(FaultError, match=r"did not apply the change within 0\.2s"):
        switch(tmp_path, "reset", True, wait=0.2)
    assert read_toxics(tmp_path).reset() is not None  # requested all the same
    assert switch(tmp_path, "reset", False, wait=0).generation == 2


def test_switching_an_unknown_toxic_changes_nothing(tmp_path: Path) -> None:
    write_toxics(tmp_path, TOXICS)
    with pytest.raises(FaultError, match="no toxic named 'bandwidth'"):
        switch(tmp_path, "bandwidth", True, wait=0)
    assert read_toxics(tmp_path) == TOXICS


def test_status_is_none_before_the_holder_reports(tmp_path: Path) -> None:
    assert read_status(tmp_path) is None
    (tmp_path / "status.json").write_text("garbage")
    assert read_status(tmp_path) is None
