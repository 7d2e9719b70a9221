"""Files and folders only their owner can read: the run state on a shared machine.

A run folder holds what decides whether faults get reverted (the journal, the
lock that says the runner is alive, the abort request) and the team's token.
Another local user who can read it can forge liveness with a shared ``flock``
or read the token; one who can write beside it can plant a symlink where we
are about to write. So:

- folders are 0700 and owned by us; looser modes left by older versions are
  tightened when we touch them, and a folder owned by someone else is refused;
- files are 0600, written atomically through a temporary file created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` (never an existing file, never through a
  symlink) and renamed over the target;
- files are opened with ``O_NOFOLLOW``, so a symlink planted in place of one
  is an error, not a redirection.

Foundation module: standard library only, imported by any layer.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from chaosrunner.errors import NotPermitted

DIR_MODE = 0o700
FILE_MODE = 0o600
# Never follow a symlink, never hand the descriptor to a child process.
NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or tighten it if it exists looser.

    Raises NotPermitted when the folder belongs to another user: whoever owns
    it can swap what is inside, so nothing we keep there would be ours.
    """
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise NotPermitted(f"{path} is not a folder")
    if info.st_uid != os.geteuid():
        raise NotPermitted(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()}): "
            "chaosrunner keeps run state only in folders you own (set --state-dir)"
        )
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def tighten(path: Path) -> None:
    """Make an existing folder of ours 0700 (an older version left it readable); others' are left alone."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def create_exclusive(path: Path, mode: int = FILE_MODE) -> int:
    """A new file at ``path``, opened for writing; fails if anything (even a symlink) is already there."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, mode)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of a file of ours: created 0600 when ``flags`` has O_CREAT, never through a symlink."""
    return os.open(path, flags | NO_FOLLOW, FILE_MODE)


def write_private(path: Path, data: bytes | str, mode: int = FILE_MODE) -> None:
    """Replace ``path`` atomically with ``data`` in a file of ``mode`` (0600 by default).

    The temporary file is new (O_EXCL) and never a symlink (O_NOFOLLOW), so
    nobody can make us write through a name they planted; ``os.replace``
    swaps it in whole, so readers see the old content or the new, never half.
    """
    payload = data.encode() if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = create_exclusive(temporary, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits off; it may not add any
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_no_follow(path: Path, limit: int = 64 * 1024) -> bytes:
    """At most ``limit`` bytes of a regular file, refusing symlinks and never blocking on a FIFO.

    Raises FileNotFoundError when absent and OSError for anything else that is
    not a plain readable file (a symlink: ELOOP; a FIFO or device: EINVAL).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | NO_FOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(22, "not a regular file", str(path))
        return os.read(fd, limit)
    finally:
        os.close(fd)
