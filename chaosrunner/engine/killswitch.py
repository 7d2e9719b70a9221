"""The global kill switch: one file that stops every run on this machine.

``chaosrunner abort --all`` writes it; every live run checks for it on each
abort-condition tick (so it reacts within one interval) and reverts; a new run
refuses to start while it exists; ``chaosrunner abort --release`` removes it.
A file in the shared state folder is deliberately dumb: it needs no daemon,
survives restarts, and any process - even a shell script - can engage it.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import utc_now
from chaosrunner.errors import KillSwitchEngaged
from chaosrunner.statedir import state_dir


def switch_path() -> Path:
    return state_dir() / "kill-switch.json"


def engage(reason: str = "") -> dict[str, Any]:
    details = {
        "engaged_at": utc_now(),
        "by": f"{getpass.getuser()}@{socket.gethostname()}",
        "pid": os.getpid(),
        "reason": reason,
    }
    path = switch_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(details))
    os.replace(tmp, path)
    return details


def release() -> bool:
    """Remove the switch; False when it was not engaged."""
    try:
        switch_path().unlink()
    except FileNotFoundError:
        return False
    return True


def engaged() -> dict[str, Any] | None:
    try:
        return dict(json.loads(switch_path().read_text()))
    except FileNotFoundError:
        return None
    except ValueError:
        return {"engaged_at": "unknown", "by": "unknown", "reason": "unreadable kill-switch file"}


def refuse_if_engaged() -> None:
    details = engaged()
    if details is not None:
        raise KillSwitchEngaged(
            f"the global kill switch is engaged (since {details['engaged_at']} by {details['by']}"
            + (f": {details['reason']}" if details.get("reason") else "")
            + "); release it with `chaosrunner abort --release`"
        )
