"""Where chaosrunner keeps state on this machine: journals, holder logs, the kill switch.

``--state-dir`` on the command line sets ``CHAOSRUNNER_STATE_DIR``; without
either, ``$XDG_STATE_HOME/chaosrunner`` (``~/.local/state/chaosrunner``).
Every process of a run - the runner, its holders, ``recover`` from another
terminal - must agree on it, which is why it is an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_STATE_DIR = "CHAOSRUNNER_STATE_DIR"


def state_dir() -> Path:
    explicit = os.environ.get(ENV_STATE_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chaosrunner"
