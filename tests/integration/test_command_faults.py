"""``command.run`` against real programs on this machine.

The programs are ``sh``, ``sleep`` and ``touch``: an inject that marks a file
and a revert that removes it show exactly when each ran, and ``sleep`` trees
(a shell with children, one of them in a session of its own) show whether a
background inject is ended with everything it started. "Nothing left behind"
is read from /proc: no process carries the fault's environment marker, no
holder runs under its label.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.errors import FaultError
from chaosrunner.faults import holder
from chaosrunner.faults.base import FaultRequest
from chaosrunner.faults.command import execution
from chaosrunner.faults.command.run import CommandParams, CommandRun
from tests.support.cli import run_chaosrunner
from tests.support.injector import inject_and_die

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(folder))
    return folder


@pytest.fixture
def run_id(request: pytest.FixtureRequest) -> Iterator[str]:
    """A run id of its own per test; whatever a failing test left is ended afterwards."""
    name = f"t{os.getpid()}-{request.node.name[:30]}".replace("[", "-").replace("]", "")
    yield name
    for label in {p_label for p_label in _labels_started_with(f"command-{name}")}:
        execution.terminate_marked(label, grace=1)
        for found in holder.find_by_label(label):
            holder.stop(found)


def _labels_started_with(prefix: str) -> set[str]:
    labels = set()
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(f"{execution.MARKER_VARIABLE}={prefix}".encode()):
                labels.add(item.split(b"=", 1)[1].decode())
    return labels


def request(run_id: str, name: str = "cmd", duration: float = 30, **params: Any) -> FaultRequest:
    return FaultRequest(
        run_id=run_id,
        name=name,
        params=CommandParams.model_validate(params),
        duration=timedelta(seconds=duration),
    )


def left_behind(label: str) -> list[Any]:
    return [*execution.marked_processes(label), *holder.find_by_label(label)]


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


# ----------------------------------------------------------------------------- foreground


def test_inject_runs_the_argv_and_revert_runs_the_other(tmp_path: Path, run_id: str) -> None:
    flag = tmp_path / "injected"
    fault = CommandRun()
    plan = fault.plan(request(run_id, inject=["touch", str(flag)], revert=["rm", "-f", str(flag)]))
    record = fault.inject(plan)
    assert flag.exists()
    assert record["inject_result"]["exit_code"] == 0 and not record["inject_result"]["timed_out"]
    assert fault.check(record)  # the holder that would revert at the deadline is waiting
    fault.revert(record)
    assert not flag.exists()
    assert not fault.check(record)
    assert left_behind(record["label"]) == []
    steps = fault.outcome(record)
    assert steps is not None and [(s["step"], s["exit_code"]) for s in steps] == [
        ("inject", 0),
        ("revert", 0),
    ]
    fault.revert(record)  # again: rm -f is idempotent, the holder is already gone
    assert left_behind(record["label"]) == []


def test_a_failing_inject_is_an_error_with_its_exit_code_and_stderr(run_id: str) -> None:
    fault = CommandRun()
    plan = fault.plan(request(run_id, inject=["sh", "-c", "echo 'no such device' >&2; exit 3"]))
    with pytest.raises(FaultError, match=r"inject sh exited 3 after .*stderr: no such device"):
        fault.inject(plan)


def test_an_inject_past_its_deadline_is_killed_with_its_children(run_id: str) -> None:
    fault = CommandRun()
    plan = fault.plan(request(run_id, inject=["sh", "-c", "sleep 60 & sleep 60"], deadline="1s"))
    began = time.monotonic()
    with pytest.raises(FaultError, match="did not exit within its deadline"):
        fault.inject(plan)
    assert time.monotonic() - began < 20
    assert wait_until(lambda: execution.marked_processes(plan.revert_record["label"]) == [])
    fault.revert(plan.revert_record)  # the engine reverts a failed inject: nothing to end, no error


def test_a_revert_past_its_deadline_fails_the_revert(run_id: str) -> None:
    fault = CommandRun()
    record = fault.inject(fault.plan(request(run_id, inject=["true"], revert=["sleep", "60"], deadline="1s")))
    with pytest.raises(FaultError, match="revert sleep did not exit within its deadline"):
        fault.revert(record)
    assert wait_until(lambda: left_behind(record["label"]) == [])


def test_secrets_reach_the_program_but_not_the_record(run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F_TEST_TOKEN", "s3cret-token-value")
    fault = CommandRun()
    plan = fault.plan(
        request(
            run_id,
            inject=["sh", "-c", 'test "${#TOKEN}" = 18 && echo "using $TOKEN" >&2'],
            env_from={"TOKEN": "F_TEST_TOKEN"},
        )
    )
    record = fault.inject(plan)
    assert record["inject_result"]["exit_code"] == 0  # the program got the value
    assert record["inject_result"]["stderr_tail"] == "using ***\n"  # and echoed it: masked
    assert "s3cret" not in json.dumps(record)


def test_the_stderr_tail_is_bounded(run_id: str) -> None:
    fault = CommandRun()
    plan = fault.plan(request(run_id, inject=["sh", "-c", "yes chatty | head -n 700000 >&2"]))
    record = fault.inject(plan)
    tail = record["inject_result"]["stderr_tail"]
    assert 0 < len(tail.encode()) <= execution.TAIL_BYTES and tail.endswith("chatty\n")


# ----------------------------------------------------------------------------- background


def test_a_background_inject_is_killed_with_its_process_group_on_revert(run_id: str) -> None:
    fault = CommandRun()
    # a shell, two children in its group, and one that left for a session of its own
    tree = "sleep 300 & setsid sleep 301 & sleep 302"
    record = fault.inject(fault.plan(request(run_id, inject=["sh", "-c", tree], background=True)))
    label = record["label"]
    assert wait_until(lambda: len(execution.marked_processes(label)) == 4)
    assert fault.check(record)
    fault.revert(record)
    assert execution.marked_processes(label) == []
    assert not fault.check(record)
    assert wait_until(lambda: left_behind(label) == [])


def test_a_background_inject_that_fails_at_once_fails_the_inject(run_id: str) -> None:
    fault = CommandRun()
    plan = fault.plan(request(run_id, inject=["sh", "-c", "echo bad flag >&2; exit 2"], background=True))
    with pytest.raises(FaultError, match="exited 2 at once"):
        fault.inject(plan)
    assert wait_until(lambda: left_behind(plan.revert_record["label"]) == [])


def test_revert_from_the_planned_record_finds_what_an_interrupted_inject_started(run_id: str) -> None:
    # The runner journals the planned record before inject and may die before journaling the
    # holder's pid: the label alone must be enough.
    fault = CommandRun()
    plan = fault.plan(request(run_id, inject=["sleep", "300"], revert=["true"], background=True))
    fault.inject(plan)
    assert execution.marked_processes(plan.revert_record["label"])
    fault.revert(plan.revert_record)
    assert wait_until(lambda: left_behind(plan.revert_record["label"]) == [])


def test_the_dead_mans_switch_ends_the_inject_and_runs_the_revert(tmp_path: Path, run_id: str) -> None:
    reverted = tmp_path / "reverted"
    record = inject_and_die(
        CommandRun,
        run_id=run_id,
        name="dms",
        params={
            "inject": ["sleep", "300"],
            "revert": ["touch", str(reverted)],
            "background": True,
            "grace": "1s",
        },
        # Long enough that the child's SIGKILL and our first look land before the
        # holder's deadline even on a loaded machine (1 s failed once in a soak).
        duration=5.0,
    )
    label = record["label"]
    assert execution.marked_processes(label), "the holder should keep the inject running until its deadline"
    assert not reverted.exists(), "the revert ran before the fault's duration was up"
    assert wait_until(lambda: reverted.exists() and left_behind(label) == [], timeout=30)


# ----------------------------------------------------------------------------- through the CLI


def write_scenario(tmp_path: Path, marker: Path, reverted: Path) -> Path:
    data = {
        "metadata": {
            "title": "command faults",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "faults": [
            {
                "name": "hold",
                "kind": "command.run",
                "params": {
                    "inject": ["sh", "-c", f"touch {marker}; exec sleep 300"],
                    "revert": ["sh", "-c", f"rm -f {marker}; touch {reverted}"],
                    "background": True,
                    "deadline": "10s",
                },
                "duration": "40s",
            }
        ],
        "gameday": {"max_duration": "2m"},
    }
    path = tmp_path / "command.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def journal(state: Path) -> list[dict[str, Any]]:
    [run] = list((state / "runs").iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def test_a_run_completes_and_journals_exit_codes(tmp_path: Path, state_dir: Path) -> None:
    marker, reverted = tmp_path / "marker", tmp_path / "reverted"
    data = yaml.safe_load(write_scenario(tmp_path, marker, reverted).read_text())
    data["faults"][0]["duration"] = "1s"
    scenario = tmp_path / "short.yaml"
    scenario.write_text(yaml.safe_dump(data))
    result = run_chaosrunner("run", "--plain", str(scenario), env=os.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    assert reverted.exists() and not marker.exists()
    events = journal(state_dir)
    [outcome] = [e for e in events if e["type"] == "fault_outcome"]
    assert [(step["step"], step["exit_code"]) for step in outcome["targets"]] == [("revert", 0)]
    [injected] = [e for e in events if e["type"] == "fault_injected"]
    assert left_behind(injected["revert_record"]["label"]) == []


def test_kill_9_of_the_runner_then_recover_runs_the_revert(tmp_path: Path, state_dir: Path) -> None:
    marker, reverted = tmp_path / "marker", tmp_path / "reverted"
    scenario = write_scenario(tmp_path, marker, reverted)
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "] injected " in line:
            break
    else:
        raise AssertionError("the run ended before the fault was injected")
    process.kill()
    process.wait()
    [injected] = [e for e in journal(state_dir) if e["type"] == "fault_injected"]
    label = injected["revert_record"]["label"]
    assert marker.exists() and execution.marked_processes(label)  # the holder keeps the fault
    recovered = run_chaosrunner("recover", env=os.environ)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "reverted hold" in recovered.stdout
    assert reverted.exists() and not marker.exists()
    assert wait_until(lambda: left_behind(label) == [])
    events = journal(state_dir)
    assert events[-2]["type"] == "fault_reverted" and events[-2]["by"] == "recover"
    again = run_chaosrunner("recover", env=os.environ)  # nothing left: a no-op
    assert again.returncode == 0 and "reverted hold" not in again.stdout
