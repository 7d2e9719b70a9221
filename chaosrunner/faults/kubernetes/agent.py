"""The chaosrunner agent: the program that runs INSIDE the cluster, in an agent pod or container.

Some faults cannot be made through the Kubernetes API alone: slowing a pod's
traffic needs a process in the pod's network namespace, killing one container
needs a signal from outside its PID namespace (a container's PID 1 ignores
SIGKILL sent from inside). The faults start this module as
``python3 -m chaosrunner.faults.kubernetes.agent COMMAND MARKER SPEC_JSON``:

``shape``
    Hold a network fault until its deadline or SIGTERM: the fault proxy fed by
    an iptables REDIRECT (``chaosrunner.faults.proxy``: the same server,
    toxics and rules as ``docker.network-latency``), or tc netem (``netem``)
    where the node's kernel has it. It runs either in an ephemeral container
    with NET_ADMIN (already in the pod's network namespace) or in a
    node pod with ``hostPID`` (SYS_ADMIN, NET_ADMIN) that first enters the namespace of
    the target container's process (``netns`` in the spec). It removes its
    rules or qdisc on the way out, whatever the reason.
``kill``
    From a node pod with ``hostPID``: find the target container's first
    process by its container id in ``/proc/*/cgroup`` and signal it.
``cleanup``
    Remove rules and qdisc left by a ``shape`` agent that was SIGKILLed.

It says what happened as JSON lines on stdout - the pod's log - which the
injecting chaosrunner reads: ``ready``, ``stopped`` (with ``cleaned``),
``killed``, ``error``. Standard library plus chaosrunner's proxy modules
(pydantic); it must start in a small image.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

AGENT_MODULE = "chaosrunner.faults.kubernetes.agent"
COMMANDS = ("shape", "kill", "cleanup")


def say(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"agent": "chaosrunner", "event": event, **fields}) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------- /proc


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def container_processes(container_id: str, proc: str = "/proc") -> list[tuple[int, int]]:
    """(start ticks, pid) of every process in the container's cgroup, oldest first."""
    short = container_id.split("://", 1)[-1]
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            cgroups = _read(f"{proc}/{name}/cgroup").decode("ascii", "replace")
            stat = _read(f"{proc}/{name}/stat").decode("ascii", "replace")
        except OSError:
            continue
        if short not in cgroups:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            continue
        found.append((int(fields[19]), int(name)))
    return sorted(found)


def container_init(container_id: str, proc: str = "/proc") -> int:
    """The container's first process (its PID 1): the oldest process of its cgroup."""
    processes = container_processes(container_id, proc)
    if not processes:
        raise LookupError(f"no process of container {container_id} on this node")
    return processes[0][1]


# ----------------------------------------------------------------------------- shape


class _Stop:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.why = "deadline"

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handler)

    def _handler(self, signum: int, _frame: object) -> None:
        self.why = signal.Signals(signum).name
        # Not event.set() here: the main thread may hold the event's lock (see chaosrunner.signals).
        threading.Thread(target=self.event.set, daemon=True).start()


def _enter(spec: dict[str, Any]) -> None:
    """Move into the target's network namespace when the agent runs on the node (not in the pod)."""
    netns = spec.get("netns")
    if not netns:
        return
    from chaosrunner.faults.proxy.netns import enter_netns, netns_inode

    pid = container_init(netns["container_id"])
    inode = netns_inode(pid)
    if inode is None:
        raise LookupError(f"the network namespace of pid {pid} vanished")
    enter_netns(pid, inode)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


def _netem_in_place(device: str) -> bool:
    from chaosrunner.faults import netem

    if shutil.which("tc") is None:
        return False
    return netem.is_ours(_run(netem.show_command(device)).stdout)


def _try_netem(spec: dict[str, Any]) -> str | None:
    """Install netem; None on success, else why not (the caller may fall back to the proxy)."""
    if shutil.which("tc") is None:
        return "tc is not in the agent image"
    for argv in spec["netem"]["commands"]:
        done = _run(argv)
        if done.returncode != 0:
            _remove_netem(spec["netem"]["device"])
            return f"{' '.join(argv[:4])}: {done.stderr.strip() or done.returncode}"
    return None


def _remove_netem(device: str) -> bool:
    from chaosrunner.faults import netem

    if _netem_in_place(device):
        return _run(netem.delete_command(device)).returncode == 0
    return True


def _remove_rules(comment: str) -> bool:
    from chaosrunner.faults.proxy import redirect

    try:
        redirect.remove(comment)
    except Exception as exc:  # reported; revert's cleanup is the fallback
        say("warning", detail=f"could not remove redirect rules: {exc}")
        return False
    return True


def shape(marker: str, spec: dict[str, Any]) -> int:
    stop = _Stop()
    stop.install()
    deadline = float(spec["deadline"])
    try:
        _enter(spec)  # before any thread or socket: they inherit the namespace
    except Exception as exc:
        say("error", detail=f"cannot enter the target's network namespace: {exc}")
        return 2
    mode = spec.get("mode", "auto")
    mechanism = None
    server = None
    cleaned = False
    try:
        if mode in ("auto", "netem") and spec.get("netem"):
            why = _try_netem(spec)
            if why is None:
                mechanism = "netem"
            elif mode == "netem":
                say("error", detail=f"netem is not available on this node: {why}")
                return 3
            else:
                say("fallback", detail=f"netem is not available on this node ({why}); using the fault proxy")
        if mechanism is None:
            server = _start_proxy(spec)
            mechanism = "proxy"
        say("ready", mechanism=mechanism, marker=marker, pid=os.getpid())
        while not stop.event.wait(max(0.0, min(1.0, deadline - time.time()))):
            if time.time() >= deadline:
                break
    except Exception as exc:
        say("error", detail=f"{type(exc).__name__}: {exc}")
        return 2
    finally:
        proxy = spec.get("proxy") or {}
        cleaned = _remove_rules(proxy["comment"]) if proxy else True
        if spec.get("netem"):
            cleaned = _remove_netem(spec["netem"]["device"]) and cleaned
        if server is not None:
            server.stop()
        say("stopped", why=stop.why, cleaned=cleaned, mechanism=mechanism)
    return 0


def _start_proxy(spec: dict[str, Any]) -> Any:
    from chaosrunner.faults.proxy import redirect
    from chaosrunner.faults.proxy.server import Address, ProxyServer
    from chaosrunner.faults.proxy.toxics import ToxicSet

    proxy = spec["proxy"]
    server = ProxyServer(
        Address("127.0.0.1", 0),
        ToxicSet.model_validate(proxy["toxics"]),
        mark=proxy["mark"],
        fault=proxy["fault"],
    )
    address = server.start()
    # Rules only once the proxy listens: a REDIRECT to a closed port would refuse every connection.
    redirect.install(
        redirect.RedirectRules(
            comment=proxy["comment"],
            mark=proxy["mark"],
            proxy_port=address.port,
            ports=tuple(proxy.get("ports") or ()),
            destinations=tuple(proxy.get("destinations") or ()),
        )
    )
    return server


# ----------------------------------------------------------------------------- kill, cleanup


def kill(marker: str, spec: dict[str, Any]) -> int:
    signum = signal.Signals[f"SIG{spec.get('signal', 'KILL')}"]
    try:
        pid = container_init(spec["container_id"])
        os.kill(pid, signum)
    except (LookupError, ProcessLookupError, PermissionError) as exc:
        say("error", detail=str(exc))
        return 2
    say("killed", pid=pid, signal=signum.name, at=time.time())
    return 0


def cleanup(marker: str, spec: dict[str, Any]) -> int:
    try:
        _enter(spec)
    except LookupError as exc:
        say("cleaned", detail=f"nothing to clean: {exc}", cleaned=True)
        return 0
    cleaned = _remove_rules(spec["comment"]) if spec.get("comment") else True
    if spec.get("device"):
        cleaned = _remove_netem(spec["device"]) and cleaned
    say("cleaned", cleaned=cleaned)
    return 0 if cleaned else 2


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in COMMANDS:
        sys.stderr.write(f"usage: python3 -m {AGENT_MODULE} {{{'|'.join(COMMANDS)}}} MARKER SPEC_JSON\n")
        return 64
    command, marker, spec = argv[0], argv[1], json.loads(argv[2])
    handlers = {"shape": shape, "kill": kill, "cleanup": cleanup}
    return handlers[command](marker, spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
