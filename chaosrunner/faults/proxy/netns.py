"""Entering another process's network namespace, and telling namespaces apart.

The transparent proxy must listen *inside* the target container's network
namespace, where the REDIRECT rule sends the container's connections. Python
3.11 has no ``os.setns`` (3.12 does), so the holder calls libc's ``setns``
through ctypes before it opens any socket or starts any thread; threads and
children it creates afterwards inherit the namespace.

A namespace is identified by the inode of ``/proc/PID/ns/net``, recorded at
plan time and checked on the opened file descriptor before entering: a pid
recycled by another process, or a container restarted into a fresh namespace,
is then never mistaken for the target.
"""

from __future__ import annotations

import ctypes
import os

from chaosrunner.errors import FaultError

CLONE_NEWNET = 0x40000000


def netns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def netns_inode(pid: int) -> int | None:
    """Identity of ``pid``'s network namespace, or None if the process is gone or hidden."""
    try:
        return os.stat(netns_path(pid)).st_ino
    except OSError:
        return None


def same_netns(pid: int, inode: int) -> bool:
    return netns_inode(pid) == inode


def nsenter_prefix(pid: int) -> list[str]:
    """argv prefix that runs a command in ``pid``'s network namespace (from the host)."""
    return ["nsenter", "-t", str(pid), "-n"]


def enter_netns(pid: int, inode: int) -> None:
    """Move the calling thread into ``pid``'s network namespace, if it is still ``inode``."""
    try:
        fd = os.open(netns_path(pid), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise FaultError(f"cannot open the network namespace of pid {pid}: {exc.strerror}") from exc
    try:
        if os.fstat(fd).st_ino != inode:
            raise FaultError(
                f"pid {pid} is no longer in the planned network namespace (the container restarted?)"
            )
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise FaultError(
                f"cannot enter the network namespace of pid {pid}: {os.strerror(errno)} "
                "(needs CAP_SYS_ADMIN: run chaosrunner as root)"
            )
    finally:
        os.close(fd)
