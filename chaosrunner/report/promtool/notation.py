"""promtool's series notation: values on a fixed grid, compressed where they repeat or climb evenly.

A promtool ``input_series`` is one value per ``interval``: a number, ``_``
(no sample at that step) or ``stale`` (a staleness marker: the series ended).
Runs compress in its *expanding notation*: ``a+bxn`` is ``a`` then ``n``
further samples each ``b`` more (``5+0x9`` is ten fives; ``0+2x3`` is
``0 2 4 6``), ``a-bxn`` the same going down, ``_xn`` is ``n`` missing steps.

A run is compressed only where promtool's expansion gives back the very
numbers Prometheus returned: promtool adds ``b`` step by step in float64, so
we replay that addition and compare exactly - a counter that grows by 0.1
(which float addition does not reproduce exactly) is written sample by
sample rather than as a progression whose tail is off by 1e-15, so no
comparison against a threshold can change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MISSING = None
"""No sample at this step (before a series began, or after it ended and was marked stale)."""

STALE = "stale"
"""The staleness marker written once where a series that had samples stops having them."""

Step = float | str | None
"""One grid step: a value, ``STALE`` or ``MISSING``."""

MIN_RUN = 3
"""Compress only runs of at least this many samples: ``1 1`` is shorter than ``1+0x1``."""


def number(value: float) -> str:
    """A value as PromQL's series parser reads it, shortest exact spelling (``25``, ``0.5``, ``NaN``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def steps_from_samples(
    points: Sequence[tuple[float, float]], start: float, step: float, count: int
) -> list[Step]:
    """Place range-query samples on the grid ``start + k*step`` (k < count); gaps after data are stale.

    Prometheus' range query already answered "the value at each step" (the
    last sample within its lookback), so each point lands on one step; a step
    with no point before the series' first sample is missing, and the first
    step of a gap after samples is the staleness marker (the series went
    away - a target went down or the metric was dropped), the rest missing.
    """
    grid: list[Step] = [MISSING] * count
    for at, sample in points:
        index = round((at - start) / step)
        if 0 <= index < count:
            grid[index] = float(sample)
    for index in range(1, count):
        if grid[index] is MISSING and isinstance(grid[index - 1], float):
            grid[index] = STALE
    return grid


def _progression_length(values: Sequence[Step], start: int) -> tuple[int, float]:
    """How many values from ``start`` promtool's ``a+bxn`` reproduces exactly, and ``b``."""
    first = values[start]
    if not isinstance(first, float) or math.isnan(first) or math.isinf(first):
        return 1, 0.0
    if start + 1 >= len(values):
        return 1, 0.0
    second = values[start + 1]
    if not isinstance(second, float) or math.isnan(second) or math.isinf(second):
        return 1, 0.0
    increment = second - first
    if "e" in number(first) + number(increment):
        # promtool's series lexer reads ``a+bxn`` as one token: an exponent's sign would split it
        return 1, 0.0
    expected = first
    length = 1
    for value in values[start + 1 :]:
        expected += increment  # exactly as promtool expands it: repeated float64 addition
        if not isinstance(value, float) or value != expected:
            break
        length += 1
    return length, increment


def compress(values: Sequence[Step]) -> str:
    """The values in promtool's notation, as short as exact expansion allows."""
    parts: list[str] = []
    index = 0
    while index < len(values):
        value = values[index]
        if value is MISSING:
            run = 1
            while index + run < len(values) and values[index + run] is MISSING:
                run += 1
            parts.append(f"_x{run}" if run >= MIN_RUN else " ".join(["_"] * run))
            index += run
            continue
        if value == STALE:
            parts.append(STALE)
            index += 1
            continue
        assert isinstance(value, float)
        length, increment = _progression_length(values, index)
        if length >= MIN_RUN:
            sign = "-" if increment < 0 else "+"
            parts.append(f"{number(value)}{sign}{number(abs(increment))}x{length - 1}")
            index += length
        else:
            parts.append(number(value))
            index += 1
    return " ".join(parts)


def expand(text: str) -> list[Step]:
    """promtool's expansion of ``compress``'s output (for tests and for checking an export)."""
    values: list[Step] = []
    for part in text.split():
        if part == STALE:
            values.append(STALE)
            continue
        if part == "_":
            values.append(MISSING)
            continue
        if part.startswith("_x"):
            values.extend([MISSING] * int(part[2:]))
            continue
        if "x" in part:
            head, times = part.rsplit("x", 1)
            split = max(head.rfind("+"), head.rfind("-"))
            base, increment = float(head[:split]), float(head[split:])
            current = base
            values.append(current)
            for _ in range(int(times)):
                current += increment
                values.append(current)
            continue
        values.append(float(part))
    return values
