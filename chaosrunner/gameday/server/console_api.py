"""The facilitator console's API: what a page reads about the live run, and the routes it acts through.

    GET  /api/run        the run view (``run_view``), shaped by the token's capability
    GET  /api/stream     Server-Sent Events (``stream``)
    GET  /api/report     the HTML debrief once written (404 until then)
    POST /api/...        the team's actions (``actions``)

Errors are one line of JSON; the report goes out with the page's content
security policy (it is HTML a browser renders).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chaosrunner.gameday.server.actions import action_routes
from chaosrunner.gameday.server.app import HTML_HEADERS, capability, json_reply
from chaosrunner.gameday.server.live_run import LiveRun
from chaosrunner.gameday.server.run_view import run_view
from chaosrunner.gameday.server.stream import stream_route

MAX_REPORT = 64 * 1024 * 1024


def console_routes(live: LiveRun) -> list[Route]:
    run = live.run

    async def get_run(request: Request) -> Response:
        return json_reply(200, run_view(live.scenario, run.run_id, live.mode, capability(request.scope)))

    async def get_report(_: Request) -> Response:
        path = live.report_file
        if path is None:
            return json_reply(404, {"error": "the report is not written yet"})
        try:
            text = await run_in_threadpool(_read_report, path)
        except OSError as error:
            return json_reply(404, {"error": f"the report cannot be read: {error.strerror}"})
        live.report_handoff.fetched()
        return Response(text, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)

    return [
        Route("/api/run", get_run, methods=["GET"]),
        Route("/api/report", get_report, methods=["GET"]),
        stream_route(live),
        *action_routes(live),
    ]


def _read_report(path: Any) -> str:
    with open(path, "rb") as handle:
        data = handle.read(MAX_REPORT + 1)
    if len(data) > MAX_REPORT:
        raise OSError(27, "File too large")
    return data.decode("utf-8", "replace")
