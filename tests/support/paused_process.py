"""A real process to pause, a scenario that pauses it, and a run started until it has.

The state and kill-switch tests need a fault that is real, cheap and easy to
see from outside: ``process.pause`` on a ``sleep`` (its /proc state is ``T``
while paused), run by ``chaosrunner run`` in a new process as a user would,
and another local user (``nobody``) to try what an attacker would.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def process_state(pid: int) -> str:
    """The one-letter state from /proc (``T`` while stopped by SIGSTOP)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()[0]


def as_nobody(*command: str) -> list[str]:
    """``command`` run as the unprivileged user ``nobody`` (the caller must be root)."""
    nobody = pwd.getpwnam("nobody")
    return ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *command]


def sleeping_victim(folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A ``sleep`` and its pid file, for a fixture to yield; resumed and ended afterwards."""
    process = subprocess.Popen(["sleep", "300"])
    pid_file = folder / "victim.pid"
    pid_file.write_text(str(process.pid))
    yield process, pid_file
    os.kill(process.pid, 18)  # SIGCONT, should a failed test leave it paused
    process.kill()
    process.wait()


def write_pause_scenario(path: Path, pid_file: Path, title: str, **gameday: Any) -> Path:
    """A scenario with one ``process.pause`` fault named ``pause`` on the process in ``pid_file``."""
    document: dict[str, Any] = {
        "metadata": {"title": title, "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
        "faults": [
            {
                "name": "pause",
                "kind": "process.pause",
                "selector": {"pid_file": str(pid_file)},
                "duration": "5m",
            }
        ],
    }
    if gameday:
        document["gameday"] = gameday
    path.write_text(yaml.safe_dump(document))
    return path


def start_run_until_injected(scenario: Path, env: dict[str, str], *options: str) -> subprocess.Popen[str]:
    """``chaosrunner [options] run --plain scenario``, returned once it printed ``injected pause``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", *options, "run", "--plain", str(scenario)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "injected pause" in line:
            return process
    process.wait(timeout=30)
    raise AssertionError(f"the run never injected its fault (exit {process.returncode})")
