"""Reaching a container's process and network namespace from the host.

Two Docker faults cannot be done through the Engine API alone:

- a kill that Docker's restart policy treats as a crash. ``docker kill`` marks
  the container as stopped by hand, so ``restart: always`` does *not* bring it
  back; a signal sent straight to the container's main process looks like a
  crash (an OOM kill, a segfault) and the policy applies, which is what a
  gameday wants to learn about;
- iptables rules inside the container's network namespace (``nsenter -t PID
  -n iptables ...``), which work whatever the image holds. ``docker exec
  --privileged`` would need iptables in the image and is refused on this
  machine ("unable to apply caps").

Both need the daemon on this machine and its pids visible in our /proc. A pid
from ``docker inspect`` is only trusted after /proc/PID/cgroup proves it belongs
to that container, so a recycled pid - or a daemon on another host whose pids
mean nothing here - is never signalled or entered.

Commands run as argument lists (never a shell): scenario values can reach them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from chaosrunner.errors import FaultError
from chaosrunner.faults.docker.snapshot import ContainerInfo

COMMAND_TIMEOUT = 20.0


def host_process_problem(container: ContainerInfo, proc: Path = Path("/proc")) -> str | None:
    """Why this host cannot reach ``container``'s main process, or None when it can."""
    if not container.running or container.pid <= 0:
        return "is not running"
    if container.pid == 1:
        return "reports pid 1 (its daemon runs in another pid namespace than chaosrunner)"
    try:
        cgroups = (proc / str(container.pid) / "cgroup").read_text()
    except OSError:
        return f"has pid {container.pid}, which this host cannot see (is the Docker daemon remote?)"
    if container.id not in cgroups:
        return (
            f"has pid {container.pid}, but that process here is not in the container's cgroup "
            "(is the Docker daemon remote, or chaosrunner in another pid namespace?)"
        )
    return None


def shares_host_network(container: ContainerInfo, proc: Path = Path("/proc")) -> bool:
    """True when the container's network namespace is the host's (``--network host``)."""
    if container.network_mode == "host":
        return True
    try:
        theirs = os.stat(proc / str(container.pid) / "ns" / "net").st_ino
        ours = os.stat(proc / "1" / "ns" / "net").st_ino
    except OSError:
        return False
    return theirs == ours


def verified_pid(container: ContainerInfo) -> int:
    problem = host_process_problem(container)
    if problem:
        raise FaultError(f"container {container.name} {problem}")
    return container.pid


def missing_tools(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def nsenter_net(pid: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the network namespace of ``pid`` (and nothing else of it)."""
    return ["nsenter", "--target", str(pid), "--net", "--", *argv]


def run(argv: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run a host command; a missing binary or a hang becomes a FaultError naming ``what``."""
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except FileNotFoundError as exc:
        raise FaultError(f"{what}: {argv[0]!r} is not installed on this host") from exc
    except subprocess.TimeoutExpired as exc:
        raise FaultError(f"{what}: {argv[0]!r} did not finish in {COMMAND_TIMEOUT:g}s") from exc


def signal_process(container: ContainerInfo, signal_number: int) -> None:
    """Signal the container's main process from the host, as a crash would."""
    pid = verified_pid(container)
    try:
        os.kill(pid, signal_number)
    except ProcessLookupError:
        return  # it died on its own meanwhile: the effect we wanted
    except PermissionError as exc:
        raise FaultError(f"not allowed to signal container {container.name}'s process {pid}") from exc
