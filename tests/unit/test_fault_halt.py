"""The halt hook: an abort tells an inject in flight to stop before the engine reverts it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine.runner import RunStatus
from chaosrunner.faults import inprocess
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from tests.unit.test_runner import ERRORS, healthy_metrics, make_runner, scenario_file, types


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


def test_an_abort_halts_an_inject_in_flight_before_reverting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real_halt = inprocess.FlagFault.halt
    real_revert = inprocess.FlagFault.revert

    def halt(self: Any) -> None:
        order.append("halt")
        real_halt(self)

    def revert(self: Any, record: dict) -> None:
        order.append("revert-halted" if self.halted() else "revert")
        real_revert(self, record)

    monkeypatch.setattr(inprocess.FlagFault, "halt", halt)
    monkeypatch.setattr(inprocess.FlagFault, "revert", revert)
    faults = [
        {
            "name": "slow",
            "kind": "inprocess.flag",
            "params": {"flag": "slow", "inject_delay": "1500ms"},
            "duration": "10s",
        }
    ]
    metrics = healthy_metrics()
    runner, events = make_runner(scenario_file(tmp_path, faults=faults), metrics)
    threading.Timer(0.3, metrics.set, args=(ERRORS, 50)).start()
    assert runner.run().status is RunStatus.ABORTED
    # halted once, before the first revert (with the planned record) and still so for the late one
    assert order[0] == "halt" and order.count("halt") == 1
    assert set(order[1:]) == {"revert-halted"}
    assert types(events, "slow")[-1] == "fault_reverted"


def test_a_fault_that_was_never_halted_says_so() -> None:
    fault = inprocess.FlagFault()
    assert not fault.halted()
    fault.halt()
    assert fault.halted() and not inprocess.FlagFault().halted()  # per instance
