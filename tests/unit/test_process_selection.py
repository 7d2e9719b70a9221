"""Process faults: selectors, protections and /proc identity, on this machine's real /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.process import procfs, selection
from chaosrunner.faults.process.kill import KILL_SIGNALS, KillParams, ProcessKill, signal_number
from chaosrunner.faults.process.pause import PauseParams, ProcessPause
from chaosrunner.faults.process.procfs import ProcessInfo
from chaosrunner.faults.process.selection import ProcessSelector


def info(**overrides: object) -> ProcessInfo:
    facts: dict[str, object] = {
        "pid": 4242,
        "ppid": 4000,
        "start_ticks": 100,
        "state": "S",
        "comm": "checkout",
        "uid": 1000,
        "flags": 0,
        "argv": ("/usr/bin/checkout", "--port", "8080"),
    }
    facts.update(overrides)
    return ProcessInfo(**facts)  # type: ignore[arg-type]


def why(process: ProcessInfo, *, allow_other_users: bool = False, parent: str | None = "bash") -> str | None:
    return selection.protection(
        process, ours=frozenset({10, 1}), uid=1000, allow_other_users=allow_other_users, parent_name=parent
    )


@pytest.fixture()
def sleeper() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    tag = f"crt-sleeper-{uuid.uuid4().hex[:10]}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", tag])
    yield child, tag
    child.kill()
    child.wait()


# ----------------------------------------------------------------------------- the selector


@pytest.mark.parametrize(
    "fields",
    [{}, {"name": "a", "cmdline": "b"}, {"pid_file": "/run/x.pid", "name": "x"}, {"cmdline": "("}],
)
def test_a_selector_names_processes_exactly_one_valid_way(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ProcessSelector(**fields)


def test_names_match_comm_exactly_and_long_names_match_the_program() -> None:
    assert selection.matches(ProcessSelector(name="checkout"), info())
    assert not selection.matches(ProcessSelector(name="check"), info())
    long_name = "checkout-service-worker"
    process = info(comm=long_name[:15], argv=(f"/opt/bin/{long_name}",))
    assert selection.matches(ProcessSelector(name=long_name), process)
    assert not selection.matches(ProcessSelector(name=long_name + "2"), process)


def test_cmdline_is_a_regular_expression_over_the_joined_arguments() -> None:
    assert selection.matches(ProcessSelector(cmdline=r"--port 80\d\d"), info())
    assert not selection.matches(ProcessSelector(cmdline=r"^--port"), info())


# ----------------------------------------------------------------------------- protections


@pytest.mark.parametrize(
    ("process", "reason"),
    [
        (info(pid=1), "pid 1"),
        (info(flags=procfs.PF_KTHREAD), "kernel thread"),
        (info(state="Z"), "already exited"),
        (info(pid=10), "chaosrunner itself"),
        (info(argv=(sys.executable, "-m", "chaosrunner.faults.holder", "{}")), "holder"),
        (info(argv=("/usr/local/bin/chaosrunner", "run", "x.yaml")), "a chaosrunner process"),
        (info(argv=("python3", "-m", "chaosrunner", "run")), "a chaosrunner process"),
        (info(comm="dockerd"), "never a target"),
        (info(comm="postgres"), "postmaster"),
        (info(uid=0), "owned by uid 0"),
    ],
)
def test_protected_processes_are_never_targets(process: ProcessInfo, reason: str) -> None:
    assert reason in (why(process) or "")


def test_backends_of_postgres_and_other_users_when_allowed_may_be_targets() -> None:
    assert why(info(comm="postgres"), parent="postgres") is None
    assert why(info(uid=0), allow_other_users=True) is None
    assert why(info()) is None


# ----------------------------------------------------------------------------- /proc and signals


def test_this_process_is_read_from_proc_with_its_start_time() -> None:
    me = procfs.read_process(os.getpid())
    assert me is not None and me.start_ticks == procfs.process_start_ticks(os.getpid())
    assert me.uid == os.getuid() and me.argv[0]
    assert procfs.ancestry(os.getpid())[0] == os.getpid() and 1 in procfs.ancestry(os.getpid())


def test_a_recycled_pid_is_never_signalled(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    child, _ = sleeper
    ticks = procfs.process_start_ticks(child.pid)
    assert ticks is not None
    assert not procfs.send_signal(child.pid, ticks + 1, signal.SIGKILL)
    assert procfs.is_alive(child.pid, ticks)
    assert procfs.send_signal(child.pid, ticks, signal.SIGKILL)
    child.wait(5)
    assert not procfs.send_signal(child.pid, ticks, signal.SIGKILL)  # gone: False, no error


def test_resolve_finds_the_child_and_never_this_process(
    sleeper: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    child, tag = sleeper
    assert [p.pid for p in selection.resolve("f", ProcessSelector(cmdline=tag))] == [child.pid]
    pid_file = tmp_path / "me.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    with pytest.raises(PlanRefused, match="chaosrunner itself"):
        selection.resolve("f", ProcessSelector(pid_file=str(pid_file)))


def test_a_selector_that_matches_nothing_is_refused() -> None:
    with pytest.raises(PlanRefused, match="matched no process"):
        selection.resolve("f", ProcessSelector(cmdline=f"no-such-process-{uuid.uuid4().hex}"))


@pytest.mark.parametrize(
    ("content", "message"), [("", "not a pid"), ("abc\n", "not a pid"), ("999999999", "not running")]
)
def test_bad_pid_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(content)
    with pytest.raises(PlanRefused, match=message):
        selection.resolve("f", ProcessSelector(pid_file=str(pid_file)))


def test_a_pid_file_with_more_lines_uses_the_first(
    sleeper: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    child, _ = sleeper
    pid_file = tmp_path / "postmaster.pid"
    pid_file.write_text(f"{child.pid}\n/var/lib/data\n1700000000\n")
    assert [p.pid for p in selection.resolve("f", ProcessSelector(pid_file=str(pid_file)))] == [child.pid]


# ----------------------------------------------------------------------------- plans


def test_kill_plan_records_pid_and_start_time_but_no_command_line(
    sleeper: tuple[subprocess.Popen[bytes], str],
) -> None:
    child, tag = sleeper
    plan = ProcessKill().plan(
        FaultRequest(
            run_id="r",
            name="kill",
            params=KillParams(signal="SIGKILL"),
            selector=ProcessSelector(cmdline=tag),
        )
    )
    (victim,) = plan.revert_record["victims"]
    comm = (
        Path(f"/proc/{child.pid}/comm").read_text().strip()
    )  # python or python3, as the interpreter is named
    assert victim == {
        "pid": child.pid,
        "start_ticks": procfs.process_start_ticks(child.pid),
        "comm": comm,
    }
    assert (
        tag not in str(plan.revert_record["victims"])
        and plan.summary == f"send SIGKILL to {comm} (pid {child.pid})"
    )
    assert procfs.is_alive(child.pid, victim["start_ticks"])  # plan has no side effects


def test_the_blast_radius_maximum_refuses_a_wider_plan(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    _, tag = sleeper
    with pytest.raises(PlanRefused, match="asks for 2 targets"):
        ProcessPause().plan(
            FaultRequest(
                run_id="r",
                name="pause",
                params=PauseParams(),
                selector=ProcessSelector(cmdline=tag),
                blast_radius=BlastRadius(mode="count", count=2),
            )
        )


def test_pause_lifetime_is_duration_plus_grace(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    _, tag = sleeper
    plan = ProcessPause().plan(
        FaultRequest(
            run_id="r/1",
            name="pause",
            params=PauseParams(grace="3s"),
            selector=ProcessSelector(cmdline=tag),
            duration=timedelta(seconds=20),
        )
    )
    assert plan.revert_record["lifetime"] == 23 and plan.revert_record["label"] == "pause-r-1-pause"


def test_pause_refuses_a_process_someone_else_stopped(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    child, tag = sleeper
    os.kill(child.pid, signal.SIGSTOP)
    try:
        ticks = procfs.process_start_ticks(child.pid) or 0
        for _ in range(500):
            if procfs.state_of(child.pid, ticks) == "T":
                break
            time.sleep(0.01)
        with pytest.raises(PlanRefused, match="already stopped"):
            ProcessPause().plan(
                FaultRequest(
                    run_id="r", name="pause", params=PauseParams(), selector=ProcessSelector(cmdline=tag)
                )
            )
    finally:
        os.kill(child.pid, signal.SIGCONT)


def test_a_fault_without_selector_is_refused() -> None:
    with pytest.raises(PlanRefused, match="needs a selector"):
        ProcessKill().plan(FaultRequest(run_id="r", name="kill", params=KillParams()))


def test_only_terminating_signals_are_accepted() -> None:
    assert signal_number("SIGTERM") == signal.SIGTERM and "SIGSTOP" not in KILL_SIGNALS
    with pytest.raises(ValidationError):
        KillParams(signal="SIGSTOP")
    with pytest.raises(FaultError):
        signal_number("SIGCONT")
