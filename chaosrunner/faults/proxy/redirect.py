"""The iptables rules that send a namespace's outbound TCP through the fault proxy.

Inside the target's network namespace, in the ``nat`` table's ``OUTPUT`` chain::

    -A OUTPUT -p tcp -m mark --mark M -m comment --comment C -j RETURN
    -A OUTPUT -p tcp [-d DEST | ! -d 127.0.0.0/8] [--dport P] -m comment --comment C
              -j REDIRECT --to-ports PROXY_PORT

The REDIRECT rewrites each new outbound connection to the proxy listening on
the namespace's loopback; the proxy reads the original destination and dials
it with its socket marked ``M``, which the RETURN rule ahead of the REDIRECT
lets out unchanged (otherwise the proxy's own connection would loop back into
it). This is how Litmus injects HTTP chaos, and it needs no netem.

Every rule carries the same comment ``C`` naming the run and the fault, so
removal deletes exactly ours and nothing else, from whichever process does it:
the holder on its way out (its normal exit, SIGTERM, or its deadline) or
``revert`` as the fallback when the holder was killed. Removal lists the rules
with ``iptables-save`` and deletes each matching one, so it is idempotent.

Commands are argument lists; the comment is built from run and fault names
restricted to a safe alphabet, so nothing from a scenario reaches a shell or
confuses iptables' own parser.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import subprocess
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from chaosrunner.errors import FaultError

IPTABLES_WAIT = "5"
"""Seconds iptables waits for the xtables lock (Docker edits rules concurrently)."""

MARK_BASE = 0x1C5A0000
"""Marks of our proxies' upstream sockets: a fixed high pattern plus 16 bits from the comment."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:=-]")
MAX_COMMENT = 200  # iptables allows 256


def rule_comment(run_id: str, fault: str) -> str:
    """The comment that marks a fault's rules: ``chaosrunner:<run>:<fault>``, safe characters only."""
    return _UNSAFE.sub("_", f"chaosrunner:{run_id}:{fault}")[:MAX_COMMENT]


def mark_for(comment: str) -> int:
    return MARK_BASE | (zlib.crc32(comment.encode()) & 0xFFFF)


@dataclass(frozen=True)
class RedirectRules:
    comment: str
    mark: int
    proxy_port: int
    ports: tuple[int, ...] = ()
    """Destination ports to redirect; empty: every TCP port."""
    destinations: tuple[str, ...] = ()
    """Destination addresses or CIDRs to redirect; empty: anything not on loopback."""

    def install_commands(self) -> list[list[str]]:
        """The commands to run in the namespace, in order; the RETURN lands first."""
        commands = [_iptables("-I", "OUTPUT", "1", *self._return_spec())]
        for position, spec in enumerate(self._redirect_specs(), start=2):
            commands.append(_iptables("-I", "OUTPUT", str(position), *spec))
        return commands

    def _return_spec(self) -> list[str]:
        return ["-p", "tcp", "-m", "mark", "--mark", hex(self.mark), *self._comment(), "-j", "RETURN"]

    def _redirect_specs(self) -> list[list[str]]:
        where = [["-d", destination] for destination in self.destinations] or [["!", "-d", "127.0.0.0/8"]]
        which = [["--dport", str(port)] for port in self.ports] or [[]]
        jump = ["-j", "REDIRECT", "--to-ports", str(self.proxy_port)]
        return [["-p", "tcp", *dest, *port, *self._comment(), *jump] for dest in where for port in which]

    def _comment(self) -> list[str]:
        return ["-m", "comment", "--comment", self.comment]


def _iptables(*args: str) -> list[str]:
    return ["iptables", "-w", IPTABLES_WAIT, "-t", "nat", *args]


LIST_COMMAND = ["iptables-save", "-t", "nat"]


def delete_commands(saved: str, comment: str) -> list[list[str]]:
    """``iptables -D`` commands for every rule in ``iptables-save`` output carrying ``comment``."""
    commands = []
    for line in saved.splitlines():
        if not line.startswith("-A "):
            continue
        tokens = shlex.split(line)
        if _comment_of(tokens) == comment:
            commands.append(_iptables("-D", *tokens[1:]))
    return commands


def _comment_of(tokens: Sequence[str]) -> str | None:
    for index, token in enumerate(tokens[:-1]):
        if token == "--comment":
            return tokens[index + 1]
    return None


def check_destination(text: str) -> str:
    """Validate a destination for the REDIRECT rule; loopback is refused (the proxy lives there)."""
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 address or CIDR, found {text!r}") from exc
    if network.overlaps(ipaddress.IPv4Network("127.0.0.0/8")):
        raise ValueError(f"{text!r} is on loopback, where the proxy itself listens")
    return str(network)


def run_checked(argv: list[str], *, timeout: float = 20.0) -> str:
    """Run one command (never through a shell); its stdout, or FaultError naming it."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FaultError(f"{argv[0]} failed to run: {exc}") from exc
    if done.returncode != 0:
        raise FaultError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def install(rules: RedirectRules, prefix: Sequence[str] = ()) -> None:
    """Add the rules (``prefix`` is e.g. an nsenter when not already in the namespace)."""
    for command in rules.install_commands():
        run_checked([*prefix, *command])


def remove(comment: str, prefix: Sequence[str] = ()) -> int:
    """Delete every rule carrying ``comment``; returns how many. Idempotent."""
    saved = run_checked([*prefix, *LIST_COMMAND])
    commands = delete_commands(saved, comment)
    for command in commands:
        try:
            run_checked([*prefix, *command])
        except FaultError:
            # Someone else (the holder, a watchdog) may have deleted it a moment ago: fine if gone.
            if command in delete_commands(run_checked([*prefix, *LIST_COMMAND]), comment):
                raise
    return len(commands)


def present(comment: str, prefix: Sequence[str] = ()) -> bool:
    return bool(delete_commands(run_checked([*prefix, *LIST_COMMAND]), comment))
