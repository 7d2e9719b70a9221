"""iptables rules for the blackhole fault: built, found and deleted by their comment.

Every rule chaosrunner adds carries ``-m comment --comment
chaosrunner:<run_id>:<fault>``. That comment is the rule's identity: revert
lists the chain and deletes exactly the rules carrying its comment (never
"the first rule that looks similar", which could be the service's own), which
makes revert idempotent and safe after a crash whatever inject managed to add;
and a sweep finds leftovers of any run by the ``chaosrunner:`` prefix.

All of it is pure argv construction and text parsing, so it is tested without
a kernel; ``network.py`` runs the commands through ``nsenter``.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

COMMENT_PREFIX = "chaosrunner:"
CHAIN = "OUTPUT"
LOCK_WAIT = "5"
"""Seconds iptables waits for the xtables lock (``-w``) instead of failing at once."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_COMMENT = 255


def rule_comment(run_id: str, fault: str) -> str:
    """``chaosrunner:<run_id>:<fault>`` with anything odd replaced, within iptables' 255 chars."""
    comment = f"{COMMENT_PREFIX}{_UNSAFE.sub('_', run_id)}:{_UNSAFE.sub('_', fault)}"
    return comment[:MAX_COMMENT]


def binary_for(family: int) -> str:
    return "ip6tables" if family == 6 else "iptables"


def family_of(destination: str) -> int:
    return ipaddress.ip_network(destination, strict=False).version


@dataclass(frozen=True)
class Blackhole:
    """Traffic to drop: one destination network, a protocol, optionally some ports."""

    destination: str
    protocol: str = "tcp"
    ports: tuple[int, ...] = ()
    action: str = "drop"

    @property
    def family(self) -> int:
        return family_of(self.destination)

    def spec(self, comment: str) -> list[str]:
        """The rule after the chain name, as ``-C``, ``-I`` and ``-D`` all take it."""
        spec = ["-d", self.destination]
        if self.protocol != "all":
            spec += ["-p", self.protocol]
        if self.ports:
            spec += ["-m", "multiport", "--dports", ",".join(str(port) for port in self.ports)]
        spec += ["-m", "comment", "--comment", comment]
        if self.action == "reject":
            spec += ["-j", "REJECT"]
            if self.protocol == "tcp":
                # A reset makes connect() fail at once, like a closed port; DROP makes it hang.
                spec += ["--reject-with", "tcp-reset"]
        else:
            spec += ["-j", "DROP"]
        return spec


def check_argv(family: int, spec: Sequence[str]) -> list[str]:
    return [binary_for(family), "-w", LOCK_WAIT, "-C", CHAIN, *spec]


def insert_argv(family: int, spec: Sequence[str]) -> list[str]:
    """Insert at the top of OUTPUT, ahead of any ACCEPT the container has of its own."""
    return [binary_for(family), "-w", LOCK_WAIT, "-I", CHAIN, "1", *spec]


def list_argv(family: int) -> list[str]:
    return [binary_for(family), "-w", LOCK_WAIT, "-S", CHAIN]


def delete_argv(family: int, rule: Sequence[str]) -> list[str]:
    return [binary_for(family), "-w", LOCK_WAIT, "-D", CHAIN, *rule]


def comment_of(tokens: Sequence[str]) -> str | None:
    for index, token in enumerate(tokens[:-1]):
        if token == "--comment":
            return tokens[index + 1]
    return None


def rules_carrying(listing: str, comment: str, *, prefix: bool = False) -> list[list[str]]:
    """Rules of ``iptables -S OUTPUT`` whose comment is ``comment`` (or starts with it).

    Each is returned as the spec after the chain name, ready for ``-D OUTPUT``.
    """
    found = []
    for line in listing.splitlines():
        tokens = shlex.split(line)
        if len(tokens) < 3 or tokens[0] != "-A" or tokens[1] != CHAIN:
            continue
        found_comment = comment_of(tokens)
        if found_comment is None:
            continue
        if found_comment == comment or (prefix and found_comment.startswith(comment)):
            found.append(tokens[2:])
    return found
