"""A small client of the run server for tests: plain requests and an event stream read in a thread.

Standard library only (``http.client``), so a test sees exactly what went on
the wire: status, headers, the SSE framing. ``EventStream`` parses messages
as a browser does (``event``/``id``/``data`` lines, a blank line ends one,
``:`` lines are comments) into a queue a test can wait on.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> Answer:
    sent = {"Host": f"{host}:{port}"}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


@dataclass
class SseMessage:
    event: str
    data: Any
    id: int | None


@dataclass
class EventStream:
    """``GET /api/stream`` held open; messages arrive in ``messages`` as they are read."""

    port: int
    token: str
    last_event_id: str | None = None
    status: int = 0
    messages: queue.Queue[SseMessage | None] = field(default_factory=queue.Queue)
    received: list[SseMessage] = field(default_factory=list)

    def open(self) -> EventStream:
        headers = {"Host": f"127.0.0.1:{self.port}", "Authorization": f"Bearer {self.token}"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self._connection.request("GET", "/api/stream", headers=headers)
        self._response = self._connection.getresponse()
        self.status = self._response.status
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        event, data, ident = "message", [], None
        try:
            for raw in self._response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        self.messages.put(SseMessage(event, json.loads("\n".join(data)), ident))
                    event, data, ident = "message", [], None
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                    elif name == "id":
                        ident = int(value)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the test closed the connection under the reader (http.client then trips over itself)
        finally:
            self.messages.put(None)  # the end of the stream

    def next(self, timeout: float = 10.0) -> SseMessage | None:
        """The next message (None: the stream ended); fails the test after ``timeout``."""
        message = self.messages.get(timeout=timeout)
        if message is not None:
            self.received.append(message)
        return message

    def until(self, wanted: Any, timeout: float = 10.0) -> SseMessage:
        """Read until a message for which ``wanted(message)`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            assert message is not None, f"the stream ended; got {[m.event for m in self.received]}"
            if wanted(message):
                return message

    def rest(self, timeout: float = 10.0) -> list[SseMessage]:
        """Every message until the stream ends."""
        found = []
        while (message := self.next(timeout)) is not None:
            found.append(message)
        return found

    def close(self) -> None:
        if self._connection.sock is not None:  # wakes the reader thread blocked in recv
            with contextlib.suppress(OSError):
                self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._connection.close()
