"""The live run's ASGI app: routes behind the guards, a JSON error for every refusal.

``make_app`` takes the routes (the responder's ``/events``, the console's
page and API; the chat commands add theirs) and wraps them in ``Guarded``, a
plain ASGI middleware that checks Host, Origin and the token on the raw
headers before any route runs - leaving the request's ``Capability`` in the
scope for the route to check with ``refused_unless`` - and turns anything a
route raises into a one-line 500: a person's text never reaches stderr as a
traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaosrunner.gameday.server.guards import PUBLIC_PATHS, READ_METHODS, Access, Refusal, permits
from chaosrunner.gameday.server.token import Capability

log = logging.getLogger("chaosrunner.server")

# What every response says: JSON is data (never sniffed as HTML), and never cached.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
# What every HTML response says on top: nothing but our own files runs, nothing frames us,
# no link carries the address (and so never a token) anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    **SAFE_HEADERS,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}
CAPABILITY = "chaosrunner.capability"  # the scope key Guarded leaves for the routes


def json_reply(status: int, body: Any, *, close: bool = False) -> JSONResponse:
    headers = dict(SAFE_HEADERS)
    if close:  # we answered without reading the body: the connection cannot be reused
        headers["Connection"] = "close"
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="chaosrunner"'
    return JSONResponse(body, status_code=status, headers=headers)


def refuse(refusal: Refusal) -> JSONResponse:
    return json_reply(refusal.status, {"error": refusal.message}, close=True)


def capability(scope: Scope) -> Capability:
    """The capability Guarded found; the least one for a public path (which has none)."""
    granted = scope.get(CAPABILITY)
    return granted if isinstance(granted, Capability) else Capability.OBSERVER


def refused_unless(scope: Scope, needed: Capability) -> JSONResponse | None:
    """A route's own check: a 403 reply when the request's token grants less than ``needed``."""
    refusal = permits(capability(scope), needed)
    return None if refusal is None else refuse(refusal)


class SignedRoute(Route):
    """A POST route a chat platform calls: it authenticates the request itself, by the
    platform's signature or token, so ``Guarded`` lets it past the Host, Origin and run-token
    checks (the platform's servers send none of them). Everything else stays guarded."""


class Guarded:
    """Host, Origin and token checks in front of every route; no exception escapes to the server."""

    def __init__(self, app: ASGIApp, access: Access, signed_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.access = access
        self.signed_paths = frozenset(signed_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no websockets, no lifespan: nothing else is served
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refuse(refusal)(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:  # one line on stderr; the caller gets a 500, the run goes on
            log.warning("%s %s failed: %s", scope["method"], scope["path"], error)
            if not started:
                reply = json_reply(500, {"error": "internal error; see the runner's terminal"}, close=True)
                await reply(scope, receive, send)

    def _refusal(self, scope: Scope) -> Refusal | None:
        headers = scope["headers"]
        if scope["path"] in self.signed_paths and scope["method"] == "POST":
            scope.pop(CAPABILITY, None)  # the route checks the platform's signature before anything
            return None
        refusal = self.access.check_address(headers)
        if refusal is not None:
            return refusal
        if scope["path"] in PUBLIC_PATHS and scope["method"] in READ_METHODS:
            scope.pop(CAPABILITY, None)
            return None
        granted = self.access.authenticate(headers)
        if isinstance(granted, Refusal):
            return granted
        if scope["method"] not in READ_METHODS:  # whatever a route says: an observer never writes
            refusal = permits(granted, Capability.TEAM)
            if refusal is not None:
                return refusal
        scope[CAPABILITY] = granted
        return None


def make_app(routes: Sequence[BaseRoute], access: Access) -> ASGIApp:
    signed = [route.path for route in routes if isinstance(route, SignedRoute)]
    return Guarded(Starlette(routes=list(routes)), access, signed_paths=signed)
