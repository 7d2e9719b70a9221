"""Switching a running proxy's toxics on and off: a control file the holder watches.

Each proxy holder owns a directory under the state dir
(``$CHAOSRUNNER_STATE_DIR/proxy/<label>/``) with two small JSON files:

``toxics.json``
    The *desired* toxics (a ``ToxicSet``), written by whoever controls the
    run: the engine, ``chaosrunner`` from another terminal, a facilitator
    with an editor. Replaced atomically (write + rename) under a lock, with a
    generation number that grows on every change.
``status.json``
    What the holder *applied*: the generation in force, its pid and start
    time, the address it listens on, and counters (connections, resets,
    stalls, answered requests). ``switch`` waits for the generation to appear
    here, so a caller knows the change is live, not just requested.

Why a file rather than a control socket (Toxiproxy's HTTP API):

- The holder of ``docker.network-latency`` lives in the *container's* network
  namespace. A control port there would be reachable by the target's own
  processes and unreachable from the host except through ``nsenter``; a file
  stays on the host's filesystem, since entering a network namespace leaves
  the mount namespace alone.
- No listener means nothing to secure: access is the state dir's permissions.
- It is durable and readable: ``cat`` shows what is wanted and what is in
  force, and ``chaosrunner recover`` after a crash can read both without
  talking to anything.
- Any process can use it with no client library, and an atomic rename makes a
  half-written control file impossible.

The price is a polling delay (``POLL_INTERVAL``, 50 ms) between a change and
its effect, small against gameday time scales.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chaosrunner.errors import FaultError
from chaosrunner.faults.proxy.toxics import ToxicSet
from chaosrunner.statedir import state_dir

POLL_INTERVAL = 0.05
TOXICS_FILE = "toxics.json"
STATUS_FILE = "status.json"
LOCK_FILE = ".lock"


class ProxyStatus(BaseModel):
    """What a proxy holder reports about itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: int
    start_ticks: int
    address: str = Field(description="host:port the proxy listens on")
    generation: int = Field(description="generation of toxics.json in force")
    counts: dict[str, int] = Field(default_factory=dict)


def proxy_dir(label: str) -> Path:
    """The control directory of the proxy holder called ``label``."""
    return state_dir() / "proxy" / label


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True))
    temporary.replace(path)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_toxics(directory: Path, toxics: ToxicSet) -> None:
    with _locked(directory):
        _write_atomically(directory / TOXICS_FILE, toxics.model_dump(mode="json"))


def read_toxics(directory: Path) -> ToxicSet:
    path = directory / TOXICS_FILE
    try:
        return ToxicSet.model_validate_json(path.read_text())
    except FileNotFoundError as exc:
        raise FaultError(f"no fault proxy is controlled from {directory} (missing {TOXICS_FILE})") from exc
    except ValidationError as exc:
        raise FaultError(f"{path} is not a valid toxic set: {exc}") from exc


def write_status(directory: Path, status: ProxyStatus) -> None:
    _write_atomically(directory / STATUS_FILE, status.model_dump(mode="json"))


def read_status(directory: Path) -> ProxyStatus | None:
    """The holder's last report, or None before it started (or if the file is unreadable)."""
    try:
        return ProxyStatus.model_validate_json((directory / STATUS_FILE).read_text())
    except (OSError, ValidationError):
        return None


def switch(directory: Path, toxic: str, enabled: bool, *, wait: float = 5.0) -> ToxicSet:
    """Switch one toxic of a running proxy on or off; return once the holder applied it.

    Raises FaultError when the toxic does not exist or the holder did not
    apply the change within ``wait`` seconds (it may have ended: see
    ``check``). ``wait=0`` returns without waiting.
    """
    with _locked(directory):
        updated = read_toxics(directory).switched(toxic, enabled)
        _write_atomically(directory / TOXICS_FILE, updated.model_dump(mode="json"))
    deadline = time.monotonic() + wait
    while wait:
        status = read_status(directory)
        if status is not None and status.generation >= updated.generation:
            return updated
        if time.monotonic() >= deadline:
            raise FaultError(
                f"the fault proxy controlled from {directory} did not apply the change within {wait:g}s"
            )
        time.sleep(POLL_INTERVAL / 2)
    return updated


class ControlWatcher:
    """The holder's side: notices a new ``toxics.json`` and hands back the set to apply."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: tuple[int, int, int] | None = None

    def poll(self) -> ToxicSet | None:
        """The new toxic set if the file changed since the last poll, else None.

        An unreadable or invalid file is ignored (the toxics in force stay):
        a typo in a hand-edited control file must not end the fault.
        """
        try:
            stat = (self.directory / TOXICS_FILE).stat()
        except OSError:
            return None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._seen:
            return None
        self._seen = stamp
        try:
            return read_toxics(self.directory)
        except FaultError:
            return None
