"""Host-process faults (VMs, systemd hosts): ``process.kill`` and ``process.pause``.

``procfs`` reads /proc and signals a process only while its (pid, start time)
still match; ``selection`` turns a selector into processes and keeps the
protected ones out; ``victims`` is how a target sits in a revert record. Each
kind lives in its own module and registers itself on import.
"""

from chaosrunner.faults.process import kill, pause

__all__ = ["kill", "pause"]
