"""The per-run tokens: what a request may do depends on which one it shows.

Three per run, each made fresh (256 bits from ``secrets``) and written once
into its own file in the run folder - created exclusively, never through a
symlink, readable by its owner only - shown once on the runner's terminal
as a console link, and removed when the server stops. None ever goes into
the journal: reports and every tool that reads the journal would carry it.

============  ================  =====================================================
capability    file              may
============  ================  =====================================================
facilitator   responder-token   everything: marks, checklist, go/no-go, abort, injects
team          team-token        marks and abort (the incident commander, responders)
observer      observer-token    read only: the run view, the stream, the report
============  ================  =====================================================

The facilitator's file keeps its old name, so ``chaosrunner mark --url`` on
the runner's machine finds it as before.

Who can read the run folder can already write its journal directly, so the
file gives a local ``chaosrunner mark --url`` nothing it did not have; a
responder on another machine gets the token from the facilitator and passes
it in ``CHAOSRUNNER_TOKEN`` (never on the command line: argv is visible to
every user of a machine).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from chaosrunner.errors import EnvironmentProblem, UsageError

TOKEN_FILE = "responder-token"
TEAM_TOKEN_FILE = "team-token"
OBSERVER_TOKEN_FILE = "observer-token"
ENV_VAR = "CHAOSRUNNER_TOKEN"
_TOKEN_BYTES = 32  # 256 bits; the issue asks for at least 128
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class RunToken:
    value: str = field(repr=False)  # a repr in a log or a traceback must not carry it

    @classmethod
    def new(cls) -> RunToken:
        return cls(secrets.token_urlsafe(_TOKEN_BYTES))

    def matches(self, presented: bytes) -> bool:
        """Constant time, so response timing says nothing about how much of a guess was right."""
        return hmac.compare_digest(presented, self.value.encode("ascii"))


class Capability(IntEnum):
    """What a token grants; each grants everything the ones below it do."""

    OBSERVER = 1
    TEAM = 2
    FACILITATOR = 3

    @property
    def label(self) -> str:
        return self.name.lower()


_FILES = {
    Capability.FACILITATOR: TOKEN_FILE,
    Capability.TEAM: TEAM_TOKEN_FILE,
    Capability.OBSERVER: OBSERVER_TOKEN_FILE,
}


@dataclass(frozen=True)
class RunTokens:
    """The three tokens of one run; a read-only run (automated mode) honours the observer's alone."""

    facilitator: RunToken
    team: RunToken
    observer: RunToken
    read_only: bool = False

    @classmethod
    def new(cls, *, read_only: bool = False) -> RunTokens:
        return cls(RunToken.new(), RunToken.new(), RunToken.new(), read_only)

    def by_capability(self) -> dict[Capability, RunToken]:
        if self.read_only:  # nobody acts on an automated run from the page: there is no one to watch for
            return {Capability.OBSERVER: self.observer}
        return {
            Capability.FACILITATOR: self.facilitator,
            Capability.TEAM: self.team,
            Capability.OBSERVER: self.observer,
        }

    def write(self, run_folder: Path) -> list[Path]:
        """One 0600 file per token; the files already written are removed when one fails."""
        written: list[Path] = []
        try:
            for capability, token in self.by_capability().items():
                written.append(write_token(run_folder, token, _FILES[capability]))
        except BaseException:
            remove_files(written)
            raise
        return written


def remove_files(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def token_path(run_folder: Path, name: str = TOKEN_FILE) -> Path:
    return run_folder / name


def write_token(run_folder: Path, token: RunToken, name: str = TOKEN_FILE) -> Path:
    """Create a token file, 0600; refuses an existing file or a symlink in its place."""
    path = token_path(run_folder, name)
    try:
        descriptor = os.open(path, _CREATE, 0o600)
    except OSError as error:
        raise EnvironmentProblem(f"cannot create the token file {path}: {error}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(token.value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def read_token(run_folder: Path) -> RunToken:
    """The token of a local run; only from a regular file of ours that no one else can read."""
    path = token_path(run_folder)
    try:
        descriptor = os.open(path, _READ)
    except FileNotFoundError:
        raise UsageError(
            f"{path} does not exist: the run has no responder endpoint (not a gameday run, "
            f"or it finished); set {ENV_VAR} to the token shown when the run started"
        ) from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise UsageError(f"{path} is not a private file of yours (0600); refusing to use it")
        value = handle.read(1024).decode("ascii", "replace").strip()
    if not value:
        raise UsageError(f"{path} is empty")
    return RunToken(value)
