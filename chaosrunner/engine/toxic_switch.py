"""Switching a live run's fault-proxy toxics on and off, from any terminal.

A facilitator turns latency off to see whether the team's fix was the right
one, then on again. Every proxy holder that runs on this host (``proxy.*``,
and ``docker.network-latency``/``-loss`` with ``mechanism: proxy``) has a
control directory under the state dir named after its run and fault
(``chaosrunner.faults.proxy.control``); switching writes there and waits until
the holder says the change is in force, then journals ``toxic_switched`` so
the debrief timeline shows it. Proxies inside Kubernetes pods keep their
control files in the pod, so they cannot be switched from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import FaultError, UsageError
from chaosrunner.faults.proxy import control, lifecycle
from chaosrunner.faults.proxy.lifecycle import holder_label
from chaosrunner.faults.proxy.toxics import ToxicSet


@dataclass(frozen=True)
class ProxyView:
    """One live proxy of a fault, as its control files describe it."""

    fault: str
    control_dir: Path
    address: str
    toxics: ToxicSet


def _fault_names(run: RunDir) -> list[str]:
    return [str(event["fault"]) for event in run.events() if event.type == "fault_planned"]


def _owner(label: str, run_id: str, faults: list[str]) -> str | None:
    """The fault a holder label belongs to: the longest fault label it starts with.

    Holders of one fault are ``<label>`` or ``<label>-<container>``; the longest
    match keeps fault ``db`` from claiming fault ``db-replica``'s proxies.
    """
    matches = [
        fault
        for fault in faults
        if label == holder_label(run_id, fault) or label.startswith(holder_label(run_id, fault) + "-")
    ]
    return max(matches, key=lambda fault: len(holder_label(run_id, fault)), default=None)


def live_proxies(run_id: str, fault: str | None = None) -> list[ProxyView]:
    """The run's proxies whose holder reported in and still runs, optionally of one fault."""
    return _live_proxies(RunDir.find(run_id), fault)


def _live_proxies(run: RunDir, fault: str | None) -> list[ProxyView]:
    run_id = run.run_id
    faults = _fault_names(run)
    if fault is not None and fault not in faults:
        known = ", ".join(faults) or "none"
        raise UsageError(f"run {run_id} has no fault {fault!r} (its faults: {known})")
    root = control.proxy_dir("")
    found = []
    for directory in sorted(root.glob(f"proxy-{run_id}-*")) if root.is_dir() else []:
        owner = _owner(directory.name, run_id, faults)
        status = control.read_status(directory)
        if owner is None or status is None or (fault is not None and owner != fault):
            continue
        if not lifecycle.alive(directory.name, None):
            continue  # its holder died (SIGKILL, reboot) and left the control files behind
        found.append(ProxyView(owner, directory, status.address, control.read_toxics(directory)))
    return found


def switch_toxic(
    run_id: str, fault: str, enabled: bool, *, toxic: str | None = None, by: str = ""
) -> list[ProxyView]:
    """Switch a fault's toxic on or off in every one of its proxies; journal it; return the proxies."""
    run = RunDir.find(run_id)
    proxies = _live_proxies(run, fault)
    if not proxies:
        raise UsageError(
            f"fault {fault!r} of run {run_id} has no live proxy on this host: it is not a proxy fault, "
            "it has ended, or its proxy runs inside a pod"
        )
    name = toxic or _only_toxic(proxies[0])
    switched = []
    for proxy in proxies:
        updated = control.switch(proxy.control_dir, name, enabled)
        switched.append(ProxyView(proxy.fault, proxy.control_dir, proxy.address, updated))
    run.journal().append(
        "toxic_switched",
        fault=fault,
        toxic=name,
        enabled=enabled,
        proxies=[proxy.address for proxy in switched],
        by=by,
    )
    return switched


def _only_toxic(proxy: ProxyView) -> str:
    names = [toxic.name for toxic in proxy.toxics.toxics]
    if len(names) != 1:
        raise FaultError(f"the proxy at {proxy.address} has toxics {names}: name one with --toxic")
    return names[0]
