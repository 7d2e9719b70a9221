"""The responder endpoint of a live gameday run: where the team posts marks over HTTP.

So a chat bot, a web page or ``chaosrunner mark --url`` on another machine
can record what the team does without a shell on the runner's machine:

    POST /events   {"event": "severity", "value": "P2", "by": "alice"}
    GET  /events   the responder events so far

Every request carries the run's token (``Authorization: Bearer``); see
``gameday.server.guards`` for every check and ``docs/responder-endpoint.md``
for how to use it, including TLS in front for ``--listen`` beyond loopback.

Two steps, because they belong to two moments of a run: the constructor
binds the address - before the runner creates or injects anything, so a port
in use stops the command with a clear error - and ``start`` writes the token
into the run folder and serves once that folder exists.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UsageError
from chaosrunner.gameday.server.guards import WILDCARDS
from chaosrunner.gameday.server.serving import BackgroundServer, bind
from chaosrunner.gameday.server.token import RunToken, write_token

LOOPBACK = "127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:8765`` for IPv6) -> (host, port); a UsageError naming the flag otherwise."""
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 0.0.0.0:8765 or 10.0.0.5:8765")
    return host, int(port)


class ResponderEndpoint:
    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.host = host
        self._listener = bind(host, port)
        self.address, self.port = self._listener.getsockname()[:2]
        self.token = RunToken.new()
        self.token_file: Path | None = None
        self._server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        """Where people send marks (the machine's name when listening on every address)."""
        shown = socket.gethostname() if self.host in WILDCARDS else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/events"

    def start(self, run: RunDir, more_routes: Sequence[Any] = ()) -> None:
        """Write the token file and serve; when this returns, requests are answered."""
        from chaosrunner.gameday.server.app import make_app
        from chaosrunner.gameday.server.guards import Access
        from chaosrunner.gameday.server.responder import responder_routes

        self.token_file = write_token(run.path, self.token)
        access = Access(self.host, self.address, self.port, self.token)
        app = make_app([*responder_routes(run), *more_routes], access)
        self._server = BackgroundServer(app, self._listener)
        self._server.serve()

    def close(self) -> None:
        """Stop serving; the token is worthless from here on, so its file goes too."""
        if self._server is not None:
            self._server.stop()
        else:
            self._listener.close()
        if self.token_file is not None:
            with contextlib.suppress(OSError):
                self.token_file.unlink()
