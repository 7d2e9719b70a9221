"""``chaosrunner serve``: the console's page over past runs, read-only, on the live run's server stack.

    GET /api/run                    200 {"serve": true} - no live run here: the page shows the list
                                    (a 200, not a 404: browsers log every 4xx as a console error)
    GET /api/runs                   the run list, newest first (what ``chaosrunner history`` shows)
    GET /api/runs/<run_id>/report   one run's HTML debrief, rendered on demand; 404 for an unknown id

The same guards as a live run (``app.make_app``: Host, Origin, the token on
everything but the page shell), the same page, and one token made fresh for
this process. That token is printed once and written nowhere: nothing but the
person's browser needs it (no ``mark --url`` talks to a past run), and a file
would outlive a ``kill -9`` as a credential nobody removes.

What the runs are and how a report is made belong to the report layer above
this one; the caller hands them in as a ``PastRunsSource``. Nothing here ever
posts: there is no route that takes a body - except, with ``serve --chat``,
the chat platforms' signed routes for every live gameday
(``gameday.chat.routing``), handed in as ``more_routes``: each authenticates
its request by the platform's signature or token, like a run's own server.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.server.app import HTML_HEADERS, json_reply
from chaosrunner.gameday.server.guards import WILDCARDS
from chaosrunner.gameday.server.serving import BackgroundServer, bind
from chaosrunner.gameday.server.shell import shell_routes
from chaosrunner.gameday.server.token import RunToken

LOOPBACK = "127.0.0.1"
_RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")  # the shape, before the listing is asked


class PastRunsSource(Protocol):
    def rows(self) -> list[dict[str, Any]]: ...

    def report_html(self, run_id: str) -> str | None: ...


def browse_routes(past: PastRunsSource) -> list[BaseRoute]:
    async def no_live_run(_: Request) -> Response:
        return json_reply(200, {"serve": True})

    async def run_list(_: Request) -> Response:
        return json_reply(200, await run_in_threadpool(past.rows))

    async def run_report(request: Request) -> Response:
        run_id = str(request.path_params["run_id"])
        if not _RUN_ID.fullmatch(run_id):
            return json_reply(404, {"error": "no such run"})
        try:
            html = await run_in_threadpool(past.report_html, run_id)
        except ChaosrunnerError as error:  # a damaged journal: say so, in one line
            return json_reply(422, {"error": f"run {run_id}: {error}"})
        if html is None:
            return json_reply(404, {"error": f"no run {run_id} in this state folder"})
        return HTMLResponse(html, headers=HTML_HEADERS)

    async def nothing_here(_: Request) -> Response:  # JSON like every other refusal, not Starlette's text
        return json_reply(404, {"error": "nothing is served here"})

    return [
        Route("/api/run", no_live_run, methods=["GET"]),
        Route("/api/runs", run_list, methods=["GET"]),
        Route("/api/runs/{run_id}/report", run_report, methods=["GET"]),
        Route("/{anything:path}", nothing_here, methods=["GET"]),
    ]


class PastRunsServer:
    """Bound when made (a port in use fails at once), serving from ``start`` until ``close``."""

    def __init__(
        self,
        past: PastRunsSource,
        host: str = LOOPBACK,
        port: int = 0,
        more_routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.past = past
        self.more_routes = list(more_routes)
        self.host = host
        self._listener = bind(host, port)
        self.address, self.port = self._listener.getsockname()[:2]
        self.token = RunToken.new()
        self._server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        """The page's address with the token in the fragment (a fragment is never sent to a server)."""
        shown = socket.gethostname() if self.host in WILDCARDS else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/#token={self.token.value}"

    def start(self) -> None:
        from chaosrunner.gameday.server.app import make_app
        from chaosrunner.gameday.server.guards import Access

        access = Access(self.host, self.address, self.port, self.token)
        # The chat's signed POST routes first: the page's catch-all answers every other path.
        app = make_app([*self.more_routes, *shell_routes(), *browse_routes(self.past)], access)
        self._server = BackgroundServer(app, self._listener)
        self._server.serve()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        else:
            self._listener.close()
