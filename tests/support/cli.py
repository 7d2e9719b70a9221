"""Running chaosrunner the way a user does: a new process, the real command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_chaosrunner(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m chaosrunner ARGS``; returns whatever it did (exit code, stdout, stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "chaosrunner", *args],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
