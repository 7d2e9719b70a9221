"""A gameday run on a real terminal survives whatever the team types.

``chaosrunner run`` is started on a pseudo-terminal, so it draws the rich live
console exactly as a facilitator sees it. A responder then marks a note with
square brackets (once parsed as rich markup: MarkupError, exit 1, no debrief,
no report), a terminal escape and a libpq password. The run must carry on,
show the note literally, keep the escape and the password off the screen and
out of the journal, and end normally with its summary (which quotes the
team's marks: escapes stripped there too) and its report.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import yaml

from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from tests.support.cli import run_chaosrunner

NOTE = "disk [/var/lib/pg] full [bold red]x[/] \x1b]0;pwned\x07 dsn password='s3 cret'"
SHOWN = "disk [/var/lib/pg] full [bold red]x[/]  dsn password=[redacted]"


class Terminal:
    """A child process on a pseudo-terminal 200 columns wide; everything it draws is kept."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, child_side = pty.openpty()
        fcntl.ioctl(child_side, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=child_side, stderr=subprocess.PIPE, env=env
        )
        os.close(child_side)
        self._master = master
        self._screen = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed its side
                return
            if not chunk:
                return
            self._screen.extend(chunk)

    @property
    def screen(self) -> str:
        return bytes(self._screen).decode("utf-8", errors="replace")

    def wait_for_text(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.screen:
                return True
            if self.process.poll() is not None:
                return text in self.screen
            time.sleep(0.1)
        return False

    def finish(self, timeout: float) -> tuple[int, str]:
        try:
            stderr = self.process.communicate(timeout=timeout)[1].decode(errors="replace")
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(5)
        os.close(self._master)
        return self.process.returncode, stderr


def wait_for_run(state: Path, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for journal in (state / "runs").glob("*/journal.jsonl"):
            if b'"fault_injected"' in journal.read_bytes():
                return journal.parent
        time.sleep(0.1)
    raise AssertionError("the run never injected its fault")


def test_a_gameday_on_a_terminal_survives_a_note_with_brackets_escapes_and_a_password(tmp_path: Path) -> None:
    ACTIVE_FLAGS.clear()
    scenario = tmp_path / "bracket-note.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "metadata": {
                    "title": "bracket note",
                    "owner": "tests",
                    "expected_severity": "P2",
                    "hypothesis": "h",
                },
                "target": {},
                "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "live-console"}}],
                "gameday": {"mode": "gameday", "max_duration": "2m"},
            }
        )
    )
    state = tmp_path / "state"
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "CHAOSRUNNER_STATE_DIR": str(state),
        "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports"),
    }
    env.pop("COLUMNS", None)
    env.pop("NO_COLOR", None)
    terminal = Terminal([sys.executable, "-m", "chaosrunner", "run", str(scenario)], env)
    try:
        run_dir = wait_for_run(state, timeout=60)
        assert terminal.wait_for_text("injected flag", timeout=30), "the live console never drew the run"
        marked = run_chaosrunner("mark", run_dir.name, "note", NOTE, "--by", "dave", env=env)
        assert marked.returncode == 0, marked.stderr
        assert terminal.wait_for_text(f"team: dave note {SHOWN}", timeout=30), (
            f"the note never appeared on the live console:\n{terminal.screen[-3000:]}"
        )
        for mark in (("ic", "dave"), ("change", "restarted \x1b]0;pwned-by-change\x07the pool")):
            marked = run_chaosrunner("mark", run_dir.name, *mark, "--by", "dave", env=env)
            assert marked.returncode == 0, marked.stderr
        mitigated = run_chaosrunner("mark", run_dir.name, "mitigated", "--by", "dave", env=env)
        assert mitigated.returncode == 0, mitigated.stderr
    finally:
        exit_code, stderr = terminal.finish(timeout=90)
    screen = terminal.screen
    assert exit_code == 0, f"exit {exit_code}\n{stderr[-3000:]}"
    assert "Traceback" not in stderr and "MarkupError" not in stderr
    assert "\x1b]0;pwned" not in screen and "s3 cret" not in screen
    # the summary printed after the console closed quotes the IC's change: text too
    assert "IC dave changed: restarted the pool" in screen and "pwned-by-change" not in screen
    assert "s3 cret" not in (run_dir / "journal.jsonl").read_text()
    assert "report:" in screen  # the debrief and the report still ran after the console closed
    assert list((tmp_path / "reports").glob("*/report.html"))
