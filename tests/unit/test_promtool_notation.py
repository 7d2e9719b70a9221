"""promtool's expanding notation: compressed where exact; promtool expands it back to what we fetched."""

from __future__ import annotations

import math

import pytest

from chaosrunner.report.promtool.notation import MISSING, STALE, compress, expand, number, steps_from_samples


def test_flat_and_even_runs_compress_and_expand_back_exactly() -> None:
    values = [0.0] * 10 + [10.0] * 5 + [1.0, 2.0, 3.0, 4.0] + [9.0, 7.0, 5.0]
    text = compress(values)
    assert text == "0+0x9 10+0x4 1+1x3 9-2x2"
    assert expand(text) == values


def test_short_runs_stay_plain_and_gaps_are_missing_or_stale() -> None:
    assert compress([1.0, 1.0]) == "1 1"
    assert compress([MISSING, MISSING, MISSING, 5.0, 5.0, STALE, MISSING]) == "_x3 5 5 stale _"
    assert compress([MISSING, 2.0]) == "_ 2"


def test_a_progression_float_addition_does_not_reproduce_is_cut_where_it_drifts() -> None:
    # promtool adds 0.1 step by step: 0.1 + 0.1 + 0.1 is 0.30000000000000004, not the 0.3 Prometheus returned
    values = [0.0, 0.1, 0.2, 0.3]
    assert compress(values) == "0+0.1x2 0.3"
    assert expand(compress(values)) == values


def test_exponents_are_never_part_of_a_progression() -> None:
    values = [1e-05, 2e-05, 3e-05]
    text = compress(values)
    assert "x" not in text and expand(text) == values


@pytest.mark.parametrize(
    ("value", "text"),
    [(25.0, "25"), (0.5, "0.5"), (-3.0, "-3"), (math.inf, "Inf"), (-math.inf, "-Inf"), (1e20, "1e+20")],
)
def test_numbers_are_spelled_as_the_series_parser_reads_them(value: float, text: str) -> None:
    assert number(value) == text


def test_nan_is_written_as_nan() -> None:
    assert number(math.nan) == "NaN"


def test_samples_land_on_their_grid_step_and_a_series_that_stops_goes_stale() -> None:
    points = [(102.0, 1.0), (103.0, 1.0), (104.0, 2.0)]
    grid = steps_from_samples(points, start=100.0, step=1.0, count=8)
    assert grid == [MISSING, MISSING, 1.0, 1.0, 2.0, STALE, MISSING, MISSING]


def test_a_series_that_comes_back_after_a_gap_is_stale_once_then_present_again() -> None:
    points = [(0.0, 1.0), (3.0, 4.0)]
    assert steps_from_samples(points, start=0.0, step=1.0, count=4) == [1.0, STALE, MISSING, 4.0]
