"""A PostgreSQL holder that opens one more connection under the fault's name after it is told to stop.

That is what a connection-exhaustion holder with ``keep_exhausted`` does when
SIGTERM lands while it is re-taking a freed slot: the connection is already
on its way and shows the fault's name only once its start-up is done. A
revert must not return while that connection, or its holder, still exists.
"""

from __future__ import annotations

import time
from typing import Any

from chaosrunner.faults.holder import HolderSession
from chaosrunner.faults.postgres import client

LATE_BY = 0.3
"""Seconds after SIGTERM the late connection appears."""
KEPT_FOR = 0.5
"""Seconds the late connection stays open before the holder exits."""


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    name, dsn_env = spec["application_name"], spec["dsn_env"]
    first = client.connect(dsn_env, name)
    session.ready()
    session.wait()
    time.sleep(LATE_BY)
    late = client.connect(dsn_env, name)
    time.sleep(KEPT_FOR)
    late.close()
    first.close()
