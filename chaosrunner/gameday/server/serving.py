"""Serving an ASGI app with uvicorn on a socket we bound ourselves, in a background thread.

Binding is separate from serving on purpose. ``bind`` runs before the run
creates anything: a port in use is an error with exit code 3 *then*, not a
run that injects faults with no way for the team to mark. ``serve`` starts
uvicorn on that socket in a thread (no signal handlers: the runner owns
SIGINT/SIGTERM and its reverts) and returns only once uvicorn accepts
connections; ``stop`` asks it to finish and waits.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
import time
from typing import Any

from chaosrunner.errors import EnvironmentProblem, UsageError
from chaosrunner.redaction import RedactingFilter

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# A room of browsers each holds an event stream open (20 and more), and posts besides:
# room for them, still a bound on what a flood of connections can take.
CONCURRENCY = 128
BACKLOG = 128
HEADER_TIMEOUT = 5.0
"""A request's headers must arrive within this; a client that trickles them (slowloris) is cut off."""
SLOW_PER_CLIENT = 32
"""Connections one address may have waiting for their headers at once; more are closed at once."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one); a clear error when that fails."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(f"cannot listen on {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of an earlier run only
        listener.bind(address)
        listener.listen(BACKLOG)
    except OSError as error:
        listener.close()
        where = f"port {port} on {host}"
        if error.errno == errno.EADDRINUSE:
            raise EnvironmentProblem(
                f"{where} is in use: choose another --port, or 0 for any free port"
            ) from None
        raise EnvironmentProblem(f"cannot listen on {where}: {error.strerror}") from None
    return listener


def _one_line_logs() -> None:
    """uvicorn's own warnings (a malformed request) as one line each on stderr, never a traceback."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NoTraceback("responder endpoint: %(message)s"))
    handler.addFilter(RedactingFilter())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "chaosrunner.server"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.WARNING)
        logger.propagate = False


class _NoTraceback(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return (super().format(record).splitlines() or [""])[0]


class BackgroundServer:
    """uvicorn on an already-listening socket, in a daemon thread."""

    def __init__(self, app: Any, listener: socket.socket) -> None:
        import uvicorn

        _one_line_logs()
        self._listener = listener
        config = uvicorn.Config(
            app,
            http=header_deadline_protocol(),
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,  # addresses are not trusted for anything; the token is
            server_header=False,
            limit_concurrency=CONCURRENCY,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,  # a client holding a request open cannot hold up the run's end
            h11_max_incomplete_event_size=16 * 1024,  # bounded header reads
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name="run-server", daemon=True
        )

    def serve(self) -> None:
        """Start, and return once connections are accepted (or raise)."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EnvironmentProblem("the responder endpoint did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)
        self._listener.close()


def header_deadline_protocol() -> type[Any]:
    """uvicorn's h11 protocol, with a deadline on each request's headers.

    uvicorn bounds the idle time between requests (``timeout_keep_alive``) and
    the headers' size, not the time they take: 130 connections each sending
    half a request line held every slot of ``limit_concurrency``, and the
    facilitator's abort button got 503s for as long as they stayed. So a
    connection waiting for its headers is closed after ``HEADER_TIMEOUT``, and
    when one address has more than ``SLOW_PER_CLIENT`` of them waiting, its
    oldest goes: a browser's request arrives whole in a moment (and on
    loopback every client shares one address, so refusing the newest would
    refuse the room).
    """
    from collections import OrderedDict

    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting: dict[str, OrderedDict[int, Any]] = {}  # address -> connections waiting for headers, oldest first

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: Any = None
        _address = ""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._address = self.client[0] if self.client else ""
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()  # part of a request line or its headers so far
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                return
            self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._close)
            queue = waiting.setdefault(self._address, OrderedDict())
            queue[id(self)] = self
            if len(queue) > SLOW_PER_CLIENT:
                _, oldest = queue.popitem(last=False)
                oldest._close()

        def _disarm(self) -> None:
            if self._deadline is None:
                return
            self._deadline.cancel()
            self._deadline = None
            queue = waiting.get(self._address)
            if queue is not None:
                queue.pop(id(self), None)
                if not queue:
                    waiting.pop(self._address, None)

        def _close(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
