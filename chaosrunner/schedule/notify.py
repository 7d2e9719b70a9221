"""Webhooks for scheduled runs: a generic JSON body, or a Slack-compatible one.

Best effort by design: a notification that fails is recorded, never retried
into the next run's window, and never changes a run's outcome. Three rules
follow from that:

- *Any* failure is a failed notification, not only a socket error: a server
  answering garbage raises ``http.client.BadStatusLine``, a URL that passed
  the schema's pattern can still be refused by ``urllib`` (a bad port, a
  control character: ``InvalidURL``/``ValueError``/``UnicodeError``). None of
  them may stop the daemon and lose every later slot.
- The wait is bounded as a whole: each hook is posted from its own daemon
  thread and ``notify`` returns after ``timeout`` seconds even if a server
  keeps a connection open and trickles bytes (a socket timeout alone bounds
  each read, not the request). Notifications are sent before a run starts
  and after it ended - never between inject and revert.
- A webhook URL is a credential (a Slack webhook's token is its path), so a
  failure names only ``scheme://host:port/[redacted]`` (``redaction.redact_url``), and the error text is
  scrubbed of the URL's path and query.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from chaosrunner.redaction import REDACTED, redact_url
from chaosrunner.schedule.models import Webhook, WebhookEvent, WebhookFormat

ICONS = {
    WebhookEvent.START: ":test_tube:",
    WebhookEvent.ABORT: ":rotating_light:",
    WebhookEvent.FINISH: ":white_check_mark:",
}
MAX_ERROR_TEXT = 200
"""A failing server chooses its reason phrase: keep what we log short."""
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SECRET_PIECE = re.compile(r"[^/?&=;#]{4,}")
"""Pieces of a path or query long enough to be a token: none may survive in a logged error."""


def body(hook: Webhook, event: WebhookEvent, facts: Mapping[str, Any]) -> dict[str, Any]:
    if hook.format is WebhookFormat.JSON:
        return {"event": event.value, **facts}
    words = {
        WebhookEvent.START: "started",
        WebhookEvent.ABORT: "ABORTED",
        WebhookEvent.FINISH: "finished",
    }[event]
    where = f"{facts.get('schedule')}/{facts.get('entry')}"
    text = f"{ICONS[event]} chaosrunner `{where}` {words}: {facts.get('scenario')}"
    if facts.get("status"):
        text += f" - {facts['status']} (exit {facts.get('exit_code')})"
    if facts.get("detail"):
        text += f"\n> {facts['detail']}"
    return {"text": text}


def describe_failure(error: BaseException, url: str) -> str:
    """The error as one short line that says nothing of the URL's path, query or userinfo."""
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        text = f"{type(error.reason).__name__}: {error.reason}"
    else:
        text = f"{type(error).__name__}: {error}"
    scrubbed = _scrub(_UNPRINTABLE.sub("?", text), url)
    if scrubbed is None:  # a piece of the URL survived in some spelling: keep only the error's name
        return type(error).__name__
    return scrubbed if len(scrubbed) <= MAX_ERROR_TEXT else scrubbed[: MAX_ERROR_TEXT - 3] + "..."


def _scrub(text: str, url: str) -> str | None:
    """``text`` without the URL's secret parts; None when one cannot be removed with confidence."""
    try:
        parts = urllib.parse.urlsplit(url)
        username, password = parts.username or "", parts.password or ""
    except ValueError:
        return None
    secret = {url, parts.path, parts.query, parts.fragment, username, password}
    # Longest first, in the spellings an error message may use (repr, percent-quoted).
    for piece in sorted((p for p in secret if len(p) > 1), key=len, reverse=True):
        for spelling in (piece, repr(piece)[1:-1], urllib.parse.quote(piece, safe="/")):
            text = text.replace(spelling, f"/{REDACTED}")
    tail = "/".join((parts.path, parts.query, parts.fragment, username, password))
    if any(piece in text for piece in _SECRET_PIECE.findall(tail)):
        return None
    return text


def _post(hook: Webhook, event: WebhookEvent, facts: Mapping[str, Any], timeout: float) -> str | None:
    """POST one hook; the failure as text, or None when it went through."""
    try:
        request = urllib.request.Request(
            hook.url,
            data=json.dumps(body(hook, event, facts), default=str).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=timeout).close()
    except Exception as error:  # every failure is a failed notification, see the docstring
        if _timed_out(error):  # the socket's timeout and notify's deadline say the same thing
            return f"no answer within {timeout:g}s"
        return describe_failure(error, hook.url)
    return None


def _timed_out(error: BaseException) -> bool:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, TimeoutError)


def notify(
    hooks: list[Webhook], event: WebhookEvent, facts: Mapping[str, Any], timeout: float = 5.0
) -> list[str]:
    """POST to every hook subscribed to ``event`` within ``timeout`` seconds in all; returns the errors."""
    subscribed = [hook for hook in hooks if event in hook.events]
    outcomes: dict[int, str | None] = {}

    def send(index: int, hook: Webhook) -> None:
        outcomes[index] = _post(hook, event, facts, timeout)

    threads = [
        threading.Thread(target=send, args=(index, hook), name="webhook", daemon=True)
        for index, hook in enumerate(subscribed)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    errors = []
    for index, hook in enumerate(subscribed):
        if index not in outcomes:
            errors.append(f"{redact_url(hook.url)}: no answer within {timeout:g}s")
        elif outcomes[index] is not None:
            errors.append(f"{redact_url(hook.url)}: {outcomes[index]}")
    return errors
