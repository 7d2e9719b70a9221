"""The one boundary to slack_sdk: request signatures in, the Web API and webhooks out.

Imported only when a run has chat configured, so ``chaosrunner --help`` never
loads slack_sdk. slack_sdk's exceptions are mapped to ours here.
"""

from __future__ import annotations

import time

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
