"""``GET /api/stream``: the run as Server-Sent Events, replayed from the journal, then live.

A page says the last event id it saw (``Last-Event-ID``: a byte offset in the
journal, see ``feed``); the stream replays the journal from there up to
where the shared feed's live messages begin, sends the live view's ``series``
once (with the latest ``measured`` figures and, after the run, the
``report`` for a page that joins late), then whatever the feed publishes - journal lines, ``snapshot``,
``measured``, ``report`` - until the feed says ``bye`` (the server is
stopping) or the page falls so far behind that its queue overflowed; the
page then reconnects and catches up from the journal. A journal line is
never sent twice on one stream, whatever order replay and live meet in.
A page whose socket accepts nothing for ``SEND_TIMEOUT`` is dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chaosrunner.gameday.server.app import json_reply
from chaosrunner.gameday.server.feed import Message, read_lines, resume_offset
from chaosrunner.gameday.server.live_run import LiveRun

PING_SECONDS = 15  # a comment line now and then keeps proxies from closing an idle stream
SEND_TIMEOUT = 30.0  # a page whose socket takes nothing for this long is gone; its stream ends


def stream_route(live: LiveRun) -> Route:
    run = live.run

    async def stream(request: Request) -> Response:
        joined = live.feed.subscribe(asyncio.get_running_loop())
        if joined is None:
            return json_reply(503, {"error": "the run's server is stopping or has too many open streams"})
        subscription, live_from = joined
        start = await run_in_threadpool(resume_offset, request.headers.get("last-event-id"), run.journal_path)

        async def messages() -> AsyncIterator[ServerSentEvent]:
            sent = start  # the last journal offset this page has
            try:
                position = start
                while position < live_from:  # the replay: what the page missed, from the journal
                    replayed, next_position = await run_in_threadpool(
                        read_lines, run.journal_path, position, live_from
                    )
                    if next_position == position:
                        break
                    for message in replayed:
                        yield _event(message)
                        sent = message.id or sent
                    position = next_position
                yield _event(Message("series", await run_in_threadpool(_series, live)))
                # A page that joins late gets what the live messages already said, once:
                # the figures measured so far and, after the run, where the debrief is.
                measured = live.measured() if live.measured is not None else None
                if measured is not None:
                    yield _event(Message("measured", measured))
                if live.report_file is not None:
                    live.report_handoff.told(1)
                    yield _event(Message("report", {"url": "/api/report"}))
                while True:  # then live, until the feed says bye or this page falls too far behind
                    batch, ended = await subscription.next_batch()
                    for message in batch:
                        if message.id is not None and message.id <= sent:
                            continue  # replayed already
                        yield _event(message)
                        sent = message.id or sent
                    if ended:
                        return
            finally:
                live.feed.unsubscribe(subscription)

        return EventSourceResponse(
            messages(),
            ping=PING_SECONDS,
            send_timeout=SEND_TIMEOUT,
            headers={"X-Content-Type-Options": "nosniff"},
        )

    return Route("/api/stream", stream, methods=["GET"])


def _event(message: Message) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(message.data, default=str, separators=(",", ":")),
        event=message.event,
        id=None if message.id is None else str(message.id),
    )


def _series(live: LiveRun) -> dict[str, Any]:
    empty: dict[str, Any] = {"sli": [], "steady": {}}
    if live.series is None:
        return empty
    try:
        return live.series()
    except Exception:  # the live view is advisory: a page without history still gets the live samples
        return empty
