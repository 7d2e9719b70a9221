"""The one boundary to slack_sdk: request signatures in, the Web API and webhooks out.

Imported only when a run has chat configured, so ``chaosrunner --help`` never
loads slack_sdk. slack_sdk's exceptions are mapped to ours here.
"""

from __future__ import annotations

import logging
import math
import re
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
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:  # slack_sdk decodes the body as UTF-8: Slack never sends anything else
        return False


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


# -- reading: people's names and a message's text ------------------------------------------------

_USER_ID = re.compile(r"[UW][A-Z0-9]{1,20}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{1,20}")
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,8}")


def _reader(token: str, api_url: str, timeout: float) -> Any:
    from slack_sdk import WebClient

    return WebClient(
        token=token, base_url=api_url, timeout=max(1, math.ceil(timeout)), retry_handlers=[], logger=_QUIET
    )


def user_display_name(token: str, user_id: str, *, api_url: str, timeout: float) -> str | None:
    """``users.info``: the name people see in Slack - the profile's display name, else the real
    name, else the account name. None when Slack does not answer with one (any failure: the
    caller falls back to the name the request carried)."""
    if not _USER_ID.fullmatch(user_id):
        return None  # never ask Slack about text that is not a user id
    try:
        response = _reader(token, api_url, timeout).users_info(user=user_id)
    except Exception:  # refused, no answer, not JSON: all mean "no name from Slack"
        return None
    user = response.data.get("user") if isinstance(response.data, dict) else None
    if not isinstance(user, dict):
        return None
    found = user.get("profile")
    profile: dict[str, Any] = found if isinstance(found, dict) else {}
    for name in (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if isinstance(name, str) and name.strip():
            return " ".join(name.split())[:MAX_NAME]
    return None


MAX_NAME = 80


def message_text(token: str, channel: str, ts: str, *, api_url: str, timeout: float) -> str | None:
    """The text of the message ``ts`` in ``channel`` (Slack's markup left in), or None.

    ``conversations.history`` up to ``ts`` inclusive, one message, finds a message in the
    channel itself; a reply inside a thread is not there, so ``conversations.replies`` is
    asked next (given a reply's ts it answers with that thread)."""
    if not _CHANNEL_ID.fullmatch(channel) or not _TS.fullmatch(ts):
        return None
    try:
        client = _reader(token, api_url, timeout)
        found = _with_ts(
            client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1), ts
        )
        if found is None:
            found = _with_ts(client.conversations_replies(channel=channel, ts=ts, limit=200), ts)
    except Exception:
        return None
    return found


def _with_ts(response: Any, ts: str) -> str | None:
    messages = response.data.get("messages") if isinstance(response.data, dict) else None
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("ts") == ts and isinstance(message.get("text"), str):
            return str(message["text"])
    return None
