"""The chat platforms' routes: ``POST /chat/slack/commands``, ``/chat/slack/events`` (the
:stopwatch: reaction) and ``/chat/mattermost/commands``.

Served only for a platform whose secret the scenario names and the
environment holds (``gameday.chat.inbound.handlers``; for ``chaosrunner
serve --chat``, ``gameday.chat.routing``). They are ``SignedRoute``s: the
platform's servers send no run token and use the proxy's public name, so the
guards' Host, Origin and token checks do not apply; instead the body is
bounded here first, from the headers before a byte is read (a slash
command's URL-encoded form of at most 16 KiB; an event's JSON of at most
64 KiB), and then the platform's handler verifies the signature or token
over the raw bytes before anything is parsed or journaled. Everything else
on the server stays as guarded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from chaosrunner.gameday.chat.inbound import Handler
from chaosrunner.gameday.server.app import SignedRoute, json_reply, refuse
from chaosrunner.gameday.server.guards import (
    MAX_BODY,
    MAX_FORM,
    RawHeaders,
    Refusal,
    check_form_body,
    check_json_body,
    header_values,
)

# What each kind of body may be: its check from the headers, and the most bytes read.
BODIES: dict[str, tuple[Callable[[RawHeaders], Refusal | None], int]] = {
    "form": (check_form_body, MAX_FORM),
    "json": (check_json_body, MAX_BODY),
}
# The headers a handler may read: the signature's; nothing else about the request matters to it.
SIGNED_HEADERS = ("x-slack-request-timestamp", "x-slack-signature")


def chat_routes(handlers: Iterable[Handler]) -> list[SignedRoute]:
    return [SignedRoute(handler.path, _endpoint(handler), methods=["POST"]) for handler in handlers]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    check, limit = BODIES[handler.content]

    async def command(request: Request) -> Response:
        raw = request.scope["headers"]
        refusal = check(raw)
        if refusal is not None:
            return refuse(refusal)
        body = bytearray()
        async for chunk in request.stream():  # Content-Length bounds it; this bounds it again
            body += chunk
            if len(body) > limit:
                return json_reply(413, {"error": "the body is larger than its Content-Length"}, close=True)
        headers: dict[str, str] = {}
        for name in SIGNED_HEADERS:
            values = header_values(raw, name)
            if len(values) == 1:  # two signatures is no signature
                headers[name] = values[0]
        reply = await run_in_threadpool(handler.handle, bytes(body), headers)
        return json_reply(reply.status, reply.body)

    return command
