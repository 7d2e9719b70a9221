"""Webhooks for scheduled runs: a generic JSON body, or a Slack-compatible one.

Best effort by design: a notification that fails is recorded, never retried
into the next run's window, and never changes a run's outcome.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

from chaosrunner.schedule.models import Webhook, WebhookEvent, WebhookFormat

ICONS = {
    WebhookEvent.START: ":test_tube:",
    WebhookEvent.ABORT: ":rotating_light:",
    WebhookEvent.FINISH: ":white_check_mark:",
}


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


def notify(
    hooks: list[Webhook], event: WebhookEvent, facts: Mapping[str, Any], timeout: float = 5.0
) -> list[str]:
    """POST to every hook subscribed to ``event``; returns the errors (empty when all went through)."""
    errors = []
    for hook in hooks:
        if event not in hook.events:
            continue
        request = urllib.request.Request(
            hook.url,
            data=json.dumps(body(hook, event, facts)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
        except OSError as error:
            errors.append(f"{hook.url}: {error}")
    return errors
