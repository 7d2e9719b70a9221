"""Human durations: ``250ms``, ``30s``, ``5m``, ``1h30m``, ``1.5h``.

Scenario authors think in these units, the journal stores seconds, and the
console prints them back the same way, so parsing and formatting live together.
A bare number is rejected on purpose: ``timeout: 30`` is ambiguous (seconds?
minutes?) and an ambiguous gameday timer is worse than an error.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m``-style text; raise ValueError with a readable reason."""
    cleaned = text.strip()
    if cleaned.startswith("-"):
        raise ValueError(f"a duration cannot be negative, found {text!r}")
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"expected a duration such as 30s, 5m, 1h30m or 250ms, found {text!r}")
    seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(cleaned))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | float) -> str:
    """The shortest exact spelling: 90 s -> ``1m30s``, 0.25 s -> ``250ms``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole, fraction = divmod(seconds, 1)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs or fraction or not parts:
        parts.append(f"{secs + fraction:g}s")
    return "".join(parts)


def _coerce(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a duration such as 30s or 5m, found {value!r}")
    raise ValueError(
        f"expected a duration with a unit such as {value}s or {value}m, found the bare number {value!r}"
    )


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m"]}),
]
"""A pydantic field type for scenario durations (stored as timedelta)."""


class DurationJsonSchema(GenerateJsonSchema):
    """JSON Schema generator that spells duration defaults as authors write them.

    Pydantic encodes a timedelta default as ISO 8601 (``PT30S``) even when the
    field serialises as ``30s``; editors and the catalog should show ``30s``.
    """

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)
