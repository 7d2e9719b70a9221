"""``docker.network-latency`` and ``docker.network-loss``: slow or lossy egress from a container.

Two mechanisms, chosen by the ``mechanism`` param:

``netem``
    tc netem on the container's interface, from the host through ``nsenter``
    (commands and the kernel probe in ``chaosrunner.faults.netem``). Packet
    level, every protocol, what most hosts allow. Refused with the missing
    kernel feature named when the kernel lacks it (this machine's does).
``proxy``
    The fault proxy inside the container's network namespace, fed by an
    iptables REDIRECT of the container's outbound TCP (``chaosrunner.faults.
    proxy.redirect``). Needs no netem. TCP only, and connection level: it
    delays data (not the handshake, which the proxy answers locally), and
    "loss" means resetting or stalling a share of new connections, because a
    TCP stream cannot lose single packets at that layer.
``auto`` (default)
    netem when the kernel has it, else the proxy.

Targets are chosen like every Docker fault's (``ContainerSelector``, the
protection label, the blast radius); containers that this host cannot enter
(remote daemon), that share the host's network namespace (shaping them would
shape the host) or another container's (it would shape that one too) are left
alone and named in the plan.

Dead-man's switches: the proxy holder ends at the fault's duration plus
``deadman_grace`` and removes its rules on the way out; the Docker watchdog
(armed for both mechanisms) reverts at that same deadline, which is what
removes a netem qdisc, or rules left by a holder that was SIGKILLed.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import Field

from chaosrunner.errors import EnvironmentProblem, FaultError
from chaosrunner.faults import netem
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.docker import hostaccess
from chaosrunner.faults.docker.client import open_client
from chaosrunner.faults.docker.fault import Connector, DockerFault, DockerFaultParams, exclusions_note
from chaosrunner.faults.docker.selection import names, select_and_choose
from chaosrunner.faults.docker.snapshot import ContainerInfo
from chaosrunner.faults.proxy import lifecycle, redirect
from chaosrunner.faults.proxy.netns import netns_inode, nsenter_prefix, same_netns
from chaosrunner.faults.proxy.toxics import Toxic, ToxicSet
from chaosrunner.faults.registry import register
from chaosrunner.faults.shaping import (
    AddsLatency,
    DelayShape,
    LosesTraffic,
    LossShape,
    Mechanism,
    TrafficFilter,
)

KernelProbe = netem.KernelProbe
WATCHDOG_LAG = 15.0
"""Seconds the Docker watchdog waits after the proxy holder's own deadline."""


class ShapingParams(DockerFaultParams, TrafficFilter):
    mechanism: Mechanism = Field(
        Mechanism.AUTO,
        description="netem (tc, any protocol), proxy (TCP through the fault proxy, no netem needed) "
        "or auto (netem when the kernel has it, else proxy)",
    )


class LatencyParams(ShapingParams, DelayShape):
    pass


class LossParams(ShapingParams, LossShape):
    pass


def _unsuitable(container: ContainerInfo) -> str | None:
    if container.paused:
        return "is paused (not by this fault; left alone)"
    problem = hostaccess.host_process_problem(container)
    if problem:
        return problem
    if hostaccess.shares_host_network(container):
        return "shares the host's network namespace (shaping it would shape the host)"
    if container.shares_network_of:
        return f"uses container {container.shares_network_of}'s network namespace (it would be shaped too)"
    return None


class NetworkShaping(DockerFault):
    """Shared plan/inject/revert/check; subclasses say what netem and the proxy do."""

    Params: ClassVar[type[ShapingParams]]

    def __init__(
        self,
        connect: Connector = open_client,
        own_container_ids: set[str] | None = None,
        kernel_probe: KernelProbe = netem.missing_features,
    ) -> None:
        super().__init__(connect, own_container_ids)
        self._missing_features = kernel_probe

    @abstractmethod
    def netem_shape(self, params: Any) -> netem.Netem:
        """What netem does to each packet, from the params."""

    @abstractmethod
    def toxic(self, params: Any) -> Toxic:
        """What the proxy does instead, from the params."""

    @abstractmethod
    def describe(self, params: Any) -> str:
        """The effect in a few words, for the plan's summary."""

    # ---------------------------------------------------------------- plan

    def choose_mechanism(self, request: FaultRequest) -> tuple[Mechanism, str]:
        """The mechanism to use and a note for the plan; refuses netem without kernel support."""
        params = request.params
        assert isinstance(params, ShapingParams)
        steering = netem.Steering(tuple(params.destinations), tuple(params.ports))
        if params.mechanism is Mechanism.PROXY:
            return Mechanism.PROXY, ""
        missing = self._missing_features(steering.features())
        if not missing:
            return Mechanism.NETEM, ""
        why = netem.describe_missing(missing)
        if params.mechanism is Mechanism.NETEM:
            modules = " ".join(netem.kernel_modules(list(missing)))
            raise EnvironmentProblem(
                f"fault {request.name!r}: mechanism 'netem' needs kernel support this machine lacks: "
                f"{why}. Load it (modprobe {modules}) or use mechanism 'proxy' (TCP only) or 'auto'"
            )
        return Mechanism.PROXY, f" (auto: proxy, because {why})"

    def _preconditions(self, request: FaultRequest, mechanism: Mechanism) -> None:
        tools = (
            ("nsenter", "iptables", "iptables-save") if mechanism is Mechanism.PROXY else ("nsenter", "tc")
        )
        missing = ", ".join(hostaccess.missing_tools(*tools))
        if missing:
            raise EnvironmentProblem(
                f"fault {request.name!r}: the {mechanism.value} mechanism needs {missing} on this host"
            )
        if os.geteuid() != 0:
            raise EnvironmentProblem(
                f"fault {request.name!r}: entering a container's network namespace needs root "
                "(CAP_SYS_ADMIN and CAP_NET_ADMIN)"
            )

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, ShapingParams)
        mechanism, note = self.choose_mechanism(request)
        self._preconditions(request, mechanism)
        with self.docker(self.host_of(request)) as api:
            targets, selection = select_and_choose(api, request, _unsuitable, self._own_container_ids)
        comment = redirect.rule_comment(request.run_id, request.name)
        containers = [self._container_record(request, container) for container in targets]
        extra: dict[str, Any] = {"mechanism": mechanism.value, "device": params.device}
        if mechanism is Mechanism.NETEM:
            steering = netem.Steering(tuple(params.destinations), tuple(params.ports))
            extra["netem_commands"] = netem.add_commands(params.device, self.netem_shape(params), steering)
            how = f"tc netem on {params.device}"
        else:
            extra |= {
                "comment": comment,
                "mark": redirect.mark_for(comment),
                "ports": list(params.ports),
                "destinations": list(params.destinations),
                "toxics": ToxicSet(toxics=[self.toxic(params)]).model_dump(mode="json"),
            }
            ports = f" to ports {', '.join(map(str, params.ports))}" if params.ports else ""
            how = f"the fault proxy (TCP{ports})"
        record = self.record_for(request, containers, **extra)
        summary = (
            f"{self.describe(params)} on {names(targets)} through {how}{note}"
            f"{exclusions_note(selection.excluded)}"
        )
        return self.plan_for(request, targets, record, summary)

    def _container_record(self, request: FaultRequest, container: ContainerInfo) -> dict[str, Any]:
        inode = netns_inode(container.pid)
        if inode is None:
            raise FaultError(f"container {container.name}: its network namespace vanished while planning")
        return {
            "id": container.id,
            "name": container.name,
            "pid": container.pid,
            "netns_inode": inode,
            "label": lifecycle.holder_label(request.run_id, request.name, container.short_id),
            "holder": None,
        }

    # ---------------------------------------------------------------- inject

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self._armed(plan.revert_record)
        for container in record["containers"]:
            if not same_netns(container["pid"], container["netns_inode"]):
                raise FaultError(
                    f"container {container['name']} is no longer in the planned network namespace "
                    "(it restarted since the plan); nothing was changed in it"
                )
        if record["mechanism"] == Mechanism.NETEM:
            for container in record["containers"]:
                for command in record["netem_commands"]:
                    redirect.run_checked([*nsenter_prefix(container["pid"]), *command])
            return record
        toxics = ToxicSet.model_validate(record["toxics"])
        containers = []
        for container in record["containers"]:
            spec = {
                "fault": record["fault"],
                "listen": "127.0.0.1:0",
                "upstream": None,
                "transparent": {
                    "pid": container["pid"],
                    "netns_inode": container["netns_inode"],
                    "comment": record["comment"],
                    "mark": record["mark"],
                    "ports": record["ports"],
                    "destinations": record["destinations"],
                },
            }
            holder = lifecycle.start(container["label"], spec, toxics, record["hold_seconds"])
            containers.append({**container, "holder": holder.as_dict()})
        return {**record, "containers": containers}

    def _armed(self, record: RevertRecord) -> RevertRecord:
        """The record with the Docker watchdog running; for the proxy, set to fire after the holder.

        The proxy holder is the first dead-man's switch (it removes its own
        rules at its deadline); the watchdog is the second, for a holder that
        was SIGKILLed, so it waits ``WATCHDOG_LAG`` longer rather than racing it.
        """
        if record["mechanism"] == Mechanism.NETEM:
            return self.arm_watchdog(record)
        armed = self.arm_watchdog({**record, "hold_seconds": record["hold_seconds"] + WATCHDOG_LAG})
        return {**armed, "hold_seconds": record["hold_seconds"]}

    # ---------------------------------------------------------------- revert, check

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        for container in record.get("containers", []):
            if record.get("mechanism") == Mechanism.PROXY:
                # The holder removes its rules when it stops; the comment sweep is the fallback.
                lifecycle.stop(container["label"], container.get("holder"))
                if same_netns(container["pid"], container["netns_inode"]):
                    redirect.remove(record["comment"], nsenter_prefix(container["pid"]))
            elif same_netns(container["pid"], container["netns_inode"]):
                self._remove_netem(container["pid"], record["device"])

    @staticmethod
    def _netem_present(pid: int, device: str) -> bool:
        return netem.is_ours(redirect.run_checked([*nsenter_prefix(pid), *netem.show_command(device)]))

    def _remove_netem(self, pid: int, device: str) -> None:
        if self._netem_present(pid, device):
            redirect.run_checked([*nsenter_prefix(pid), *netem.delete_command(device)])

    def check(self, record: RevertRecord) -> bool:
        return any(self._in_place(record, container) for container in record.get("containers", []))

    def _in_place(self, record: RevertRecord, container: dict[str, Any]) -> bool:
        if record.get("mechanism") == Mechanism.PROXY:
            return lifecycle.alive(container["label"], container.get("holder"))
        if not same_netns(container["pid"], container["netns_inode"]):
            return False  # the container (and its namespace with the qdisc) is gone
        return self._netem_present(container["pid"], record["device"])


@register
class DockerNetworkLatency(AddsLatency, NetworkShaping):
    kind = "docker.network-latency"
    summary = (
        "Delay a container's outbound traffic with tc netem, or with the fault proxy where the kernel "
        "has no netem; revert removes the qdisc or stops the proxy and its iptables rules."
    )
    Params = LatencyParams


@register
class DockerNetworkLoss(LosesTraffic, NetworkShaping):
    kind = "docker.network-loss"
    summary = (
        "Lose a share of a container's outbound packets with tc netem, or reset/stall a share of its "
        "new TCP connections with the fault proxy where the kernel has no netem; revert undoes either."
    )
    Params = LossParams
