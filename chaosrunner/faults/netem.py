"""tc netem inside a container's network namespace: commands, and whether the kernel can.

netem is the kernel's network emulator, a queueing discipline that delays or
drops packets on their way out of an interface. Most hosts have it (module
``sch_netem``, ``CONFIG_NET_SCH_NETEM``); this machine's kernel does not, and a
fault that silently did nothing would be worse than one that refuses. So
``netem_support`` probes for it before a plan relies on it, and the commands
are built by pure functions the unit tests check exactly.

The shapes we build (in the target's namespace, through ``nsenter``):

- all egress traffic of ``device``: ``tc qdisc add dev eth0 root handle 1:
  netem delay 100ms 10ms`` (or ``loss 5%``);
- only some destinations or ports (what Pumba does): a ``prio`` root with a
  fourth band that the default priority map never uses, netem on that band,
  and ``u32`` filters steering the chosen destinations and ports into it.
  That needs ``sch_prio`` and ``cls_u32`` too; the probe checks those as well.

netem acts on egress: a delay on the container's interface delays what the
container sends, so a round trip to a dependency grows by the delay once.

Revert deletes the root qdisc, but only after ``tc qdisc show`` says it is
ours (handle ``1:``, netem or our prio): an operator's own shaping is never
removed. Deleting it again is a no-op, so revert is idempotent.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT_HANDLE = "1:"
BAND = "1:4"
BAND_HANDLE = "40:"

KERNEL_FEATURES = {
    "netem": "sch_netem (CONFIG_NET_SCH_NETEM)",
    "prio": "sch_prio (CONFIG_NET_SCH_PRIO)",
    "u32": "cls_u32 (CONFIG_NET_CLS_U32)",
}
"""Kernel pieces each shape needs, named as an operator would look them up."""

PROBE_TIMEOUT = 10.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


def _percent(value: float) -> str:
    return f"{value:g}%"


@dataclass(frozen=True)
class Netem:
    """What netem does to each packet: a delay (with jitter), a loss, or both."""

    delay: float = 0.0
    """seconds"""
    jitter: float = 0.0
    delay_correlation: float = 0.0
    """percent"""
    loss: float = 0.0
    """percent"""
    loss_correlation: float = 0.0

    def args(self) -> list[str]:
        args: list[str] = []
        if self.delay or self.jitter:
            args += ["delay", _ms(self.delay)]
            if self.jitter:
                args.append(_ms(self.jitter))
                if self.delay_correlation:
                    args.append(_percent(self.delay_correlation))
        if self.loss:
            args += ["loss", _percent(self.loss)]
            if self.loss_correlation:
                args.append(_percent(self.loss_correlation))
        if not args:
            raise ValueError("netem needs a delay or a loss")
        return args


@dataclass(frozen=True)
class Steering:
    """Which egress traffic netem applies to; both empty: all of it."""

    destinations: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()

    @property
    def filtered(self) -> bool:
        return bool(self.destinations or self.ports)

    def features(self) -> tuple[str, ...]:
        return ("netem", "prio", "u32") if self.filtered else ("netem",)


def add_commands(device: str, netem: Netem, steering: Steering = Steering()) -> list[list[str]]:
    """The tc commands that install the shaping, in order (to run inside the namespace)."""
    if not steering.filtered:
        return [["tc", "qdisc", "add", "dev", device, "root", "handle", ROOT_HANDLE, "netem", *netem.args()]]
    commands = [
        ["tc", "qdisc", "add", "dev", device, "root", "handle", ROOT_HANDLE, "prio", "bands", "4"],
        ["tc", "qdisc", "add", "dev", device, "parent", BAND, "handle", BAND_HANDLE, "netem", *netem.args()],
    ]
    where = [["match", "ip", "dst", dest] for dest in steering.destinations] or [[]]
    which = [["match", "ip", "dport", str(port), "0xffff"] for port in steering.ports] or [[]]
    filter_add = ["tc", "filter", "add", "dev", device, "protocol", "ip", "parent", ROOT_HANDLE, "prio", "4"]
    commands.extend([*filter_add, "u32", *dest, *port, "flowid", BAND] for dest in where for port in which)
    return commands


def delete_command(device: str) -> list[str]:
    return ["tc", "qdisc", "del", "dev", device, "root"]


def show_command(device: str) -> list[str]:
    return ["tc", "qdisc", "show", "dev", device]


def is_ours(shown: str) -> bool:
    """Whether ``tc qdisc show`` output has our root: netem at 1:, or prio at 1: with netem at 40:."""
    lines = [line.split() for line in shown.splitlines() if line.strip()]
    root = next((words for words in lines if "root" in words), None)
    if root is None or len(root) < 3 or root[2] != ROOT_HANDLE:
        return False
    if root[1] == "netem":
        return True
    return root[1] == "prio" and any(w[1:3] == ["netem", BAND_HANDLE] for w in lines if len(w) > 2)


# ---------------------------------------------------------------- the probe

PROBES: dict[str, list[list[str]]] = {
    "netem": [["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]],
    "prio": [["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4"]],
    "u32": [
        ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4"],
        [
            *["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "4"],
            *["u32", "match", "ip", "dport", "9", "0xffff", "flowid", "1:4"],
        ],
    ],
}
"""Each feature is tried on ``lo`` of a throwaway network namespace (``unshare --net``):
nothing outside that namespace is touched, and it vanishes with the command."""


def probe_command(feature: str) -> list[str]:
    steps = PROBES[feature]
    if len(steps) == 1:
        return ["unshare", "--net", *steps[0]]
    # Several steps in one namespace: chain them with a Python child that runs argv lists (no shell).
    script = (
        f"import subprocess\nfor argv in {steps!r}:\n"
        "    code = subprocess.run(argv).returncode\n    if code:\n        raise SystemExit(code)\n"
    )
    return ["unshare", "--net", sys.executable, "-c", script]


def _module_loaded(feature: str) -> bool:
    module = KERNEL_FEATURES[feature].split()[0]
    return Path("/sys/module", module).exists()


def _try(feature: str) -> str | None:
    """None when the kernel has ``feature``, else why not (tc's own words)."""
    if _module_loaded(feature):
        return None
    try:
        done = subprocess.run(
            probe_command(feature), capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not probe for it ({exc})"
    if done.returncode == 0:
        return None
    said = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
    return f"tc said: {said}"


@functools.cache
def _cached_try(feature: str) -> str | None:
    return _try(feature)


def missing_features(features: Sequence[str]) -> dict[str, str]:
    """The kernel features among ``features`` this machine lacks, each with the reason."""
    missing = {}
    for feature in features:
        reason = _cached_try(feature)
        if reason is not None:
            missing[feature] = reason
    return missing


KernelProbe = Callable[[Sequence[str]], dict[str, str]]
"""``missing_features`` or a stand-in: feature names in, the missing ones with reasons out."""


def describe_missing(missing: dict[str, str]) -> str:
    return "; ".join(f"{KERNEL_FEATURES[feature]} is missing ({why})" for feature, why in missing.items())


def kernel_modules(features: Sequence[str]) -> list[str]:
    """Module names to load for ``features`` (``sch_netem`` ...)."""
    return [KERNEL_FEATURES[feature].split()[0] for feature in features]


def forget_probes() -> None:
    """Probe again next time (after loading a module, in tests)."""
    _cached_try.cache_clear()
