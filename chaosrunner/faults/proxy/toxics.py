"""The toxics: what the fault proxy does to the traffic it relays.

Named after Toxiproxy's, and meant to feel the same to anyone who used it: a
toxic is a small, declarative description of one kind of misbehaviour, and a
proxy carries a list of them, each switched on or off independently while the
proxy runs. These models are the runtime form - seconds and fractions, plain
JSON in the control file - not the scenario form (``100ms``, ``percent``),
which lives in the fault kinds' params.

The decisions a toxic takes are pure functions of the toxic and a random
source (``due``, ``pause_for``, ``hits``), so the statistics are unit-tested
without sockets; the server only applies them.

Directions: ``upstream`` is data from the client to the dependency,
``downstream`` data from the dependency back to the client. A request/response
round trip crosses each direction once, so a latency toxic on ``both`` adds its
delay twice to a round trip; on one direction, once (which is what netem's
egress delay does on a real host).
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaosrunner.errors import FaultError


class Direction(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BOTH = "both"

    def covers(self, flow: Direction) -> bool:
        """Whether a toxic on ``self`` applies to data flowing ``flow``."""
        return self is Direction.BOTH or self is flow


class _Toxic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="identifies the toxic in the control file")
    enabled: bool = Field(True, description="switched on; the control interface flips this")


class Latency(_Toxic):
    """Hold each chunk of data ``delay`` (plus or minus ``jitter``) before passing it on."""

    type: Literal["latency"] = "latency"
    delay: float = Field(ge=0, le=3600, description="seconds added to each chunk")
    jitter: float = Field(0.0, ge=0, le=3600, description="uniform spread, seconds either side")
    direction: Direction = Direction.DOWNSTREAM

    def due(self, arrival: float, previous_due: float, rng: random.Random) -> float:
        """When a chunk that arrived at ``arrival`` may leave.

        Never before the previous chunk of the same stream: jitter must not
        reorder a TCP byte stream (it would corrupt it), so a late chunk holds
        the ones behind it, as a real queue would.
        """
        spread = rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(previous_due, arrival + max(0.0, self.delay + spread))


class Reset(_Toxic):
    """Reset (TCP RST) a fraction of connections: new ones at accept, live ones on their next data."""

    type: Literal["reset"] = "reset"
    fraction: float = Field(1.0, gt=0, le=1, description="share of connections reset, 0 to 1")

    def hits(self, rng: random.Random) -> bool:
        return rng.random() < self.fraction


class Stall(_Toxic):
    """Accept and never answer: stop relaying data on a fraction of connections.

    Data is not read while stalled (it waits in the kernel's buffers), so a
    connection that survives the stall carries an intact byte stream once the
    toxic is switched off. ``close_after`` ends stalled connections, like
    Toxiproxy's ``timeout``; ``None`` holds them open until the toxic goes.
    """

    type: Literal["timeout"] = "timeout"
    fraction: float = Field(1.0, gt=0, le=1, description="share of connections stalled, 0 to 1")
    close_after: float | None = Field(None, gt=0, description="close stalled connections after this")

    def hits(self, rng: random.Random) -> bool:
        return rng.random() < self.fraction


class Bandwidth(_Toxic):
    """Pace the data to ``rate`` bytes per second."""

    type: Literal["bandwidth"] = "bandwidth"
    rate: float = Field(gt=0, description="bytes per second")
    direction: Direction = Direction.DOWNSTREAM

    def slice_size(self) -> int:
        """Bytes written in one go: 50 ms worth, so pacing stays smooth at any rate."""
        return max(1, int(self.rate * 0.05))

    def pause_for(self, nbytes: int) -> float:
        return nbytes / self.rate


class HttpError(_Toxic):
    """Answer a fraction of HTTP requests with ``status`` instead of passing them on."""

    type: Literal["http-error"] = "http-error"
    status: int = Field(503, ge=100, le=599, description="status code of the injected answer")
    fraction: float = Field(1.0, gt=0, le=1, description="share of requests answered, 0 to 1")
    body: str = Field("injected by chaosrunner\n", description="body of the injected answer")

    def hits(self, rng: random.Random) -> bool:
        return rng.random() < self.fraction


Toxic = Annotated[Latency | Reset | Stall | Bandwidth | HttpError, Field(discriminator="type")]


class ToxicSet(BaseModel):
    """Every toxic of one proxy, with a generation that grows on each change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int = Field(0, ge=0)
    toxics: list[Toxic] = Field(default_factory=list)

    def active(self) -> list[Latency | Reset | Stall | Bandwidth | HttpError]:
        return [toxic for toxic in self.toxics if toxic.enabled]

    def latency(self, flow: Direction) -> Latency | None:
        return next((t for t in self.active() if isinstance(t, Latency) and t.direction.covers(flow)), None)

    def bandwidth(self, flow: Direction) -> Bandwidth | None:
        return next((t for t in self.active() if isinstance(t, Bandwidth) and t.direction.covers(flow)), None)

    def reset(self) -> Reset | None:
        return next((t for t in self.active() if isinstance(t, Reset)), None)

    def stall(self) -> Stall | None:
        return next((t for t in self.active() if isinstance(t, Stall)), None)

    def http_error(self) -> HttpError | None:
        return next((t for t in self.active() if isinstance(t, HttpError)), None)

    def inspects_http(self) -> bool:
        """Whether the proxy must frame HTTP requests (an http-error toxic exists, on or off)."""
        return any(isinstance(toxic, HttpError) for toxic in self.toxics)

    def switched(self, name: str, enabled: bool) -> ToxicSet:
        """A copy with toxic ``name`` switched on or off, and the next generation."""
        if name not in {toxic.name for toxic in self.toxics}:
            known = ", ".join(toxic.name for toxic in self.toxics) or "none"
            raise FaultError(f"no toxic named {name!r} (known: {known})")
        toxics = [
            toxic.model_copy(update={"enabled": enabled}) if toxic.name == name else toxic
            for toxic in self.toxics
        ]
        return ToxicSet(generation=self.generation + 1, toxics=toxics)
