"""The team's actions from the console: marks, abort, the run sheet's checklist and go/no-go.

    POST /api/marks      a responder mark, as ``chaosrunner mark``           team, facilitator
    POST /api/abort      the same request as ``chaosrunner abort RUN_ID``   team, facilitator
    POST /api/checklist  tick a run-sheet prerequisite                      facilitator
    POST /api/go         the go / no-go decision                            facilitator

Every write goes through the function the CLI uses (``gameday.marks``,
``gameday.run_sheet``, ``RunDir.request_abort``), so a mark from the page and
one from a terminal are one kind of journal event with one validation; the
feed is woken so every open page sees it at once. An observer never gets
here (``Guarded`` refuses its writes); each route checks the rest.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chaosrunner.errors import ChaosrunnerError, UsageError
from chaosrunner.gameday.server.app import json_reply, refused_unless
from chaosrunner.gameday.server.bodies import read_object
from chaosrunner.gameday.server.live_run import LiveRun
from chaosrunner.gameday.server.responder import role_refusal
from chaosrunner.gameday.server.token import Capability

MAX_NAME = 200
MAX_REASON = 1000


def action_routes(live: LiveRun) -> list[Route]:
    run = live.run

    async def post_mark(request: Request) -> Response:
        fields = await read_object(request)
        if isinstance(fields, JSONResponse):
            return fields
        refusal = role_refusal(fields, request.scope)
        if refusal is not None:
            return refusal
        from chaosrunner.gameday.marks import record_fields

        try:
            event = await run_in_threadpool(record_fields, run, fields)
        except ChaosrunnerError as error:
            return json_reply(400, {"error": one_line(error)})
        live.feed.wake()
        return json_reply(201, event.as_fields())

    async def post_abort(request: Request) -> Response:
        fields = await read_object(request)
        if isinstance(fields, JSONResponse):
            return fields
        try:
            by, reason = _abort_fields(fields)
        except UsageError as error:
            return json_reply(400, {"error": one_line(error)})
        if not await run_in_threadpool(run.is_live):
            return json_reply(409, {"error": f"run {run.run_id} is not live"})
        detail = f"aborted by {by} from the console" + (f": {reason}" if reason else "")
        await run_in_threadpool(run.request_abort, detail)
        return json_reply(
            202, {"detail": f"abort requested: run {run.run_id} reverts within one check interval"}
        )

    async def post_checklist(request: Request) -> Response:
        refusal = refused_unless(request.scope, Capability.FACILITATOR)
        if refusal is not None:
            return refusal
        fields = await read_object(request)
        if isinstance(fields, JSONResponse):
            return fields
        from chaosrunner.gameday.run_sheet import record_checklist

        try:
            item, checked, by = _checklist_fields(fields)
            event = await run_in_threadpool(lambda: record_checklist(run, item, checked, by=by))
        except ChaosrunnerError as error:
            return json_reply(400, {"error": one_line(error)})
        live.feed.wake()
        return json_reply(201, _fields(event))

    async def post_go(request: Request) -> Response:
        refusal = refused_unless(request.scope, Capability.FACILITATOR)
        if refusal is not None:
            return refusal
        fields = await read_object(request)
        if isinstance(fields, JSONResponse):
            return fields
        from chaosrunner.gameday.run_sheet import record_decision

        try:
            decision, by, reason = _decision_fields(fields)
        except UsageError as error:
            return json_reply(400, {"error": one_line(error)})
        try:
            event = await run_in_threadpool(
                lambda: record_decision(run, decision, by=by, role="facilitator", reason=reason)
            )
        except ChaosrunnerError as error:  # not awaiting go: before preflight, decided already, or over
            return json_reply(409, {"error": one_line(error)})
        live.feed.wake()
        return json_reply(201, _fields(event))

    return [
        Route("/api/marks", post_mark, methods=["POST"]),
        Route("/api/abort", post_abort, methods=["POST"]),
        Route("/api/checklist", post_checklist, methods=["POST"]),
        Route("/api/go", post_go, methods=["POST"]),
    ]


def one_line(error: Exception) -> str:
    """An error as the page shows it: one line (the loader's may list several problems)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _abort_fields(fields: dict[str, Any]) -> tuple[str, str]:
    _no_other_fields(fields, ("by", "reason"))
    return _text(fields, "by", MAX_NAME, required=True), _text(fields, "reason", MAX_REASON)


def _checklist_fields(fields: dict[str, Any]) -> tuple[int, bool, str]:
    _no_other_fields(fields, ("item", "checked", "by"))
    item, checked = fields.get("item"), fields.get("checked")
    if not isinstance(item, int) or isinstance(item, bool):
        raise UsageError('field "item" must be the prerequisite\'s number (0, 1, ...)')
    if not isinstance(checked, bool):
        raise UsageError('field "checked" must be true or false')
    return item, checked, _text(fields, "by", MAX_NAME, required=True)


def _decision_fields(fields: dict[str, Any]) -> tuple[str, str, str]:
    _no_other_fields(fields, ("decision", "by", "reason"))
    decision = fields.get("decision")
    if decision not in ("go", "no_go"):
        raise UsageError('field "decision" must be "go" or "no_go"')
    return str(decision), _text(fields, "by", MAX_NAME, required=True), _text(fields, "reason", MAX_REASON)


def _text(fields: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise UsageError(f'field "{name}" is required: who is acting')
        return ""
    if not isinstance(value, str):
        raise UsageError(f'field "{name}" must be a string, not {type(value).__name__}')
    if len(value) > limit:
        raise UsageError(f'field "{name}" is longer than {limit} characters')
    return value.strip()


def _no_other_fields(fields: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(str(name) for name in fields if name not in known)
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; expected: {', '.join(known)}")


def _fields(event: Any) -> dict[str, Any]:
    """What a journaling function returned, as JSON fields."""
    if hasattr(event, "as_fields"):
        return dict(event.as_fields())
    return dict(event) if isinstance(event, dict) else {}
