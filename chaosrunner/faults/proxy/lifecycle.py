"""Starting, finding and stopping proxy holders: shared by every kind that uses the proxy.

The ``proxy.*`` kinds and the proxy mechanism of ``docker.network-latency`` /
``docker.network-loss`` all run the same holder; this module is the one place
that knows its label, its control directory and how to stop it.

Stopping must work from a revert record that never learnt the holder's pid
(inject died between spawning it and returning): the holder writes its pid
and start time into ``status.json`` as soon as it listens, so ``stop`` finds
it by label alone. A pid is trusted only together with its start time, so a
recycled pid is never signalled.
"""

from __future__ import annotations

import re
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from chaosrunner.faults.holder import HolderRecord, is_alive, spawn
from chaosrunner.faults.holder import stop as stop_holder
from chaosrunner.faults.proxy import holder as proxy_holder
from chaosrunner.faults.proxy.control import proxy_dir, read_status, write_toxics
from chaosrunner.faults.proxy.toxics import ToxicSet

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def holder_label(run_id: str, fault: str, target: str = "") -> str:
    """A file-name-safe label, unique per run, fault and target."""
    parts = ["proxy", run_id, fault, *([target] if target else [])]
    return _UNSAFE.sub("_", "-".join(parts))[:120]


def hold_seconds(duration: timedelta | None, hold_limit: timedelta, grace: timedelta) -> float:
    """How long a holder may live: the fault's duration (or the limit) plus the grace."""
    return (duration or hold_limit).total_seconds() + grace.total_seconds()


def start(label: str, spec: dict[str, Any], toxics: ToxicSet, seconds: float) -> HolderRecord:
    """Write the control file, then spawn the holder; returns once the proxy is in place."""
    directory = proxy_dir(label)
    write_toxics(directory, toxics)
    full_spec = {**spec, "control_dir": str(directory), "toxics": toxics.model_dump(mode="json")}
    return spawn(proxy_holder.MODULE, full_spec, deadline=time.time() + seconds, label=label)


def _known_holder(label: str, record: dict[str, Any] | None) -> HolderRecord | None:
    if record is not None:
        return HolderRecord.from_dict(record)
    status = read_status(proxy_dir(label))
    if status is None:
        return None
    return HolderRecord(status.pid, status.start_ticks, deadline=0.0, label=label, log="")


def alive(label: str, record: dict[str, Any] | None) -> bool:
    holder = _known_holder(label, record)
    return holder is not None and is_alive(holder)


def stop(label: str, record: dict[str, Any] | None) -> None:
    """Stop the holder (it removes its own rules) and drop its control directory. Idempotent."""
    holder = _known_holder(label, record)
    if holder is not None:
        stop_holder(holder)
    shutil.rmtree(proxy_dir(label), ignore_errors=True)


def control_dir(label: str) -> Path:
    return proxy_dir(label)
