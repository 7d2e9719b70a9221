"""Which live proxies belong to which fault of a run (no holders: control files only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.engine.toxic_switch import live_proxies, switch_toxic
from chaosrunner.errors import UsageError
from chaosrunner.faults.holder import process_start_ticks
from chaosrunner.faults.proxy.control import ProxyStatus, proxy_dir, write_status, write_toxics
from chaosrunner.faults.proxy.lifecycle import holder_label
from chaosrunner.faults.proxy.toxics import Latency, ToxicSet

RUN = "20261127-090000-abcdef"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


def a_run(*faults: str) -> RunDir:
    run = RunDir.create(RUN)
    journal = Journal(run.journal_path)
    journal.append("run_started", run_id=RUN, monotonic_start=0.0)
    for fault in faults:
        journal.append("fault_planned", fault=fault, kind="proxy.latency")
    return run


def a_proxy(label: str, address: str, *, reported: bool = True, alive: bool = True) -> None:
    """Control files as a holder leaves them; this test process plays the holder (or a dead one)."""
    directory = proxy_dir(label)
    write_toxics(directory, ToxicSet(toxics=[Latency(name="latency", delay=0.1)]))
    if reported:
        ticks = process_start_ticks(os.getpid()) if alive else 1
        write_status(
            directory, ProxyStatus(pid=os.getpid(), start_ticks=ticks, address=address, generation=0)
        )


def test_each_proxy_belongs_to_the_fault_with_the_longest_matching_label() -> None:
    a_run("db", "db-replica")
    a_proxy(holder_label(RUN, "db"), "127.0.0.1:1001")
    a_proxy(holder_label(RUN, "db-replica"), "127.0.0.1:1002")
    a_proxy(holder_label(RUN, "db", "c0ffee"), "127.0.0.1:1003")  # per-container holder of "db"
    a_proxy(holder_label(RUN, "db", "new"), "127.0.0.1:1004", reported=False)  # not started yet
    a_proxy(holder_label(RUN, "db", "dead"), "127.0.0.1:1005", alive=False)  # its holder died
    owners = {proxy.address: proxy.fault for proxy in live_proxies(RUN)}
    assert owners == {"127.0.0.1:1001": "db", "127.0.0.1:1002": "db-replica", "127.0.0.1:1003": "db"}
    assert [p.address for p in live_proxies(RUN, "db-replica")] == ["127.0.0.1:1002"]


def test_an_unknown_fault_names_the_runs_faults() -> None:
    a_run("db")
    with pytest.raises(UsageError, match=r"has no fault 'web' \(its faults: db\)"):
        live_proxies(RUN, "web")


def test_a_fault_without_a_live_proxy_cannot_be_switched() -> None:
    a_run("pause")
    with pytest.raises(UsageError, match="has no live proxy on this host"):
        switch_toxic(RUN, "pause", False)
