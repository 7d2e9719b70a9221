"""What a schedule has done: one JSON line per slot, run, skipped or missed.

It is how the daemon survives restarts - the last slot it accounted for is
read back, and slots that passed while it was down are logged as missed, not
run in a burst - and how max_runs_per_day is counted.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chaosrunner.statedir import state_dir


@dataclass(frozen=True)
class Record:
    entry: str
    slot: str  # ISO, UTC
    outcome: str  # run | skipped | missed
    at: str  # when it was recorded, ISO UTC
    run_id: str | None = None
    status: str | None = None
    exit_code: int | None = None
    detail: str = ""

    @property
    def slot_time(self) -> datetime:
        return datetime.fromisoformat(self.slot)


class History:
    def __init__(self, schedule_name: str, folder: Path | None = None) -> None:
        self.path = (folder or state_dir() / "schedules" / schedule_name) / "history.jsonl"

    def append(self, record: Record) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(record)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> list[Record]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                data: dict[str, Any] = json.loads(line)
                found.append(Record(**data))
            except (ValueError, TypeError):
                continue  # a torn last line after a crash
        return found

    def last_slot(self, entry: str) -> datetime | None:
        slots = [record.slot_time for record in self.records() if record.entry == entry]
        return max(slots) if slots else None
