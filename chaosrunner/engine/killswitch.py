"""The global kill switch: one file that stops every run on this machine.

``chaosrunner abort --all`` writes it; every live run checks for it on each
abort-condition tick (so it reacts within one interval) and reverts; a new run
refuses to start while it exists; ``chaosrunner abort --release`` removes it.
A file is deliberately dumb: it needs no daemon and any process - even a shell
script - can engage it.

Two places, both checked by every run:

- the **machine-wide** switch, ``/run/chaosrunner/kill-switch.json``
  (``CHAOSRUNNER_KILL_SWITCH_DIR`` moves it). It must not depend on who you
  are: an operator's ``abort --all`` has to stop a run root started, whatever
  their ``$HOME`` and state folders. The folder is sticky and writable by all
  (01777, like /tmp; a run started by root creates it), so any operator can
  engage it and only its owner (or root) can release it - the kernel enforces
  that. Where the folder is missing or not writable, ``abort --all`` engages
  the caller's own switch instead and says so.
- the **caller's own** switch, ``<state dir>/kill-switch.json``: it stops the
  runs sharing that state folder, and is what ``abort --all`` falls back to.

Reading fails closed: a file present is engaged, even if it is a symlink, a
FIFO, unreadable or garbage - a kill switch that can be disarmed by planting
something odd would not be one. The file is opened with ``O_NOFOLLOW`` and
``O_NONBLOCK`` (a planted FIFO must not hang the monitor), and what it says is
shortened and stripped of control characters: it is someone's text.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import pwd
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import utc_now
from chaosrunner.errors import KillSwitchEngaged, NotPermitted
from chaosrunner.private_files import private_dir, read_no_follow, write_private
from chaosrunner.statedir import state_dir

ENV_SWITCH_DIR = "CHAOSRUNNER_KILL_SWITCH_DIR"
MACHINE_DIR = Path("/run/chaosrunner")
FILE_NAME = "kill-switch.json"
# Sticky and writable by all, like /tmp: anyone may engage, only the owner may remove.
MACHINE_DIR_MODE = 0o1777
# Readable by all: every run, whoever started it, shows who engaged the switch and why.
MACHINE_FILE_MODE = 0o644
TEXT_LIMIT = 200


def machine_switch_path() -> Path:
    return Path(os.environ.get(ENV_SWITCH_DIR) or MACHINE_DIR) / FILE_NAME


def user_switch_path() -> Path:
    return state_dir() / FILE_NAME


def switch_paths() -> list[Path]:
    """Every switch a run obeys, the machine-wide one first."""
    return [machine_switch_path(), user_switch_path()]


@dataclass(frozen=True)
class Engagement:
    """Where ``engage`` put the switch; ``note`` says why it is not the machine-wide one."""

    path: Path
    machine_wide: bool
    details: dict[str, Any]
    note: str = ""


@dataclass
class Release:
    released: list[Path] = field(default_factory=list)
    refused: str = ""  # the machine-wide switch belongs to someone else

    def __bool__(self) -> bool:
        return bool(self.released)


def engage(reason: str = "") -> Engagement:
    details = {
        "engaged_at": utc_now(),
        "by": f"{getpass.getuser()}@{socket.gethostname()}",
        "pid": os.getpid(),
        "reason": reason,
    }
    machine = machine_switch_path()
    try:
        existing = read_switch(machine)
        if existing is not None:  # someone engaged it already; that is the switch in force
            return Engagement(machine, True, existing, "it was already engaged")
        prepare_machine_dir(machine.parent)
        write_private(machine, json.dumps(details), mode=MACHINE_FILE_MODE)
        return Engagement(machine, True, details)
    except (OSError, NotPermitted) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        note = (
            f"the machine-wide switch {machine} could not be engaged ({why}); "
            "engaged your own, which stops only runs sharing your state folder. "
            "Ask root to create the folder (mode 1777) - see docs/kill-switch.md"
        )
    path = user_switch_path()
    private_dir(path.parent)
    write_private(path, json.dumps(details))
    return Engagement(path, False, details, note)


def prepare_machine_dir(folder: Path) -> None:
    """Create the machine-wide folder (01777) if we may, and refuse one we cannot trust.

    Only root can create it under /run. A folder owned by another ordinary
    user is refused: its owner could remove anybody's switch.
    """
    try:
        os.mkdir(folder, MACHINE_DIR_MODE)
        os.chmod(folder, MACHINE_DIR_MODE)  # mkdir's mode passes through the umask
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise NotPermitted(f"{folder} is not a folder")
    if info.st_uid not in (0, os.geteuid()):
        raise NotPermitted(f"{folder} belongs to {_user_name(info.st_uid)}, neither root nor you")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise NotPermitted(f"{folder} is writable by others but not sticky (mode {mode:o})")


def offer_machine_dir() -> None:
    """A run started by root creates the machine-wide folder, so operators can engage it later."""
    if os.geteuid() == 0:
        # Checking the switch must not depend on this; engage explains what is wrong.
        with contextlib.suppress(OSError, NotPermitted):
            prepare_machine_dir(machine_switch_path().parent)


def release() -> Release:
    """Remove the switches the caller may remove: their own, and the machine-wide one if theirs (or root)."""
    outcome = Release()
    own = user_switch_path()
    if _remove(own):
        outcome.released.append(own)
    machine = machine_switch_path()
    try:
        owner = os.lstat(machine).st_uid
    except (FileNotFoundError, NotADirectoryError):
        return outcome
    except OSError as error:
        outcome.refused = f"cannot look at the machine-wide kill switch {machine}: {error.strerror}"
        return outcome
    if owner != os.geteuid() and os.geteuid() != 0:
        outcome.refused = (
            f"the machine-wide kill switch {machine} was engaged by {_user_name(owner)}; "
            "only they or root may release it"
        )
        return outcome
    if _remove(machine):
        outcome.released.append(machine)
    return outcome


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def read_switch(path: Path) -> dict[str, Any] | None:
    """The switch at ``path``: None when absent; anything present is engaged (fail closed)."""
    try:
        owner = _user_name(os.lstat(path).st_uid)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:  # cannot even look: a switch may be there
        return _unreadable(path, "?", error.strerror or str(error))
    try:
        raw = read_no_follow(path)
    except FileNotFoundError:
        return None  # released between the two looks
    except OSError as error:
        return _unreadable(path, owner, error.strerror or str(error))
    try:
        content = json.loads(raw)
    except ValueError:
        return _unreadable(path, owner, "not JSON")
    if not isinstance(content, dict):
        return _unreadable(path, owner, "not a JSON object")
    claimed = _text(content.get("by")) or "unknown"
    return {
        "engaged_at": _text(content.get("engaged_at")) or "unknown",
        # What the file says, and who really wrote it when that differs.
        "by": claimed if claimed.split("@")[0] == owner else f"{claimed} (file owned by {owner})",
        "reason": _text(content.get("reason")),
        "path": str(path),
    }


def engaged() -> dict[str, Any] | None:
    """The first engaged switch (machine-wide first), or None."""
    for path in switch_paths():
        details = read_switch(path)
        if details is not None:
            return details
    return None


def refuse_if_engaged() -> None:
    offer_machine_dir()
    details = engaged()
    if details is not None:
        raise KillSwitchEngaged(
            f"the global kill switch is engaged (since {details['engaged_at']} by {details['by']}"
            + (f": {details['reason']}" if details.get("reason") else "")
            + f"; {details['path']}); release it with `chaosrunner abort --release`"
        )


def _unreadable(path: Path, owner: str, problem: str) -> dict[str, Any]:
    return {
        "engaged_at": "unknown",
        "by": owner,
        "reason": f"kill-switch file present but unreadable ({problem}): treated as engaged",
        "path": str(path),
    }


def _text(value: Any) -> str:
    """Someone's text from the file: a string, one line, no control characters, bounded."""
    if not isinstance(value, str | int | float):
        return ""
    return "".join(ch for ch in str(value) if ch.isprintable())[:TEXT_LIMIT]


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
