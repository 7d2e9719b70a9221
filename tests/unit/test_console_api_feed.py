"""The run feed on its own: bounded queues, torn lines, which Last-Event-ID values resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaosrunner.gameday.server import feed as feed_module
from chaosrunner.gameday.server.feed import RunFeed, read_lines, resume_offset


def test_a_page_that_stops_reading_ends_its_stream_instead_of_growing_the_queue(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, bool, int]:
        feed = RunFeed(tmp_path / "journal.jsonl")
        joined = feed.subscribe(asyncio.get_running_loop())
        assert joined is not None
        subscription, _ = joined
        for number in range(feed_module.QUEUE_LIMIT + 500):
            feed.publish("snapshot", {"n": number})
        batch, ended = await subscription.next_batch()
        feed.unsubscribe(subscription)
        return len(batch), ended, feed.subscribers

    queued, ended, left = asyncio.run(scenario())
    assert queued == feed_module.QUEUE_LIMIT and ended  # the page reconnects and replays from the journal
    assert left == 0


def test_a_torn_last_line_waits_and_ids_are_offsets_after_each_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"type":"a","pid":7}\n{"type":"b"}\n{"type":"c"')
    messages, position = read_lines(path, 0, 1 << 20)
    assert [(m.data, m.id) for m in messages] == [({"type": "a"}, 21), ({"type": "b"}, 34)]
    assert position == 34  # the torn line is read again once it is complete
    assert resume_offset("21", path) == 21
    for bogus in (None, "20", "-1", "x", "999", "0021 ", "1" * 40):
        assert resume_offset(bogus, path) in (0, 21), bogus
    assert resume_offset("20", path) == 0 and resume_offset("999", path) == 0
