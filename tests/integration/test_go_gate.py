"""The run sheet on a live gameday: the go/no-go gate and timed injects, on the real Prometheus.

Most runs are `chaosrunner run` in its own process, decided with `chaosrunner
go` (or `abort`) from another, as a facilitator would; the gate must hold the
faults back ("planned", nothing injected) until go, and every way out of the
wait must end the run aborted with nothing to revert. The abort monitor is
shown running during the wait with a real metric crossing its threshold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.rundir import RunDir
from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.gameday.run_sheet import record_checklist
from chaosrunner.gameday.watch import GamedayWatcher
from chaosrunner.observe.prometheus import PrometheusHTTP
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.scenario.models import Mode
from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]
WAITING = "waiting for go/no-go from the facilitator"
PREREQUISITES = ["Everyone can open the dashboard", "The pager routes to the gameday channel"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    state = tmp_path / "state"
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(state))  # this process reads the same runs
    clean = {key: value for key, value in os.environ.items() if key != "CHAOSRUNNER_TOKEN"}
    return {**clean, "CHAOSRUNNER_STATE_DIR": str(state), "PYTHONPATH": str(REPO), "USER": "fran"}


def scenario(tmp_path: Path, prometheus_url: str, **run_sheet: Any) -> Path:
    document = {
        "metadata": {"title": "Go gate", "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
        "target": {"prometheus": prometheus_url},
        "steady_state": [{"name": "up", "expr": "vector(1)", "comparator": ">=", "threshold": 1}],
        "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "go-gate"}}],
        "gameday": {"mode": "gameday", "max_duration": "90s", "check_interval": "200ms"},
        "run_sheet": {"prerequisites": PREREQUISITES, "go_no_go": True, **run_sheet},
    }
    path = tmp_path / "go-gate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


class LiveRun:
    """`chaosrunner run` in its own process; its console lines collected as they come."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.state = Path(env["CHAOSRUNNER_STATE_DIR"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chaosrunner", "run", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_line(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if text in line), None)
            if found:
                return found
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"no console line with {text!r}; got:\n{''.join(self.lines)}")

    @property
    def run_id(self) -> str:
        [folder] = list((self.state / "runs").iterdir())
        return folder.name

    def events(self) -> list[dict[str, Any]]:
        journal = self.state / "runs" / self.run_id / "journal.jsonl"
        return [json.loads(line) for line in journal.read_text().splitlines()]

    def wait_event(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((event for event in self.events() if predicate(event)), None)
            if found:
                return found
            time.sleep(0.05)
        pytest.fail(f"no such event in the journal: {[e['type'] for e in self.events()]}")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        _, errors = self.process.communicate(timeout=timeout)
        self._reader.join(timeout=5)
        return self.process.returncode, errors

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def live_runs() -> Iterator[list[LiveRun]]:
    runs: list[LiveRun] = []
    yield runs
    for run in runs:
        run.kill()


def start(path: Path, env: dict[str, str], live_runs: list[LiveRun]) -> LiveRun:
    run = LiveRun(path, env)
    live_runs.append(run)
    run.wait_line(WAITING)
    return run


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def phases(events: list[dict[str, Any]]) -> list[str]:
    return [event["phase"] for event in events if event["type"] == "phase"]


def assert_nothing_injected(events: list[dict[str, Any]]) -> None:
    assert "fault_planned" in types(events)
    assert not {"fault_injecting", "fault_injected", "fault_reverting", "fault_reverted"} & set(types(events))
    assert "injecting" not in phases(events)


def test_the_run_waits_for_go_then_injects_and_gives_the_room_its_injects(
    tmp_path: Path, env: dict[str, str], prometheus_url: str, live_runs: list[LiveRun]
) -> None:
    path = scenario(
        tmp_path,
        prometheus_url,
        injects=[
            {"name": "hint", "at": "1s", "audience": "everyone", "text": "Look at the connection pool"},
            # Due late enough that the `mark` below (a fresh process, slow on a loaded machine) comes first.
            {"name": "customer-report", "at": "12s", "unless": "detected", "text": "Customers report errors"},
        ],
    )
    run = start(path, env, live_runs)
    time.sleep(1.0)  # a while in the wait: the fault must still be only planned
    assert_nothing_injected(run.events())
    assert phases(run.events())[-1] == "awaiting_go"

    record_checklist(RunDir.find(run.run_id), 0, True, by="fran")  # the page's tick, this process
    went = run_chaosrunner("go", run.run_id, "--reason", "room ready", env=env)
    assert went.returncode == 0, went.stderr
    assert "recorded GO by fran" in went.stdout and ": room ready" in went.stdout
    assert f"not ticked on the checklist: {PREREQUISITES[1]}" in went.stdout
    again = run_chaosrunner("go", run.run_id, "--no-go", "--by", "gus", env=env)
    assert again.returncode == 2
    assert "not awaiting go: fran already decided go" in again.stderr and "Traceback" not in again.stderr

    run.wait_line("injected flag")
    marked = run_chaosrunner("mark", run.run_id, "detected", "--by", "alice", "--role", "responder", env=env)
    assert marked.returncode == 0, marked.stderr
    run.wait_event(lambda e: e["type"] == "inject_skipped")
    fired = run.wait_event(lambda e: e["type"] == "inject_fired")
    assert run_chaosrunner("mark", run.run_id, "mitigated", "--by", "alice", env=env).returncode == 0
    code, errors = run.finish()
    assert code == 0, errors
    assert "Traceback" not in errors

    events = run.events()
    assert phases(events)[:4] == ["planning", "preflight", "awaiting_go", "injecting"]
    decision = next(e for e in events if e["type"] == "go_decision")
    assert (decision["decision"], decision["by"], decision["role"], decision["unchecked"]) == (
        "go",
        "fran",
        "facilitator",
        PREREQUISITES[1:],
    )
    assert types(events).index("go_decision") < types(events).index("fault_injecting")
    injected = next(e for e in events if e["type"] == "fault_injected")
    assert (fired["name"], fired["text"], fired["audience"], fired["at_offset_s"]) == (
        "hint",
        "Look at the connection pool",
        "everyone",
        1.0,
    )
    assert 1.0 <= fired["offset"] - injected["offset"] < 6.0  # due at t0+1s; the watcher ticks every 200ms
    skipped = next(e for e in events if e["type"] == "inject_skipped")
    assert skipped["name"] == "customer-report"
    assert skipped["reason"].startswith("detected at t0+") and skipped["reason"].endswith(" by alice")
    assert [e["name"] for e in events if e["type"] in ("inject_fired", "inject_skipped")].count("hint") == 1
    detected = next(e for e in events if e["type"] == "responder" and e["event"] == "detected")
    assert detected["role"] == "responder"
    console = "".join(run.lines)
    assert "GO from fran (facilitator): room ready" in console
    assert "inject hint (to everyone, t0+1s): Look at the connection pool" in console


def test_no_go_ends_the_run_aborted_with_nothing_injected(
    tmp_path: Path, env: dict[str, str], prometheus_url: str, live_runs: list[LiveRun]
) -> None:
    run = start(scenario(tmp_path, prometheus_url), env, live_runs)
    said = run_chaosrunner("go", run.run_id, "--no-go", "--reason", "the pager is broken", env=env)
    assert said.returncode == 0, said.stderr
    assert "recorded NO-GO by fran" in said.stdout
    code, errors = run.finish()
    assert code == 1, errors
    events = run.events()
    abort = next(e for e in events if e["type"] == "abort")
    assert (abort["cause"], abort["detail"]) == ("no_go", "fran said no-go: the pager is broken")
    assert_nothing_injected(events)
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "aborted"
    assert "ABORT (no_go): fran said no-go: the pager is broken" in "".join(run.lines)


def test_no_decision_within_go_timeout_aborts_the_run(
    tmp_path: Path, env: dict[str, str], prometheus_url: str, live_runs: list[LiveRun]
) -> None:
    run = start(scenario(tmp_path, prometheus_url, go_timeout="2s"), env, live_runs)
    code, errors = run.finish()
    assert code == 1, errors
    events = run.events()
    waiting = next(e for e in events if e["type"] == "phase" and e["phase"] == "awaiting_go")
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "go_timeout"
    assert abort["detail"] == "no go/no-go decision within 2s: nothing was injected"
    assert 2.0 <= abort["offset"] - waiting["offset"] < 10.0
    assert_nothing_injected(events)
    late = run_chaosrunner("go", run.run_id, env=env)
    assert late.returncode == 2 and "has finished" in late.stderr


def test_chaosrunner_abort_ends_the_wait(
    tmp_path: Path, env: dict[str, str], prometheus_url: str, live_runs: list[LiveRun]
) -> None:
    run = start(scenario(tmp_path, prometheus_url), env, live_runs)
    stopped = run_chaosrunner("abort", run.run_id, "--reason", "room emptied", env=env)
    assert stopped.returncode == 0, stopped.stderr
    code, errors = run.finish()
    assert code == 1, errors
    events = run.events()
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "operator" and "room emptied" in abort["detail"]
    assert_nothing_injected(events)
    assert "go_decision" not in types(events)


# -- the runner in this process: the abort monitor during the wait, automated mode ---------


@pytest.fixture
def _in_process_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


def run_in_thread(runner: Runner) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        outcome["result"] = runner.run()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


@pytest.mark.usefixtures("_in_process_state")
def test_an_abort_condition_ends_the_wait(
    tmp_path: Path, prometheus_url: str, pushgateway: Any, rig: Any
) -> None:
    pushgateway.push("chaosrunner_test_errors", 0)
    expr = f'max(chaosrunner_test_errors{{job="{pushgateway.job}"}})'
    assert rig.wait_for(lambda: rig.prom_query(prometheus_url, expr), timeout=20)
    path = scenario(tmp_path, prometheus_url)
    data = yaml.safe_load(path.read_text())
    data["abort_conditions"] = [{"name": "errors", "expr": expr, "comparator": ">", "threshold": 5}]
    path.write_text(yaml.safe_dump(data))
    events: list[dict[str, Any]] = []
    runner = Runner(
        load_scenario(path),
        str(path),
        PrometheusHTTP(prometheus_url),
        RunOptions(handle_signals=False),
        [events.append],
    )
    thread, outcome = run_in_thread(runner)
    assert rig.wait_for(lambda: "awaiting_go" in phases(events), timeout=20)
    pushgateway.push("chaosrunner_test_errors", 42)
    thread.join(60)
    assert outcome["result"].status is RunStatus.ABORTED
    abort = next(e for e in events if e["type"] == "abort")
    assert abort["cause"] == "condition" and "errors" in abort["detail"]
    assert_nothing_injected(events)
    assert not ACTIVE_FLAGS


@pytest.mark.usefixtures("_in_process_state")
def test_an_automated_run_ignores_the_run_sheet(tmp_path: Path, prometheus_url: str) -> None:
    path = scenario(tmp_path, prometheus_url, injects=[{"name": "hint", "at": "0s", "text": "t"}])
    data = yaml.safe_load(path.read_text())
    data["faults"][0]["duration"] = "1s"
    path.write_text(yaml.safe_dump(data))
    events: list[dict[str, Any]] = []
    metrics = PrometheusHTTP(prometheus_url)
    runner = Runner(
        load_scenario(path), str(path), metrics, RunOptions(handle_signals=False, mode=Mode.AUTOMATED)
    )
    watcher = GamedayWatcher(runner, metrics)  # as `chaosrunner run` attaches it in either mode
    runner.listeners += [events.append, watcher]
    try:
        result = runner.run()
    finally:
        watcher.close()
    assert result.status is RunStatus.COMPLETED, result.detail
    assert "awaiting_go" not in phases(events)
    assert "fault_injected" in types(events)
    assert not {"inject_fired", "inject_skipped"} & set(types(events))
    assert not watcher.errors
