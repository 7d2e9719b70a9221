"""``chaosrunner mark --url``: posting one mark to a live run's responder endpoint.

Standard library only. No proxies and no redirects: the token goes to the
address the person typed and nowhere else (a redirect would carry the
``Authorization`` header to whatever host it names). The server's answer -
the recorded mark, or what was wrong with it - comes back as data.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from chaosrunner.errors import ServiceUnreachable, UsageError
from chaosrunner.gameday.server.token import RunToken

TIMEOUT = 10.0
MAX_ANSWER = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def events_url(url: str) -> str:
    """The ``/events`` URL from what people type (``http://host:port`` or the full URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r}: expected http(s)://HOST:PORT[/events]")
    base = url.rstrip("/")
    return base if base.endswith("/events") else base + "/events"


def post_mark(url: str, token: RunToken, run_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """POST one mark; returns the mark as the run journaled it."""
    target = events_url(url)
    request = urllib.request.Request(
        target,
        data=json.dumps({**fields, "run_id": run_id}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token.value}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            answer: dict[str, Any] = json.loads(response.read(MAX_ANSWER))
            return answer
    except urllib.error.HTTPError as error:
        reason = _error_text(error)
        if error.code in (400, 409, 413, 415):
            raise UsageError(f"the run refused the mark: {reason}") from None
        if error.code in (401, 403):
            raise UsageError(f"{target} refused the request ({error.code}): {reason}") from None
        raise ServiceUnreachable(f"{target} answered {error.code}: {reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ServiceUnreachable(f"cannot post to {target}: {getattr(error, 'reason', error)}") from None


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read(MAX_ANSWER))["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return error.reason or "no reason given"
