"""Reverts that fail or hang: bounded, journaled, and never reported as success.

Fast tests on the in-process fault and a real child process; the same story on
a real Docker fault, the real Pushgateway and ``chaosrunner recover`` is in
tests/integration/test_revert_failures.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.engine import runner as runner_module
from chaosrunner.engine.recovery import leftovers, recover_run
from chaosrunner.engine.rundir import RunDir
from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.errors import FaultError
from chaosrunner.faults import holder, inprocess
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.observe.scripted import ScriptedMetrics
from chaosrunner.report.markdown import render_markdown
from chaosrunner.report.model import build_report
from chaosrunner.scenario.loader import load_scenario
from tests.unit.scenario_factory import write_scenario


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


def one_flag_scenario(tmp_path: Path, flag: str, **params: Any) -> Path:
    return write_scenario(
        tmp_path,
        {
            "metadata": {"title": "t", "owner": "o", "expected_severity": "P2", "hypothesis": "h"},
            "target": {"prometheus": "http://127.0.0.1:1"},
            "faults": [
                {"name": flag, "kind": "inprocess.flag", "params": {"flag": flag, **params}, "duration": "1s"}
            ],
            "gameday": {"check_interval": "100ms", "max_duration": "2s"},
        },
    )


@pytest.fixture
def hanging_inject(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """inject blocks until the test ends, then returns without raising its flag: a hung
    backend whose late return cannot touch ACTIVE_FLAGS while another test reads them."""
    release = threading.Event()

    def inject(self: Any, plan: Any) -> dict:
        release.wait(120)
        return dict(plan.revert_record)

    monkeypatch.setattr(inprocess.FlagFault, "inject", inject)
    yield
    release.set()


def run(path: Path, metrics: ScriptedMetrics) -> tuple[Any, list[dict]]:
    events: list[dict] = []
    runner = Runner(
        load_scenario(path), str(path), metrics, RunOptions(handle_signals=False), [events.append]
    )
    return runner.run(), events


# ------------------------------------------------------------------------- holder.stop


def test_holder_stop_gives_up_on_a_holder_that_survives_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real process that ignores SIGTERM; SIGKILL is swallowed at our seam, standing for a
    # process stuck in uninterruptible sleep (which no signal can end).
    stuck = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert stuck.stdout is not None and stuck.stdout.readline() == b"ready\n"
        ticks = holder.process_start_ticks(stuck.pid)
        assert ticks is not None
        record = holder.HolderRecord(stuck.pid, ticks, deadline=0, label="stuck", log="")
        real_kill = holder.os.kill
        monkeypatch.setattr(
            holder.os, "kill", lambda pid, sig: None if sig == signal.SIGKILL else real_kill(pid, sig)
        )
        monkeypatch.setattr(holder, "KILL_WAIT", 0.5, raising=False)
        outcome: dict[str, BaseException | None] = {}

        def stop() -> None:
            try:
                holder.stop(record, timeout=0.5)
                outcome["error"] = None
            except BaseException as error:
                outcome["error"] = error

        worker = threading.Thread(target=stop, daemon=True)
        worker.start()
        worker.join(30)  # generous: the bound is 1s, the old code never returned
        assert not worker.is_alive(), "holder.stop is still waiting for a process SIGKILL cannot end"
        error = outcome["error"]
        assert isinstance(error, FaultError)
        assert f"pid {stuck.pid}" in str(error) and "may still be in place" in str(error)
    finally:
        monkeypatch.undo()  # os.kill is the process-wide one: give SIGKILL back before using it
        stuck.kill()
        stuck.wait()


# ------------------------------------------------------------------------- the runner


@pytest.mark.usefixtures("hanging_inject")
def test_an_inject_still_running_after_the_wait_is_journaled_and_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "INJECT_WAIT_AFTER_ABORT", 0.5)
    # max_duration (2s) ends the run while inject still hangs
    result, events = run(one_flag_scenario(tmp_path, "hung"), ScriptedMetrics({}))

    assert (result.status, result.exit_code) == (RunStatus.FAILED, 1)
    assert "STILL INJECTED: hung (inject still in flight)" in result.detail
    (in_flight,) = [event for event in events if event["type"] == "fault_still_in_flight"]
    assert in_flight["fault"] == "hung" and in_flight["waited"] == 0.5
    assert in_flight["revert_record"]["flag"] == "hung"
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "failed"
    # recover reopens it although the planned record was reverted before the event
    journal_events = RunDir.find(result.run_id).events()
    assert [left.fault for left in leftovers(journal_events)] == ["hung"]


def test_a_revert_that_keeps_failing_says_still_injected_and_recover_reverts_it_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_revert(self: Any, record: dict) -> None:
        raise FaultError("the daemon did not answer")

    original = inprocess.FlagFault.revert
    monkeypatch.setattr(inprocess.FlagFault, "revert", broken_revert)
    monkeypatch.setattr("chaosrunner.engine.injection.REVERT_ATTEMPTS", 2)
    result, events = run(one_flag_scenario(tmp_path, "stuck"), ScriptedMetrics({}))

    assert (result.status, result.exit_code) == (RunStatus.FAILED, 1)
    assert result.detail == "STILL INJECTED: stuck (revert failed); run `chaosrunner recover`"
    failed = [event for event in events if event["type"] == "fault_revert_failed"]
    assert failed and all("the daemon did not answer" in event["error"] for event in failed)
    assert "fault_reverted" not in [event["type"] for event in events]
    assert {"stuck"} == ACTIVE_FLAGS

    run_dir = RunDir.find(result.run_id)
    report = build_report(_debrief(result.run_id), None)
    assert [(left.fault, left.kind) for left in report.still_injected] == [("stuck", "inprocess.flag")]
    assert "the daemon did not answer" in report.still_injected[0].why
    assert "**STILL INJECTED.**" in render_markdown(report, "chart.svg", None)

    monkeypatch.setattr(inprocess.FlagFault, "revert", original)
    outcome = recover_run(run_dir)
    assert (outcome.reverted, outcome.failed) == (["stuck"], {})
    assert not ACTIVE_FLAGS
    recovered = run_dir.events()
    assert recovered[-1].type == "fault_reverted" and recovered[-1]["by"] == "recover"
    assert build_report(_debrief(result.run_id), None).still_injected == []


def test_a_clean_run_has_nothing_still_injected(tmp_path: Path) -> None:
    result, _events = run(one_flag_scenario(tmp_path, "fine"), ScriptedMetrics({}))
    assert result.status is RunStatus.COMPLETED
    report = build_report(_debrief(result.run_id), None)
    assert report.still_injected == []
    assert "STILL INJECTED" not in render_markdown(report, "chart.svg", None)


def _debrief(run_id: str) -> Any:
    from chaosrunner.gameday.debrief import debrief

    return debrief(run_id, None, offline=True)


@pytest.mark.usefixtures("hanging_inject")
def test_the_hung_inject_bound_holds_for_several_faults_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every fault still in flight is journaled and counted; the run ends without them.
    monkeypatch.setattr(runner_module, "INJECT_WAIT_AFTER_ABORT", 1.0)
    path = write_scenario(
        tmp_path,
        {
            "metadata": {"title": "t", "owner": "o", "expected_severity": "P2", "hypothesis": "h"},
            "target": {"prometheus": "http://127.0.0.1:1"},
            "faults": [
                {
                    "name": f"hung{index}",
                    "kind": "inprocess.flag",
                    "params": {"flag": f"hung{index}"},
                    "duration": "1s",
                }
                for index in range(4)
            ],
            "gameday": {"check_interval": "100ms", "max_duration": "1s"},
        },
    )
    started = time.monotonic()
    result, events = run(path, ScriptedMetrics({}))
    assert result.status is RunStatus.FAILED
    assert len([event for event in events if event["type"] == "fault_still_in_flight"]) == 4
    assert time.monotonic() - started < 20  # generous; the injects themselves hang for 120s
