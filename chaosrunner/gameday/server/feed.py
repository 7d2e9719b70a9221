"""The run's feed: one reader of the journal, fanned out to every open event stream.

A console page is an adapter over the journal, like the terminal console:
everything it shows arrives as journal lines (the runner's events, marks
from the CLI, the page or chat) plus the live view's ``snapshot``,
``measured`` and ``report`` messages. One ``RunFeed`` per server reads the
journal's new complete lines - when the session wakes it from the runner's
listener, and every ``POLL_SECONDS`` anyway for the lines other processes
append (``chaosrunner mark``) - and hands each, with the byte offset just
after it, to every subscriber. Twenty pages cost one reader, not twenty.

The byte offset is the stream's event id: a page that reconnects says the
last one it saw (``Last-Event-ID``) and the stream replays the journal from
there (``read_lines``) before going live, so nothing is lost and nothing is
shown twice. A subscription's queue is bounded: a page that stops reading
cannot make the runner's process grow; when its queue overflows the stream
ends, and the page reconnects and catches up from the journal.

Thread-safe on purpose: the reader is a thread of its own, ``publish`` is
called from the live view's thread, and the subscribers are coroutines on
uvicorn's event loop (woken with ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.1  # the fallback for lines other processes append; the runner's own wake us at once
QUEUE_LIMIT = 2000  # messages waiting for one page; beyond that the page reconnects and replays
MAX_SUBSCRIBERS = 100  # open streams per run: a room of browsers, with room to spare
READ_CHUNK = 1024 * 1024
MAX_LINE = 16 * 1024 * 1024  # a journal line longer than this (none is) is skipped, not buffered
# The scenario copy and revert records are for the runner and recover; pids are nobody's business.
DROPPED_FIELDS = frozenset({"scenario", "revert_record", "monotonic_start", "pid", "pid_start_ticks"})


@dataclass(frozen=True)
class Message:
    event: str
    data: dict[str, Any]
    id: int | None = None  # journal lines: the byte offset just after the line


def project(event: dict[str, Any]) -> dict[str, Any]:
    """A journal event as pages see it."""
    return {name: value for name, value in event.items() if name not in DROPPED_FIELDS}


def read_lines(path: Path, start: int, end: int) -> tuple[list[Message], int]:
    """Journal messages for the complete lines from byte ``start`` up to ``end`` (at most a chunk).

    Returns the messages and where the next read starts; the position does
    not move past a torn last line. Lines that are not JSON are skipped.
    """
    messages: list[Message] = []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return messages, start
    with handle:
        handle.seek(start)
        size = READ_CHUNK
        while True:
            data = handle.read(min(size, max(0, end - start)))
            cut = data.rfind(b"\n")
            if cut >= 0 or len(data) < size or size >= MAX_LINE:
                break
            handle.seek(start)
            size *= 2  # one line longer than a chunk: read more of it
    if cut < 0:
        # A torn last line, or one longer than MAX_LINE: wait for the first, step over the second.
        return messages, (start + len(data) if len(data) >= MAX_LINE else start)
    position = start
    for raw in data[: cut + 1].splitlines(keepends=True):
        position += len(raw)
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(event, dict):
            messages.append(Message("journal", project(event), position))
    return messages, position


def resume_offset(header: str | None, path: Path) -> int:
    """Where a stream starts: after the line ``Last-Event-ID`` names, or 0 for anything else."""
    if header is None or not header.strip().isdigit() or len(header.strip()) > 15:
        return 0
    offset = int(header.strip())
    if offset == 0:
        return 0
    try:
        with path.open("rb") as handle:
            handle.seek(offset - 1)
            before = handle.read(1)
    except OSError:
        return 0
    return offset if before == b"\n" else 0  # an id we handed out always follows a newline


@dataclass(eq=False)
class Subscription:
    """One page's queue of messages, filled from any thread, drained on the event loop."""

    loop: asyncio.AbstractEventLoop
    _queue: deque[Message] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    closed: bool = False

    def put(self, message: Message, *, force: bool = False) -> None:
        with self._lock:
            if self.closed:
                return
            if len(self._queue) >= QUEUE_LIMIT and not force:
                self.overflowed = True
            else:
                self._queue.append(message)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self.loop.call_soon_threadsafe(self._ready.set)

    def close(self) -> None:
        with self._lock:
            self.closed = True
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._ready.set)

    async def next_batch(self) -> tuple[list[Message], bool]:
        """Whatever is queued, waiting until something is; and whether the subscription has ended.

        Both are taken under one lock: when it says ended, the batch holds
        everything queued before the end (the ``bye`` among it), so nothing
        is left behind unsent.
        """
        await self._ready.wait()
        self._ready.clear()
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            return batch, self.overflowed or self.closed


class RunFeed:
    def __init__(self, journal_path: Path, poll_seconds: float = POLL_SECONDS) -> None:
        self.journal_path = journal_path
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # the reader thread and close() never read at once
        self._offset = 0  # how far the journal is read and published
        self._subscribers: set[Subscription] = set()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def offset(self) -> int:
        """How far into the journal the feed has read (and published)."""
        with self._lock:
            return self._offset

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def wake(self) -> None:
        """Something was journaled: read it now rather than at the next poll."""
        self._wake.set()

    def publish(self, event_name: str, data: dict[str, Any]) -> None:
        """Send one message (not a journal line) to every open stream; any thread may call it."""
        message = Message(event_name, data)
        with self._lock:
            for subscriber in self._subscribers:
                subscriber.put(message)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> tuple[Subscription, int] | None:
        """A new subscription and the journal offset its live messages start after.

        The stream replays the journal up to that offset itself; the lock
        makes the two meet exactly. None when the feed is closed or full.
        """
        with self._lock:
            if self._closed.is_set() or len(self._subscribers) >= MAX_SUBSCRIBERS:
                return None
            subscription = Subscription(loop)
            self._subscribers.add(subscription)
            return subscription, self._offset

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        with self._lock:
            self._subscribers.discard(subscription)

    def close(self) -> None:
        """Read what is left, say ``bye`` to every stream and end them; the reader stops."""
        if self._closed.is_set():
            return
        self._read_new()
        with self._lock:
            self._closed.set()
            for subscriber in self._subscribers:
                subscriber.put(Message("bye", {}), force=True)
                subscriber.close()
            self._subscribers.clear()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self._read_new()
            except OSError:  # the journal is the runner's to worry about; try again next time
                continue

    def _read_new(self) -> None:
        with self._reading:
            while True:
                start = self._offset
                messages, position = read_lines(self.journal_path, start, start + MAX_LINE)
                if position == start:
                    return
                with self._lock:
                    self._offset = position
                    for message in messages:
                        for subscriber in self._subscribers:
                            subscriber.put(message)
