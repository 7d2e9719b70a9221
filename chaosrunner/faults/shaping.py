"""What a network latency or loss fault asks for, whichever backend applies it.

``docker.network-latency``/``-loss`` and ``kubernetes.network-latency``/``-loss``
shape the same traffic the same two ways (tc netem, or the fault proxy behind
an iptables REDIRECT); only where the shaping runs differs. The params that
say *which* traffic and *how much*, and their translation into a netem shape
or a proxy toxic, live here once; each backend adds its own placement params.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator

from chaosrunner.durations import Duration, format_duration
from chaosrunner.faults import netem
from chaosrunner.faults.base import FaultParams
from chaosrunner.faults.proxy import redirect
from chaosrunner.faults.proxy.toxics import Direction, Latency, Reset, Stall, Toxic

MAX_DELAY = timedelta(minutes=1)


class Mechanism(StrEnum):
    AUTO = "auto"
    NETEM = "netem"
    PROXY = "proxy"


class ProxyLoss(StrEnum):
    RESET = "reset"
    STALL = "stall"


class TrafficFilter(FaultParams):
    """Which outbound traffic of the target is shaped."""

    ports: list[int] = Field(
        default_factory=list,
        max_length=32,
        description="destination ports to affect (TCP for the proxy); empty: every port",
    )
    destinations: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="destination IPv4 addresses or CIDRs to affect; empty: everything off loopback",
    )
    device: str = Field(
        "eth0", pattern=r"^[A-Za-z0-9_.@-]{1,15}$", description="the target's interface netem shapes"
    )

    @field_validator("ports")
    @classmethod
    def _port_range(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is out of range 1-65535")
        return sorted(set(ports))

    @field_validator("destinations")
    @classmethod
    def _ipv4_destinations(cls, destinations: list[str]) -> list[str]:
        return [redirect.check_destination(text) for text in destinations]


class DelayShape(FaultParams):
    delay: Duration = Field(description="added to the target's outbound traffic, e.g. 100ms")
    jitter: Duration = Field(timedelta(0), description="random spread either side of the delay")
    correlation: float = Field(
        0, ge=0, le=100, description="netem only: percent of each delay that depends on the previous one"
    )

    @model_validator(mode="after")
    def _some_delay(self) -> Self:
        if self.delay <= timedelta(0):
            raise ValueError("delay must be longer than zero")
        if self.delay > MAX_DELAY or self.jitter > MAX_DELAY:
            raise ValueError(f"delay and jitter are limited to {format_duration(MAX_DELAY)}")
        return self


class LossShape(FaultParams):
    percent: float = Field(gt=0, le=100, description="share lost: packets (netem) or new connections (proxy)")
    correlation: float = Field(
        0, ge=0, le=100, description="netem only: percent of each loss decision that depends on the previous"
    )
    proxy_loss: ProxyLoss = Field(
        ProxyLoss.RESET,
        description="how the proxy loses a connection: reset (an RST at once) or stall (never answered)",
    )


class AddsLatency:
    """netem shape, proxy toxic and wording of a latency fault (a mixin for the fault classes)."""

    def netem_shape(self, params: DelayShape) -> netem.Netem:
        return netem.Netem(
            delay=params.delay.total_seconds(),
            jitter=params.jitter.total_seconds(),
            delay_correlation=params.correlation,
        )

    def toxic(self, params: DelayShape) -> Toxic:
        # Upstream: the target's outbound data waits, as netem's egress delay would make it.
        return Latency(
            name="latency",
            delay=params.delay.total_seconds(),
            jitter=params.jitter.total_seconds(),
            direction=Direction.UPSTREAM,
        )

    def describe(self, params: DelayShape) -> str:
        jitter = f" ± {format_duration(params.jitter)}" if params.jitter else ""
        return f"add {format_duration(params.delay)}{jitter} latency"


class LosesTraffic:
    """netem shape, proxy toxic and wording of a loss fault (a mixin for the fault classes)."""

    def netem_shape(self, params: LossShape) -> netem.Netem:
        return netem.Netem(loss=params.percent, loss_correlation=params.correlation)

    def toxic(self, params: LossShape) -> Toxic:
        if params.proxy_loss is ProxyLoss.STALL:
            return Stall(name="loss", fraction=params.percent / 100)
        return Reset(name="loss", fraction=params.percent / 100)

    def describe(self, params: LossShape) -> str:
        return f"lose {params.percent:g}%"
