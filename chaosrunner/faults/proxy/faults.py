"""The ``proxy.*`` kinds: a fault proxy placed between a client and a dependency.

The scenario points the client at ``listen`` instead of the dependency (a
config value, a DNS alias, a Compose port) and the proxy relays to
``upstream``, misbehaving as the kind says. Each kind runs one proxy with one
toxic, held by a holder process (dead-man's switch: it ends at the fault's
duration plus ``grace`` whatever happens to chaosrunner), and each toxic can
be switched off and on while the fault runs through the control file
(``chaosrunner.faults.proxy.control.switch``).

Revert stops the holder (SIGTERM, then SIGKILL) and removes its control
directory; it works from a record that never learnt the holder's pid.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import timedelta
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from chaosrunner.durations import Duration
from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import (
    Fault,
    FaultParams,
    FaultPlan,
    FaultRequest,
    RevertRecord,
    TargetRef,
    choose_targets,
)
from chaosrunner.faults.proxy import lifecycle
from chaosrunner.faults.proxy.control import read_status
from chaosrunner.faults.proxy.server import Address
from chaosrunner.faults.proxy.toxics import (
    Bandwidth,
    Direction,
    HttpError,
    Latency,
    Reset,
    Stall,
    Toxic,
    ToxicSet,
)
from chaosrunner.faults.registry import register

ADDRESS_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$"


class HoldingParams(FaultParams):
    """How long a holder may outlive the fault's planned end (the dead-man's switch)."""

    grace: Duration = Field(
        timedelta(seconds=15),
        description="the holder ends the fault by itself this long after its duration if nobody reverted it",
    )
    hold_limit: Duration = Field(
        timedelta(minutes=30),
        description="deadline used instead of the duration when the fault has none (gameday mode)",
    )

    @model_validator(mode="after")
    def _positive_holding(self) -> Self:
        if self.hold_limit <= timedelta(0):
            raise ValueError("hold_limit must be longer than zero")
        if self.grace < timedelta(0):
            raise ValueError("grace cannot be negative")
        return self


class ProxyParams(HoldingParams):
    listen: str = Field(
        pattern=ADDRESS_PATTERN,
        description="host:port the proxy listens on; point the client here (port 0: any free port)",
    )
    upstream: str = Field(pattern=ADDRESS_PATTERN, description="host:port of the dependency to relay to")
    enabled: bool = Field(
        True, description="start with the toxic switched on; the control interface flips it during the run"
    )

    @model_validator(mode="after")
    def _valid_ports(self) -> Self:
        for field_name in ("listen", "upstream"):
            port = Address.parse(getattr(self, field_name)).port
            if port > 65535 or (field_name == "upstream" and port == 0):
                raise ValueError(f"{field_name}: port {port} is out of range")
        return self


class ProxyFault(Fault):
    """Plan/inject/revert/check shared by the proxy kinds; subclasses say which toxic."""

    toxic_name: ClassVar[str]

    @abstractmethod
    def toxic(self, params: Any) -> Toxic:
        """The toxic this kind installs, from its params."""

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, ProxyParams)
        listen, upstream = Address.parse(params.listen), Address.parse(params.upstream)
        if listen == upstream:
            raise PlanRefused(f"fault {request.name!r}: listen and upstream are both {listen}: it would loop")
        target = TargetRef(id=f"{listen}->{upstream}", name=f"proxy {listen} -> {upstream}")
        choose_targets(request.name, [target], request.blast_radius)
        label = lifecycle.holder_label(request.run_id, request.name)
        toxics = ToxicSet(toxics=[self.toxic(params)])
        record: RevertRecord = {
            "label": label,
            "control_dir": str(lifecycle.control_dir(label)),
            "listen": str(listen),
            "upstream": str(upstream),
            "toxics": toxics.model_dump(mode="json"),
            "hold_seconds": lifecycle.hold_seconds(request.hold_for, params.hold_limit, params.grace),
            "holder": None,
            "address": None,
        }
        return FaultPlan(
            fault=request.name,
            kind=self.kind,
            targets=[target],
            revert_record=record,
            summary=f"proxy {listen} -> {upstream} with {self.describe(params)}",
        )

    def describe(self, params: Any) -> str:
        state = "" if params.enabled else " (switched off)"
        return f"toxic {self.toxic_name}{state}"

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        toxics = ToxicSet.model_validate(record["toxics"])
        spec = {"fault": plan.fault, "listen": record["listen"], "upstream": record["upstream"]}
        holder = lifecycle.start(record["label"], spec, toxics, record["hold_seconds"])
        record["holder"] = holder.as_dict()
        status = read_status(lifecycle.control_dir(record["label"]))
        record["address"] = status.address if status else record["listen"]
        return record

    def revert(self, record: RevertRecord) -> None:
        lifecycle.stop(record["label"], record.get("holder"))

    def check(self, record: RevertRecord) -> bool:
        return lifecycle.alive(record["label"], record.get("holder"))


def _percent(description: str, default: float = 100.0) -> Any:
    return Field(default, gt=0, le=100, description=description)


class LatencyParams(ProxyParams):
    delay: Duration = Field(description="added to each chunk of data, e.g. 100ms")
    jitter: Duration = Field(timedelta(0), description="uniform spread either side of the delay")
    direction: Direction = Field(
        Direction.DOWNSTREAM,
        description="upstream (client to dependency), downstream (answers) or both (twice per round trip)",
    )


@register
class ProxyLatency(ProxyFault):
    kind = "proxy.latency"
    summary = "Delay (plus jitter) the traffic through a fault proxy; revert stops the proxy."
    Params = LatencyParams
    toxic_name = "latency"

    def toxic(self, params: LatencyParams) -> Toxic:
        return Latency(
            name=self.toxic_name,
            enabled=params.enabled,
            delay=params.delay.total_seconds(),
            jitter=params.jitter.total_seconds(),
            direction=params.direction,
        )


class ResetParams(ProxyParams):
    percent: float = _percent("share of connections reset (new ones at accept, live ones on their next data)")


@register
class ProxyReset(ProxyFault):
    kind = "proxy.reset"
    summary = "Reset (TCP RST) a share of the connections through a fault proxy; revert stops the proxy."
    Params = ResetParams
    toxic_name = "reset"

    def toxic(self, params: ResetParams) -> Toxic:
        return Reset(name=self.toxic_name, enabled=params.enabled, fraction=params.percent / 100)


class TimeoutParams(ProxyParams):
    percent: float = _percent("share of connections stalled: accepted, never answered")
    close_after: Duration | None = Field(
        None, description="close stalled connections after this long; unset: hold them open"
    )


@register
class ProxyTimeout(ProxyFault):
    kind = "proxy.timeout"
    summary = "Stall a share of connections through a fault proxy (accept, never answer); revert stops it."
    Params = TimeoutParams
    toxic_name = "timeout"

    def toxic(self, params: TimeoutParams) -> Toxic:
        return Stall(
            name=self.toxic_name,
            enabled=params.enabled,
            fraction=params.percent / 100,
            close_after=params.close_after.total_seconds() if params.close_after else None,
        )


class BandwidthParams(ProxyParams):
    rate: float = Field(gt=0, description="kilobytes (1000 bytes) per second let through")
    direction: Direction = Field(Direction.DOWNSTREAM, description="upstream, downstream or both")


@register
class ProxyBandwidth(ProxyFault):
    kind = "proxy.bandwidth"
    summary = "Limit the bandwidth through a fault proxy to a rate in KB/s; revert stops the proxy."
    Params = BandwidthParams
    toxic_name = "bandwidth"

    def toxic(self, params: BandwidthParams) -> Toxic:
        return Bandwidth(
            name=self.toxic_name, enabled=params.enabled, rate=params.rate * 1000, direction=params.direction
        )


class HttpErrorParams(ProxyParams):
    status: int = Field(503, ge=100, le=599, description="HTTP status code of the injected answer")
    percent: float = _percent("share of HTTP requests answered with the status, the rest pass through")
    body: str = Field("injected by chaosrunner\n", max_length=4096, description="body of the injected answer")


@register
class ProxyHttpError(ProxyFault):
    kind = "proxy.http-error"
    summary = "Answer a share of HTTP requests through a fault proxy with an error status; revert stops it."
    Params = HttpErrorParams
    toxic_name = "http-error"

    def toxic(self, params: HttpErrorParams) -> Toxic:
        return HttpError(
            name=self.toxic_name,
            enabled=params.enabled,
            status=params.status,
            fraction=params.percent / 100,
            body=params.body,
        )
