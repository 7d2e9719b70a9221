"""The toxics' decisions, checked as pure functions of a seeded random source."""

from __future__ import annotations

import random
import statistics

import pytest
from pydantic import ValidationError

from chaosrunner.errors import FaultError
from chaosrunner.faults.proxy.toxics import (
    Bandwidth,
    Direction,
    HttpError,
    Latency,
    Reset,
    Stall,
    ToxicSet,
)


def test_latency_without_jitter_is_exact() -> None:
    toxic = Latency(name="l", delay=0.1)
    assert toxic.due(10.0, 0.0, random.Random(1)) == pytest.approx(10.1)


def test_jitter_spreads_around_the_delay_within_its_bounds() -> None:
    toxic = Latency(name="l", delay=0.1, jitter=0.02)
    rng = random.Random(7)
    delays = [toxic.due(0.0, 0.0, rng) for _ in range(5000)]
    assert min(delays) >= 0.08 and max(delays) <= 0.12
    assert statistics.median(delays) == pytest.approx(0.1, abs=0.002)
    assert statistics.pstdev(delays) > 0.01  # really spread, not a constant


def test_jitter_never_reorders_a_stream() -> None:
    toxic = Latency(name="l", delay=0.05, jitter=0.05)
    rng = random.Random(3)
    due = 0.0
    for arrival in [i * 0.001 for i in range(2000)]:
        following = toxic.due(arrival, due, rng)
        assert following >= due
        due = following


def test_jitter_larger_than_the_delay_never_goes_negative() -> None:
    toxic = Latency(name="l", delay=0.01, jitter=0.1)
    rng = random.Random(5)
    assert all(toxic.due(1.0, 0.0, rng) >= 1.0 for _ in range(1000))


@pytest.mark.parametrize("toxic_class", [Reset, Stall, HttpError])
def test_fractions_hit_about_that_share(toxic_class: type) -> None:
    toxic = toxic_class(name="t", fraction=0.3)
    rng = random.Random(11)
    hits = sum(toxic.hits(rng) for _ in range(10_000))
    assert 2800 < hits < 3200


def test_a_whole_fraction_always_hits() -> None:
    rng = random.Random(0)
    assert all(Reset(name="r").hits(rng) for _ in range(1000))


def test_bandwidth_paces_in_small_slices() -> None:
    toxic = Bandwidth(name="b", rate=100_000)
    assert toxic.slice_size() == 5000  # 50 ms worth
    assert toxic.pause_for(5000) == pytest.approx(0.05)
    assert Bandwidth(name="b", rate=3).slice_size() == 1


@pytest.mark.parametrize(
    ("toxic_direction", "flow", "applies"),
    [
        (Direction.BOTH, Direction.UPSTREAM, True),
        (Direction.BOTH, Direction.DOWNSTREAM, True),
        (Direction.DOWNSTREAM, Direction.UPSTREAM, False),
        (Direction.UPSTREAM, Direction.UPSTREAM, True),
    ],
)
def test_directions(toxic_direction: Direction, flow: Direction, applies: bool) -> None:
    toxics = ToxicSet(toxics=[Latency(name="l", delay=0.1, direction=toxic_direction)])
    assert (toxics.latency(flow) is not None) is applies


def test_switching_a_toxic_bumps_the_generation_and_keeps_the_others() -> None:
    toxics = ToxicSet(toxics=[Latency(name="l", delay=0.1), Reset(name="r", enabled=False)])
    assert toxics.reset() is None
    switched = toxics.switched("r", True).switched("l", False)
    assert switched.generation == 2
    assert switched.reset() is not None and switched.latency(Direction.DOWNSTREAM) is None
    assert toxics.reset() is None  # the original is untouched (immutable)


def test_switching_an_unknown_toxic_names_the_known_ones() -> None:
    with pytest.raises(FaultError, match=r"no toxic named 'x' \(known: l\)"):
        ToxicSet(toxics=[Latency(name="l", delay=0.1)]).switched("x", True)


def test_toxic_sets_round_trip_through_json_with_their_types() -> None:
    toxics = ToxicSet(
        generation=4,
        toxics=[
            Latency(name="l", delay=0.1, jitter=0.01, direction=Direction.BOTH),
            Stall(name="s", fraction=0.5, close_after=2.0),
            HttpError(name="h", status=502, fraction=0.25),
            Bandwidth(name="b", rate=1000),
            Reset(name="r"),
        ],
    )
    assert ToxicSet.model_validate_json(toxics.model_dump_json()) == toxics
    assert toxics.inspects_http()


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "latency", "name": "l", "delay": -1},
        {"type": "reset", "name": "r", "fraction": 0},
        {"type": "reset", "name": "r", "fraction": 1.5},
        {"type": "http-error", "name": "h", "status": 99},
        {"type": "bandwidth", "name": "b", "rate": 0},
        {"type": "teleport", "name": "t"},
    ],
)
def test_invalid_toxics_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ToxicSet.model_validate({"toxics": [bad]})
