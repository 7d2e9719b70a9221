"""The fault proxy as a holder process: it lives until revert or its deadline.

``chaosrunner.faults.holder.spawn`` starts ``python -m chaosrunner.faults.holder``
with this module's ``hold``; the proxy then belongs to no chaosrunner process.
If the run dies, the proxy still ends at its deadline and takes its iptables
rules with it - the dead-man's switch the docs promise.

In transparent mode (``docker.network-latency`` without netem) the holder
first enters the target's network namespace, so the proxy listens where the
REDIRECT rule points and its upstream connections leave from the target's
own address. It installs the rules itself only once the proxy is listening
(a REDIRECT to a closed port would refuse every connection) and removes them
in a ``finally``: on SIGTERM (revert), at the deadline, and on an error.
Only SIGKILL skips that; ``revert`` removes the rules by their comment then.

While held, it polls the control file (see ``control``) and reports the
generation in force and its counters in ``status.json``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaosrunner.errors import FaultError
from chaosrunner.faults.holder import HolderSession, process_start_ticks
from chaosrunner.faults.proxy import redirect
from chaosrunner.faults.proxy.control import POLL_INTERVAL, ControlWatcher, ProxyStatus, write_status
from chaosrunner.faults.proxy.netns import enter_netns
from chaosrunner.faults.proxy.server import Address, ProxyServer
from chaosrunner.faults.proxy.toxics import ToxicSet

MODULE = __name__
STATUS_EVERY = 1.0
"""Seconds between counter reports in status.json (a change of toxics is reported at once)."""

log = logging.getLogger("chaosrunner.proxy")


class Transparent(BaseModel):
    """Where and how to intercept: the target namespace and the REDIRECT rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: int = Field(gt=1)
    netns_inode: int
    comment: str
    mark: int
    ports: list[int] = Field(default_factory=list)
    destinations: list[str] = Field(default_factory=list)


class HolderSpec(BaseModel):
    """What ``hold`` is given (on the command line: no secrets in here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: str
    control_dir: str
    listen: str
    upstream: str | None = None
    toxics: ToxicSet
    transparent: Transparent | None = None


def hold(raw_spec: dict[str, Any], session: HolderSession) -> None:
    try:
        _hold(HolderSpec.model_validate(raw_spec), session)
    except FaultError as exc:
        # One readable line for spawn's error (it shows the log's tail), not a traceback.
        raise SystemExit(str(exc)) from None


def _hold(spec: HolderSpec, session: HolderSession) -> None:
    directory = Path(spec.control_dir)
    transparent = spec.transparent
    if transparent is not None:
        # Before any socket or thread: both inherit the namespace from here on.
        enter_netns(transparent.pid, transparent.netns_inode)
    watcher = ControlWatcher(directory)
    toxics = watcher.poll() or spec.toxics
    server = ProxyServer(
        Address.parse(spec.listen),
        toxics,
        upstream=Address.parse(spec.upstream) if spec.upstream else None,
        mark=transparent.mark if transparent else None,
        fault=spec.fault,
    )
    address = server.start()
    log.info("listening on %s, relaying to %s", address, spec.upstream or "original destinations")
    try:
        if transparent is not None:
            redirect.install(_rules(transparent, address.port))
            log.info("redirect rules installed (%s)", transparent.comment)
        held = _Held(server, watcher, directory, address, toxics.generation)
        held.report()
        session.ready()
        held.serve(session)
    finally:
        if transparent is not None:
            _remove_rules(transparent.comment)
        server.stop()
        log.info("stopped (%s)", "deadline" if session.remaining() <= 0 else "asked to")


def _rules(transparent: Transparent, proxy_port: int) -> redirect.RedirectRules:
    return redirect.RedirectRules(
        comment=transparent.comment,
        mark=transparent.mark,
        proxy_port=proxy_port,
        ports=tuple(transparent.ports),
        destinations=tuple(transparent.destinations),
    )


def _remove_rules(comment: str) -> None:
    try:
        removed = redirect.remove(comment)
    except Exception:  # the holder must still stop; revert removes the rules as the fallback
        log.exception("could not remove redirect rules %s", comment)
    else:
        log.info("removed %d redirect rules", removed)


class _Held:
    """The running proxy as the holder's main loop sees it."""

    def __init__(
        self, server: ProxyServer, watcher: ControlWatcher, directory: Path, address: Address, generation: int
    ) -> None:
        self.server = server
        self.watcher = watcher
        self.directory = directory
        self.address = address
        self.generation = generation

    def serve(self, session: HolderSession) -> None:
        """Until SIGTERM or the deadline: apply control-file changes, report counters."""
        last_report = time.monotonic()
        while session.remaining() > 0 and not session.stopping.wait(min(POLL_INTERVAL, session.remaining())):
            changed = self.watcher.poll()
            if changed is not None and changed.generation != self.generation:
                self.server.replace_toxics(changed)
                self.generation = changed.generation
                log.info("toxics now %s", [(t.name, t.enabled) for t in changed.toxics])
            elif time.monotonic() - last_report < STATUS_EVERY:
                continue
            self.report()
            last_report = time.monotonic()

    def report(self) -> None:
        pid = os.getpid()
        status = ProxyStatus(
            pid=pid,
            start_ticks=process_start_ticks(pid) or 0,
            address=str(self.address),
            generation=self.generation,
            counts=self.server.snapshot_counts(),
        )
        write_status(self.directory, status)
