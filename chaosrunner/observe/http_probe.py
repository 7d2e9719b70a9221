"""One HTTP request for a steady-state check: status, a bounded body, the time it took.

The stdlib is enough for one request per check (``requests`` and ``httpx`` are
not our dependencies). Choices that make the answer mean what the check says:

- **redirects are not followed**: a 302 to a login page is not "healthy", and
  a check that wants one says ``expect_status: [302]``;
- **the body is bounded** (``BODY_LIMIT``): a probe reads what it needs to
  judge, never a download;
- **a deadline for the whole request**: the socket timeout bounds each wait,
  and the body is read in chunks only until the deadline, so a server
  trickling bytes cannot stretch a 3 s check into minutes (at worst one more
  socket timeout: the read in progress when the deadline passes);
- a 4xx or 5xx is an *answer* (its status is judged), while no answer at all
  (refused, DNS, TLS, timeout) is ``ProbeFailed`` with the reason.

Nothing here sees scenario models: the engine passes plain values, and the
header values it passes (some from secret variables) appear in no error.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import Any

BODY_LIMIT = 1024 * 1024
CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    elapsed: float
    truncated: bool


class ProbeFailed(Exception):
    """No answer: the reason in words, and how long we tried."""

    def __init__(self, reason: str, elapsed: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.elapsed = elapsed


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx reaches us as an HTTPError: an answer like any other


_OPENER = urllib.request.build_opener(_NoRedirects)


def request(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    timeout: float = 3.0,
    limit: int = BODY_LIMIT,
) -> HttpAnswer:
    """Make the request; raise ``ProbeFailed`` when no answer came within ``timeout``."""
    began = time.monotonic()
    deadline = began + timeout
    prepared = urllib.request.Request(
        url,
        data=body.encode() if body is not None else None,
        headers=dict(headers or {}),
        method=method,
    )
    try:
        stream: Any
        try:
            response: HTTPResponse = _OPENER.open(prepared, timeout=timeout)
        except urllib.error.HTTPError as answer:  # 3xx, 4xx, 5xx: judged by status
            status, stream = answer.code, answer
        else:
            status, stream = response.status, response
        with stream:
            data, truncated = _read_bounded(stream, deadline, limit, method)
    except TimeoutError as error:
        raise ProbeFailed(f"no answer within {timeout:g}s", time.monotonic() - began) from error
    except urllib.error.URLError as error:
        raise ProbeFailed(_reason(error.reason), time.monotonic() - began) from error
    except (OSError, ValueError) as error:  # reset mid-body, a malformed answer
        raise ProbeFailed(_reason(error), time.monotonic() - began) from error
    return HttpAnswer(status, data, round(time.monotonic() - began, 3), truncated)


def _read_bounded(stream: Any, deadline: float, limit: int, method: str) -> tuple[bytes, bool]:
    if method == "HEAD":
        return b"", False
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        if time.monotonic() >= deadline:
            raise TimeoutError
        chunk = stream.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return data[:limit], size > limit


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "no answer (timed out)"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
