"""Which processes a process fault may hit: the selector, and the processes it never hits.

A selector names processes one way: a pid file (what systemd's ``PIDFile=``
and most daemons write), an exact name, or a regular expression over the
command line. Whatever it matches, these are never targets, and ``plan`` says
which rule protected what when nothing is left:

- pid 1, kernel threads, processes that already exited;
- chaosrunner itself: its own process and every parent up to pid 1 (killing
  the shell or the runner that started us would end the run with the fault
  still injected), any chaosrunner CLI, and every holder process (they are
  the dead-man's switches of other faults);
- daemons whose loss is a different incident from the one a scenario
  describes: init/systemd, dockerd, containerd, sshd, kubelet and the
  PostgreSQL postmaster (its backends may be hit; the postmaster may not);
- processes of other users, unless the selector sets ``allow_other_users``.
  A gameday on a shared host should not reach into someone else's processes
  by a loose regex; when that is the point, the scenario says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import FaultSelector
from chaosrunner.faults.process import procfs
from chaosrunner.faults.process.procfs import ProcessInfo

COMM_LIMIT = 15
"""The kernel keeps at most 15 characters of a process name (TASK_COMM_LEN - 1)."""

PROTECTED_NAMES = frozenset({"init", "systemd", "dockerd", "containerd", "sshd", "kubelet"})
POSTGRES_NAMES = frozenset({"postgres", "postmaster"})


class ProcessSelector(FaultSelector):
    pid_file: str | None = Field(None, min_length=1, description="file holding the target's pid")
    name: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="exact process name (/proc/<pid>/comm; a longer name is matched against the "
        "program's file name)",
    )
    cmdline: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="regular expression searched in the command line (arguments joined by spaces)",
    )
    allow_other_users: bool = Field(
        False, description="also match processes of other users than the one chaosrunner runs as"
    )

    @model_validator(mode="after")
    def _exactly_one_way(self) -> Self:
        ways = [way for way in ("pid_file", "name", "cmdline") if getattr(self, way) is not None]
        if len(ways) != 1:
            raise ValueError(f"give exactly one of pid_file, name or cmdline (found {ways or 'none'})")
        if self.cmdline is not None:
            try:
                re.compile(self.cmdline)
            except re.error as exc:
                raise ValueError(f"cmdline is not a valid regular expression: {exc}") from exc
        return self

    def describe(self) -> str:
        if self.pid_file is not None:
            return f"pid file {self.pid_file}"
        if self.name is not None:
            return f"name {self.name!r}"
        return f"command line matching /{self.cmdline}/"


def matches(selector: ProcessSelector, info: ProcessInfo) -> bool:
    """Does ``info`` match the name or cmdline selector (pid files are resolved separately)?"""
    if selector.name is not None:
        if len(selector.name) <= COMM_LIMIT:
            return info.comm == selector.name
        program = os.path.basename(info.argv[0]) if info.argv else ""
        return info.comm == selector.name[:COMM_LIMIT] and program == selector.name
    if selector.cmdline is not None:
        return re.search(selector.cmdline, info.command_line) is not None
    return False


def protection(
    info: ProcessInfo,
    *,
    ours: frozenset[int],
    uid: int,
    allow_other_users: bool,
    parent_name: str | None,
) -> str | None:
    """Why ``info`` may never be a target, or None when it may be."""
    if info.pid == 1:
        return "pid 1"
    if info.kernel_thread:
        return "a kernel thread"
    if info.exited:
        return "already exited"
    if info.pid in ours:
        return "chaosrunner itself or one of its parents"
    if procfs.is_holder(info):
        return "a chaosrunner holder (another fault's dead-man's switch)"
    if procfs.is_chaosrunner(info):
        return "a chaosrunner process"
    if info.comm in PROTECTED_NAMES:
        return f"{info.comm} is never a target"
    if info.comm in POSTGRES_NAMES and parent_name not in POSTGRES_NAMES:
        return "the PostgreSQL postmaster"
    if not allow_other_users and info.uid != uid:
        return f"owned by uid {info.uid}, not {uid} (set allow_other_users)"
    return None


def resolve(
    fault: str, selector: ProcessSelector, refuse: Callable[[ProcessInfo], str | None] | None = None
) -> list[ProcessInfo]:
    """The processes ``selector`` may hit; PlanRefused when it matches none that may be hit.

    ``refuse`` adds a kind's own rule (a reason, or None) to the protections.
    """
    if selector.pid_file is not None:
        matched = [_from_pid_file(fault, selector.pid_file)]
    else:
        matched = [info for info in procfs.all_processes() if matches(selector, info)]
    ours = frozenset(procfs.ancestry(os.getpid()))
    allowed: list[ProcessInfo] = []
    refused: list[str] = []
    for info in matched:
        parent = procfs.read_process(info.ppid) if info.ppid else None
        why = protection(
            info,
            ours=ours,
            uid=os.getuid(),
            allow_other_users=selector.allow_other_users,
            parent_name=parent.comm if parent else None,
        )
        if why is None and refuse is not None:
            why = refuse(info)
        if why is None:
            allowed.append(info)
        else:
            refused.append(f"{info.comm} (pid {info.pid}): {why}")
    if not allowed:
        detail = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        raise PlanRefused(
            f"fault {fault!r}: {selector.describe()} matched "
            + (f"only protected processes: {detail}" if refused else "no process")
        )
    return allowed


def _from_pid_file(fault: str, pid_file: str) -> ProcessInfo:
    try:
        # The pid is the first line (postmaster.pid and friends add more lines after it).
        lines = Path(pid_file).read_text(encoding="ascii", errors="replace").strip().splitlines()
    except OSError as exc:
        raise PlanRefused(f"fault {fault!r}: cannot read pid file {pid_file}: {exc.strerror}") from exc
    text = lines[0].strip() if lines else ""
    if not text.isdigit() or int(text) <= 0:
        raise PlanRefused(f"fault {fault!r}: pid file {pid_file} holds {text[:40]!r}, not a pid")
    info = procfs.read_process(int(text))
    if info is None:
        raise PlanRefused(f"fault {fault!r}: pid file {pid_file} names pid {text}, which is not running")
    return info
