"""How the report spells times, durations and numbers, in one place.

The HTML, the Markdown and the trend chart must agree to the character on
"TTD 12.3s" or "14:02:07": a facilitator reads one on the projector while
someone else pastes the other into the wiki. So every renderer formats
through these functions and none formats on its own.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from chaosrunner.durations import format_duration

NOT_MEASURED = "-"


def clock(moment: datetime | None) -> str:
    """``14:02:07`` in UTC; the report's header says the day and the zone once."""
    return moment.astimezone(UTC).strftime("%H:%M:%S") if moment else NOT_MEASURED


def clock_ms(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3] if moment else NOT_MEASURED


def day(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d") if moment else NOT_MEASURED


def stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else NOT_MEASURED


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(value: timedelta | float | None, precision: int = 1) -> str:
    """``12.3s``, ``4m5s``, ``1h2m``: one decimal below a minute, whole seconds above."""
    if value is None:
        return NOT_MEASURED
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if abs(seconds) >= 60:
        return format_duration(round(seconds))
    return format_duration(round(seconds, precision))


def offset(value: timedelta | float | None) -> str:
    """Signed offset from t0 for tables: ``t0+12.3s``, ``t0-5s``."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if abs(seconds) < 0.05:
        return "t0"
    return ("t0+" if seconds > 0 else "t0-") + duration(abs(seconds))


def seconds(value: timedelta | None) -> float | None:
    return round(value.total_seconds(), 3) if value is not None else None


def number(value: float | None, digits: int = 4) -> str:
    """Significant digits without scientific notation for everyday magnitudes."""
    if value is None or math.isnan(value):
        return "no data"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def count(value: float) -> str:
    return f"{round(value):,}"


def percent(value: float, digits: int = 2) -> str:
    text = f"{value * 100:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}%"


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(title: str, limit: int = 48) -> str:
    """``Connection pool exhausted on db-primary`` -> ``connection-pool-exhausted-on-db-primary``."""
    text = _SLUG.sub("-", title.lower()).strip("-")[:limit].rstrip("-")
    return text or "scenario"


def human(word: str) -> str:
    return word.replace("_", " ")
