"""When scheduled runs happen: cron slots filtered by windows, blackout dates and jitter.

Pure functions of an entry and the time, so `schedule next`, the daemon and
the tests agree, and a fake clock can drive the daemon through weeks in
milliseconds. Jitter is deterministic per (entry, slot): `schedule next`
prints the very moment the daemon will start, and restarts do not reroll it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from chaosrunner.schedule.models import ResolvedEntry, Weekday


@dataclass(frozen=True, order=True)
class Occurrence:
    start: datetime  # when the run starts: the slot plus its jitter (UTC)
    slot: datetime  # the cron time it belongs to (UTC)
    entry: str


def slots(entry: ResolvedEntry, after: datetime, until: datetime) -> Iterator[datetime]:
    """Cron times of ``entry`` in (after, until], in UTC, computed in the entry's time zone."""
    from croniter import croniter

    zone = ZoneInfo(entry.timezone)
    iterator = croniter(entry.cron, after.astimezone(zone))
    while True:
        moment: datetime = iterator.get_next(datetime)
        if moment > until:
            return
        yield moment.astimezone(UTC)


def refusal(entry: ResolvedEntry, moment: datetime) -> str | None:
    """Why a run may not start at ``moment`` (None when it may)."""
    local = moment.astimezone(ZoneInfo(entry.timezone))
    if local.date() in entry.blackout_dates:
        return f"{local.date()} is a blackout date"
    minute = local.hour * 60 + local.minute
    weekday = list(Weekday)[local.weekday()]
    for window in entry.windows:
        start, end = window.minutes()
        if weekday in window.days and start <= minute < end:
            return None
    return f"{local:%a %H:%M} ({entry.timezone}) is outside the allowed windows"


def jitter_for(entry: ResolvedEntry, slot: datetime) -> timedelta:
    if not entry.jitter:
        return timedelta(0)
    digest = hashlib.sha256(f"{entry.name}|{slot.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(seconds=round(entry.jitter.total_seconds() * fraction, 3))


def upcoming(
    entries: list[ResolvedEntry], now: datetime, count: int, horizon: timedelta = timedelta(days=366)
) -> list[Occurrence]:
    """The next ``count`` runs across entries that the windows and blackout dates allow."""
    found: list[Occurrence] = []
    for entry in entries:
        taken = 0
        for slot in slots(entry, now, now + horizon):
            start = slot + jitter_for(entry, slot)
            if refusal(entry, start) is None:
                found.append(Occurrence(start, slot, entry.name))
                taken += 1
                if taken >= count:
                    break
    return sorted(found)[:count]
