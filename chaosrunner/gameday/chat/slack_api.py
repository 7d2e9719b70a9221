"""The one boundary to slack_sdk: request signatures in, the Web API and webhooks out.

Imported only when a run has chat configured, so ``chaosrunner --help`` never
loads slack_sdk. slack_sdk's exceptions are mapped to ours here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaosrunner.redaction import REDACTED, redact_text

_QUIET = logging.getLogger("chaosrunner.chat.slack_sdk")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False  # slack_sdk logs each failed request; the notifier reports the outcome once

SIGNATURE_MAX_AGE = 60 * 5
"""Slack's rule: a request signed more than five minutes ago is refused (a replay)."""


def signature_is_valid(
    signing_secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float | None = None
) -> bool:
    """Slack's v0 signature: HMAC-SHA256 over ``v0:{timestamp}:{body}`` with the signing secret,
    compared in constant time; False for a missing header or a timestamp older than five minutes."""
    from slack_sdk.signature import Clock, SignatureVerifier

    class FixedClock(Clock):
        def now(self) -> float:
            return now if now is not None else time.time()

    if not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
        return False  # slack_sdk would raise on a timestamp that is not a number
    verifier = SignatureVerifier(signing_secret, clock=FixedClock())  # tests pass a fixed ``now``
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


@dataclass(frozen=True)
class PostResult:
    """What one attempt to post a message came to, in our terms (no slack_sdk type leaks out).

    ``status`` is the HTTP status, None when no answer came (refused, timed out);
    ``retry_after`` is the server's Retry-After in seconds (a 429); ``error`` is
    safe to journal: Slack's error code or the failure's kind, never a URL or token.
    """

    ok: bool
    status: int | None = None
    retry_after: float | None = None
    error: str | None = None

    @property
    def retryable(self) -> bool:
        """A rate limit, a server error or no answer at all may pass; a refusal (4xx) will not."""
        return not self.ok and (self.status is None or self.status == 429 or self.status >= 500)


def post_message(token: str, channel: str, text: str, *, api_url: str, timeout: float) -> PostResult:
    """``chat.postMessage`` with a bot token: one attempt (the caller retries), no link previews."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    # retry_handlers=[]: slack_sdk would retry on its own; the notifier's tenacity policy is the one policy.
    client = WebClient(
        token=token, base_url=api_url, timeout=max(1, math.ceil(timeout)), retry_handlers=[], logger=_QUIET
    )
    try:
        client.chat_postMessage(channel=channel, text=text, unfurl_links=False, unfurl_media=False)
    except SlackApiError as error:
        response = error.response
        body = response.data if isinstance(response.data, dict) else {}
        return PostResult(
            ok=False,
            status=response.status_code,
            retry_after=_retry_after(response.headers),
            error=str(body.get("error") or f"HTTP {response.status_code}"),
        )
    except Exception as error:  # no answer: refused, reset, timed out, a body that is not JSON
        return PostResult(ok=False, error=_failure(error, secret=token))
    return PostResult(ok=True, status=200)


def post_webhook(url: str, payload: dict[str, Any], *, timeout: float) -> PostResult:
    """POST ``payload`` as JSON to an incoming webhook (Slack's, or Mattermost's: the same shape).

    The URL is the credential: it appears in no result, error or log line."""
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(url, timeout=max(1, math.ceil(timeout)), retry_handlers=[], logger=_QUIET)
    try:
        response = client.send_dict(payload)
    except Exception as error:
        return PostResult(ok=False, error=_failure(error, secret=url))
    if 200 <= response.status_code < 300:
        return PostResult(ok=True, status=response.status_code)
    return PostResult(
        ok=False,
        status=response.status_code,
        retry_after=_retry_after(response.headers),
        error=f"HTTP {response.status_code}"
        + (f": {_clip(response.body, secret=url)}" if response.body else ""),
    )


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            first = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(first))
            except (TypeError, ValueError):
                return None  # an HTTP date, or nonsense: the caller's own backoff applies
    return None


def _failure(error: Exception, *, secret: str) -> str:
    reason = getattr(error, "reason", None)  # urllib's URLError wraps the socket error
    return f"{type(error).__name__}: {_clip(str(reason if reason is not None else error), secret=secret)}"


def _clip(text: str, *, secret: str, limit: int = 200) -> str:
    return redact_text(text.replace(secret, REDACTED))[:limit]
