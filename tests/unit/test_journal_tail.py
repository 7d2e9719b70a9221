"""JournalTail hands each appended event over once, and waits for a torn line to complete."""

from __future__ import annotations

from pathlib import Path

from chaosrunner.engine.journal import Journal, JournalTail


def test_each_event_is_read_once_whoever_appended_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    tail = JournalTail(path)
    assert tail.read_new() == []  # no journal yet
    runner = Journal(path)
    runner.append("run_started", run_id="r", monotonic_start=0.0)
    other_terminal = Journal.open_existing(path)
    other_terminal.append("responder", event="detected")
    assert [event.type for event in tail.read_new()] == ["run_started", "responder"]
    assert tail.read_new() == []
    runner.append("phase", phase="injecting")
    assert [event["phase"] for event in tail.read_new()] == ["injecting"]


def test_a_torn_line_is_read_when_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append("run_started", run_id="r")
    tail = JournalTail(path)
    assert len(tail.read_new()) == 1
    with path.open("ab") as handle:
        handle.write(b'{"type": "note", "ti')
    assert tail.read_new() == []
    with path.open("ab") as handle:
        handle.write(b'me": "now"}\n')
    assert [event.type for event in tail.read_new()] == ["note"]
