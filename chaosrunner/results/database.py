"""The little the store needs from a database, so SQLite and PostgreSQL look alike to it.

SQL is written with ``?`` placeholders (the PostgreSQL adapter turns them into
``%s``); each adapter maps its driver's errors into our tree at this seam and
keeps the connection string out of every message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Database(Protocol):
    dialect: str  # "sqlite" | "postgresql": which SQL the migrations and queries use
    where: str  # where the store is, fit to print (a DSN is shown redacted)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]: ...

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction: committed on a clean exit, rolled back on an exception."""
        ...

    def close(self) -> None: ...
