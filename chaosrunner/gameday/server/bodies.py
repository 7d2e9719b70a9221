"""Reading a request's JSON body under the guards: every route that takes one reads it here.

The headers are checked first (``guards.check_json_body``: type and length,
before a byte is read), then the body is read no further than its bound,
its nesting is bounded before ``json.loads`` recurses into it, and what
comes out is either the document or the reply that says what was wrong.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from chaosrunner.gameday.server.app import json_reply, refuse
from chaosrunner.gameday.server.guards import MAX_BODY, MAX_DEPTH, check_json_body, too_deep


async def read_json(request: Request) -> Any | JSONResponse:
    """The decoded JSON document, or the refusal to send instead (a ``JSONResponse``)."""
    refusal = check_json_body(request.scope["headers"])
    if refusal is not None:
        return refuse(refusal)
    body = bytearray()
    async for chunk in request.stream():  # Content-Length bounds it; this bounds it again
        body += chunk
        if len(body) > MAX_BODY:
            return json_reply(413, {"error": "the body is larger than its Content-Length"}, close=True)
    if too_deep(bytes(body)):
        return json_reply(400, {"error": f"JSON nested deeper than {MAX_DEPTH} levels"})
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return json_reply(400, {"error": f"malformed JSON: {error}"})


async def read_object(request: Request) -> dict[str, Any] | JSONResponse:
    """Like ``read_json``, for routes that take one JSON object."""
    document = await read_json(request)
    if isinstance(document, JSONResponse):
        return document
    if not isinstance(document, dict):
        return json_reply(400, {"error": "expected a JSON object"})
    return document
