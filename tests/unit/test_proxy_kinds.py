"""The proxy.* kinds: params, plans and their revert records, without starting anything."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.proxy.faults import (
    BandwidthParams,
    HttpErrorParams,
    LatencyParams,
    ProxyBandwidth,
    ProxyHttpError,
    ProxyLatency,
    ProxyReset,
    ProxyTimeout,
    ResetParams,
    TimeoutParams,
)
from chaosrunner.faults.proxy.toxics import Bandwidth, Direction, HttpError, Latency, Reset, Stall
from chaosrunner.faults.registry import registry

ADDRESSES = {"listen": "127.0.0.1:25432", "upstream": "127.0.0.1:15432"}


@pytest.fixture(autouse=True)
def _state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def request_for(params: object, **extra: object) -> FaultRequest:
    return FaultRequest(run_id="run-1", name="slow-db", params=params, **extra)  # type: ignore[arg-type]


def test_every_proxy_kind_is_registered() -> None:
    kinds = {"proxy.latency", "proxy.reset", "proxy.timeout", "proxy.bandwidth", "proxy.http-error"}
    assert kinds <= set(registry.kinds())


def test_a_plan_has_a_complete_record_and_no_side_effects(_state_dir: Path) -> None:
    params = LatencyParams(**ADDRESSES, delay="100ms", jitter="10ms", grace="5s")
    plan = ProxyLatency().plan(request_for(params, duration=timedelta(seconds=60)))
    record = plan.revert_record
    assert plan.targets[0].id == "127.0.0.1:25432->127.0.0.1:15432"
    assert record["label"] == "proxy-run-1-slow-db"
    assert record["hold_seconds"] == 65
    assert record["holder"] is None
    assert record["toxics"]["toxics"] == [
        {
            "name": "latency",
            "enabled": True,
            "type": "latency",
            "delay": 0.1,
            "jitter": 0.01,
            "direction": "downstream",
        }
    ]
    assert plan.summary == "proxy 127.0.0.1:25432 -> 127.0.0.1:15432 with toxic latency"
    assert not _state_dir.exists()  # nothing written, nothing started


def test_without_a_duration_the_holder_lives_until_the_hold_limit() -> None:
    params = ResetParams(**ADDRESSES, hold_limit="10m", grace="0s")
    assert ProxyReset().plan(request_for(params)).revert_record["hold_seconds"] == 600


def test_a_proxy_onto_itself_is_refused() -> None:
    params = ResetParams(listen="127.0.0.1:9000", upstream="127.0.0.1:9000")
    with pytest.raises(PlanRefused, match="it would loop"):
        ProxyReset().plan(request_for(params))


def test_the_blast_radius_applies_to_the_one_proxy() -> None:
    params = ResetParams(**ADDRESSES)
    with pytest.raises(PlanRefused, match="matched only 1"):
        ProxyReset().plan(request_for(params, blast_radius=BlastRadius(mode="count", count=2)))


@pytest.mark.parametrize(
    ("fault", "params", "toxic"),
    [
        (
            ProxyLatency(),
            LatencyParams(**ADDRESSES, delay="1s", direction="both"),
            Latency(name="latency", delay=1.0, direction=Direction.BOTH),
        ),
        (ProxyReset(), ResetParams(**ADDRESSES, percent=25), Reset(name="reset", fraction=0.25)),
        (
            ProxyTimeout(),
            TimeoutParams(**ADDRESSES, close_after="30s"),
            Stall(name="timeout", close_after=30.0),
        ),
        (ProxyBandwidth(), BandwidthParams(**ADDRESSES, rate=64), Bandwidth(name="bandwidth", rate=64_000)),
        (
            ProxyHttpError(),
            HttpErrorParams(**ADDRESSES, status=500, percent=10, enabled=False),
            HttpError(name="http-error", status=500, fraction=0.1, enabled=False),
        ),
    ],
)
def test_each_kind_installs_its_toxic(fault: object, params: object, toxic: object) -> None:
    assert fault.toxic(params) == toxic  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "bad",
    [
        {"listen": "25432", "upstream": "127.0.0.1:15432"},
        {"listen": "127.0.0.1:25432", "upstream": "127.0.0.1:99999"},
        {"listen": "127.0.0.1:25432", "upstream": "127.0.0.1:0"},
        {"listen": "127.0.0.1:25432", "upstream": "a b:1"},
        {**ADDRESSES, "percent": 0},
        {**ADDRESSES, "percent": 101},
        {**ADDRESSES, "hold_limit": "0s"},
        {**ADDRESSES, "surprise": 1},
    ],
)
def test_invalid_params_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ResetParams(**bad)


def test_every_param_is_documented() -> None:
    for params in (LatencyParams, ResetParams, TimeoutParams, BandwidthParams, HttpErrorParams):
        for name, field in params.model_fields.items():
            assert field.description, f"{params.__name__}.{name} has no description"


def test_revert_and_check_work_from_a_record_that_never_started_a_holder() -> None:
    record = ProxyReset().plan(request_for(ResetParams(**ADDRESSES))).revert_record
    fault = ProxyReset()
    assert not fault.check(record)
    fault.revert(record)
    fault.revert(record)
