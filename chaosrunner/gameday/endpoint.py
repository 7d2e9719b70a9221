"""The live gameday run's one web server: the responder endpoint and the facilitator console.

So the room can follow and act on the run without a shell on the runner's
machine: ``chaosrunner mark --url``, a chat bot or the console page in a
browser all talk to this server.

    POST /events        a mark (``{"event": "severity", "value": "P2", "by": "alice"}``)
    GET  /events        the responder events so far
    GET  /              the console's page shell (no token; the page asks with one)
    GET  /api/...       the console's API (``gameday.server.console_api``)

Every request but the page shell carries one of the run's three tokens
(``Authorization: Bearer``) - facilitator, team or observer, each granting
less; see ``gameday.server.guards`` for every check and
``docs/responder-endpoint.md`` for how to use it, including TLS in front for
``--listen`` beyond loopback.

Two steps, because they belong to two moments of a run: the constructor
binds the address - before the runner creates or injects anything, so a port
in use stops the command with a clear error - and ``start`` writes the token
files into the run folder and serves once that folder exists. ``close`` ends
every open event stream (``bye``), stops serving and removes the token files.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import UsageError
from chaosrunner.gameday.server.guards import WILDCARDS, PublicUrl
from chaosrunner.gameday.server.serving import BackgroundServer, bind
from chaosrunner.gameday.server.token import RunToken, RunTokens, remove_files

REPORT_GRACE_SECONDS = 3.0  # how long the end of a run waits for pages still fetching the debrief

if TYPE_CHECKING:
    from chaosrunner.gameday.server.live_run import LiveRun

LOOPBACK = "127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:8765`` for IPv6) -> (host, port); a UsageError naming the flag otherwise."""
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 0.0.0.0:8765 or 10.0.0.5:8765")
    return host, int(port)


class RunServer:
    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        public_url: PublicUrl | None = None,
        read_only: bool = False,
    ) -> None:
        self.host = host
        self.public_url = public_url
        self.read_only = read_only  # automated runs: the observer's link alone, nobody acts
        self._listener = bind(host, port)
        self.address, self.port = self._listener.getsockname()[:2]
        self.tokens = RunTokens.new(read_only=read_only)
        self.token_files: list[Path] = []
        self.live: LiveRun | None = None
        self._server: BackgroundServer | None = None

    @property
    def token(self) -> RunToken:
        """The facilitator's token: the one ``chaosrunner mark --url`` reads from the run folder."""
        return self.tokens.facilitator

    @property
    def token_file(self) -> Path | None:
        return self.token_files[0] if self.token_files else None

    @property
    def base_url(self) -> str:
        """The server's address as people type it: the TLS proxy's origin when there is one, else
        the bound address (the machine's name when listening on every address)."""
        if self.public_url is not None:
            return self.public_url.origin
        shown = socket.gethostname() if self.host in WILDCARDS else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    @property
    def url(self) -> str:
        """Where people send marks."""
        return f"{self.base_url}/events"

    @property
    def console_url(self) -> str:
        """The console's page, without a token (what the journal may keep)."""
        return f"{self.base_url}/"

    def link(self, token: RunToken) -> str:
        """The console opened with ``token``: in the fragment, which browsers never send to a server."""
        return f"{self.console_url}#token={token.value}"

    def start(self, run: RunDir, live: LiveRun | None = None, more_routes: Sequence[Any] = ()) -> None:
        """Write the token files and serve; when this returns, requests are answered."""
        from chaosrunner.gameday.server.app import make_app
        from chaosrunner.gameday.server.guards import Access
        from chaosrunner.gameday.server.responder import responder_routes
        from chaosrunner.gameday.server.shell import shell_routes

        self.token_files = self.tokens.write(run.path)
        routes = [*responder_routes(run), *shell_routes(), *more_routes]
        if live is not None:
            from chaosrunner.gameday.server.console_api import console_routes

            self.live = live
            routes.extend(console_routes(live))
            live.feed.start()
        access = Access(self.host, self.address, self.port, self.tokens, self.public_url)
        self._server = BackgroundServer(make_app(routes, access), self._listener)
        self._server.serve()

    def close(self) -> None:
        """Say bye to every open stream, stop serving; the tokens are worthless now, so their files go."""
        try:
            if self.live is not None:
                self.live.report_handoff.wait(REPORT_GRACE_SECONDS)  # the pages told of it fetch the debrief
                self.live.feed.close()  # ends every stream: uvicorn would wait for them otherwise
            if self._server is not None:
                self._server.stop()
            else:
                self._listener.close()
        finally:
            remove_files(self.token_files)
