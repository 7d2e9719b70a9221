"""The holder-process side of the PostgreSQL faults: ``hold(spec, session)``.

``chaosrunner.faults.holder`` starts a detached process that imports this
module and calls ``hold``; the spec's ``hold_kind`` says which fault's body to
run. The spec carries the *name* of the DSN's environment variable, never the
DSN: the holder inherits the environment and the adapter reads it there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaosrunner.errors import FaultError
from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.postgres import exhaustion, locks, slow_queries

HOLDERS: dict[str, Callable[[dict[str, Any], HolderSession], None]] = {
    "exhaustion": exhaustion.hold,
    "lock": locks.hold,
    "slow-queries": slow_queries.hold,
}


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    body = HOLDERS.get(spec.get("hold_kind", ""))
    if body is None:
        raise FaultError(f"unknown PostgreSQL holder kind {spec.get('hold_kind')!r}")
    body(spec, session)
