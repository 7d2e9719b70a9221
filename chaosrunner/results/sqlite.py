"""The default store: one SQLite file in the state folder, nothing to set up.

``<state>/results.sqlite3`` is created 0600 in the 0700 state folder (SQLite
gives its WAL and shared-memory files the database file's mode). The CLI and
the schedule daemon may write at the same moment: WAL lets readers go on while
one writes, every write transaction starts with ``BEGIN IMMEDIATE`` (it takes
the write lock up front, so two writers never deadlock upgrading read locks),
and a busy timeout makes the second writer wait for the first instead of
failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chaosrunner.errors import EnvironmentProblem
from chaosrunner.private_files import FILE_MODE, create_exclusive, private_dir

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a writer waits for another's transaction (a put is milliseconds; a sync of thousands, seconds)."""


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.where = f"sqlite {path}"
        private_dir(path.parent)
        _create_private(path)
        try:
            # isolation_level=None: no implicit transactions; ours are explicit (BEGIN IMMEDIATE).
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as error:
            raise EnvironmentProblem(f"results store {path}: {error}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._mapped():
            self._conn.execute(sql, tuple(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        with self._mapped():
            cursor = self._conn.execute(sql, tuple(params))
            while batch := cursor.fetchmany(256):
                yield from batch

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._mapped():
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        with self._mapped():
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise EnvironmentProblem(f"results store {self.path}: {error}") from None


def _create_private(path: Path) -> None:
    """The database file, 0600 before SQLite ever opens it; an existing one of ours is tightened."""
    try:
        os.close(create_exclusive(path))
    except FileExistsError:
        info = os.lstat(path)
        if (
            stat.S_ISREG(info.st_mode)
            and info.st_uid == os.geteuid()
            and stat.S_IMODE(info.st_mode) != FILE_MODE
        ):
            os.chmod(path, FILE_MODE)
