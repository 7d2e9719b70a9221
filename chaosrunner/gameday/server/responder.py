"""The responder API: marks in, the run's responder events out.

    POST /events   {"event": "severity", "value": "P2", "by": "alice"}   -> 201, the mark
    POST /events   {"event": "detected", "via": "synthetic", "by": "bob"}
    GET  /events   the responder events so far (JSON list)

A body may name the run it means (``"run_id"``); a mark meant for another
run is refused rather than journaled into this one. Everything else is
``gameday.marks.record_fields`` - the validation every source shares - and a
mistake is a 400 that says what was wrong.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.marks import record_fields, responder_events
from chaosrunner.gameday.server.app import capability, json_reply
from chaosrunner.gameday.server.bodies import read_json
from chaosrunner.gameday.server.token import Capability


def role_refusal(fields: object, scope: Scope) -> JSONResponse | None:
    """A mark may claim the facilitator's role only with the facilitator's link (any door)."""
    claims = isinstance(fields, dict) and fields.get("role") == "facilitator"
    if claims and capability(scope) < Capability.FACILITATOR:
        return json_reply(403, {"error": "only the facilitator's link marks as the facilitator"})
    return None


def responder_routes(run: RunDir) -> list[Route]:
    async def list_events(_: Request) -> Response:
        events = await run_in_threadpool(lambda: responder_events(run.events()))
        return json_reply(200, [event.as_fields() for event in events])

    async def post_event(request: Request) -> Response:
        fields = await read_json(request)
        if isinstance(fields, JSONResponse):
            return fields
        if isinstance(fields, dict):
            meant = fields.pop("run_id", None)
            if meant is not None and meant != run.run_id:
                return json_reply(409, {"error": f"this endpoint serves run {run.run_id}, not {meant!r}"})
        refusal = role_refusal(fields, request.scope)
        if refusal is not None:
            return refusal
        try:
            event = await run_in_threadpool(record_fields, run, fields)
        except ChaosrunnerError as error:
            return json_reply(400, {"error": str(error)})
        return json_reply(201, event.as_fields())

    return [
        Route("/events", list_events, methods=["GET"]),
        Route("/events", post_event, methods=["POST"]),
    ]
