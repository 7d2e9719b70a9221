"""A small connection pool, shaped like the ones production services use.

Connections are opened on demand up to ``max_size``, handed out one request
at a time, closed after ``max_idle`` unused (down to one) and retired after
``max_lifetime``. Those two settings are what make a real pool starve when the
database stops accepting new connections: it shrinks when traffic dips, the
slots it gave back are taken by someone else, and when traffic comes back it
cannot grow - requests queue and time out. That is the
incident the demo's scenario rehearses, so the pool is written to show it:
it counts connections in use, idle and waiting, and connect failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chaosrunner.demo import database


@dataclass
class _Pooled:
    connection: Any
    born: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)


class PoolTimeout(database.DatabaseUnavailable):
    """No connection became free within the acquire timeout."""


class ConnectionPool:
    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 8,
        max_lifetime: float = 5.0,
        max_idle: float = 1.0,
        acquire_timeout: float = 1.0,
        application_name: str = "checkout",
    ) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self.max_lifetime = max_lifetime
        self.max_idle = max_idle
        self.acquire_timeout = acquire_timeout
        self.application_name = application_name
        self._idle: list[_Pooled] = []
        self._in_use = 0
        self._opening = 0
        self.waiting = 0
        self.connect_failures = 0
        self._lock = threading.Condition()

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def idle(self) -> int:
        return len(self._idle)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        pooled = self._acquire()
        try:
            yield pooled.connection
        finally:
            self._release(pooled)

    def _acquire(self) -> _Pooled:
        deadline = time.monotonic() + self.acquire_timeout
        with self._lock:
            self.waiting += 1
            try:
                self._retire_idle()
                while True:
                    while self._idle:
                        pooled = self._idle.pop()
                        if self._fresh(pooled):
                            self._in_use += 1
                            return pooled
                        database.close(pooled.connection)
                    if self._in_use + self._opening < self.max_size:
                        self._opening += 1
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolTimeout(f"no pool connection within {self.acquire_timeout:g}s")
                    self._lock.wait(remaining)
            finally:
                self.waiting -= 1
        try:
            connection = database.connect(self.dsn, self.application_name, self.acquire_timeout)
        except database.DatabaseUnavailable:
            with self._lock:
                self._opening -= 1
                self.connect_failures += 1
                self._lock.notify()
            raise
        with self._lock:
            self._opening -= 1
            self._in_use += 1
        return _Pooled(connection)

    def _retire_idle(self) -> None:
        """Close connections idle longer than max_idle, keeping the most recently used one."""
        now = time.monotonic()
        keep = [
            pooled
            for index, pooled in enumerate(self._idle)
            if index == len(self._idle) - 1 or now - pooled.last_used < self.max_idle
        ]
        for pooled in self._idle:
            if pooled not in keep:
                database.close(pooled.connection)
        self._idle = keep

    def _fresh(self, pooled: _Pooled) -> bool:
        return time.monotonic() - pooled.born < self.max_lifetime and not database.is_broken(
            pooled.connection
        )

    def _release(self, pooled: _Pooled) -> None:
        with self._lock:
            self._in_use -= 1
            if self._fresh(pooled):
                pooled.last_used = time.monotonic()
                self._idle.append(pooled)
            else:
                database.close(pooled.connection)
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            for pooled in self._idle:
                database.close(pooled.connection)
            self._idle.clear()
