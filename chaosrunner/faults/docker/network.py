"""Network faults: cut a container off a network, or blackhole one destination.

``docker.network-disconnect`` uses the Engine API. Docker forgets how a
container was attached once it is disconnected, so the plan records every
attachment detail a faithful reconnect needs - aliases (the Compose service
name is one), a static IP from IPAM config, links, driver options - in the
revert record, before anything is touched.

``docker.network-blackhole`` inserts DROP (or REJECT) rules at the top of the
OUTPUT chain *inside the container's network namespace*, entered from the host
with ``nsenter`` (see ``hostaccess`` for why not ``docker exec``). The rest of
the host and other containers are unaffected. Rules carry the run's comment
(see ``iptables``), so revert deletes exactly ours and ``sweep`` finds
leftovers. A container restarted meanwhile has a fresh namespace without our
rules, so there is nothing to undo in it.

Safety on top of the selector's: a container on the host network (or whose
namespace is the host's) is never blackholed - its rules would be the host's -
and a container sharing another's namespace (``--network container:X``) is
refused too: target X, whose namespace it is, so the blast radius is honest.
"""

from __future__ import annotations

import copy
import ipaddress
import socket
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from chaosrunner.errors import FaultError, PlanRefused
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.docker import iptables
from chaosrunner.faults.docker.client import DockerApi
from chaosrunner.faults.docker.fault import DockerFault, DockerFaultParams, exclusions_note
from chaosrunner.faults.docker.hostaccess import (
    host_process_problem,
    missing_tools,
    nsenter_net,
    run,
    shares_host_network,
    verified_pid,
)
from chaosrunner.faults.docker.selection import names, select_and_choose
from chaosrunner.faults.docker.snapshot import ContainerInfo, NetworkAttachment, NetworkInfo
from chaosrunner.faults.registry import register

MAX_DESTINATIONS = 16

# ------------------------------------------------------------------ disconnect


class DisconnectParams(DockerFaultParams):
    network: str = Field(min_length=1, description="name (or id) of the network to cut the containers off")


def attachment_to(container: ContainerInfo, network: NetworkInfo) -> NetworkAttachment | None:
    for name, attachment in container.networks.items():
        if name == network.name or (attachment.network_id and attachment.network_id == network.id):
            return attachment
    return None


@register
class NetworkDisconnect(DockerFault):
    kind = "docker.network-disconnect"
    summary = (
        "Disconnect containers from a Docker network; revert reconnects them with the same aliases "
        "(and static IP, links, driver options)."
    )
    Params = DisconnectParams

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, DisconnectParams)
        with self.docker(self.host_of(request)) as api:
            network = api.network(params.network)
            if network is None:
                raise PlanRefused(f"fault {request.name!r}: there is no Docker network {params.network!r}")
            if network.driver in ("host", "null"):
                raise PlanRefused(
                    f"fault {request.name!r}: network {network.name!r} ({network.driver} driver) "
                    "cannot be disconnected from"
                )

            def unsuitable(container: ContainerInfo) -> str | None:
                if container.shares_network_of:
                    return f"shares the network namespace of container {container.shares_network_of[:12]}"
                if attachment_to(container, network) is None:
                    return f"is not connected to network {network.name}"
                return None

            targets, selection = select_and_choose(api, request, unsuitable, self._own_container_ids)
        entries = []
        for container in targets:
            attachment = attachment_to(container, network)
            assert attachment is not None
            entries.append({"id": container.id, "name": container.name, "attachment": attachment.as_record()})
        record = self.record_for(request, entries, network=network.name, network_id=network.id)
        summary = (
            f"disconnect {names(targets)} from network {network.name}{exclusions_note(selection.excluded)}"
        )
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self.arm_watchdog(copy.deepcopy(plan.revert_record))
        with self.docker(record["docker_host"]) as api:
            network = self._network(api, record)
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or attachment_to(current, network) is None:
                    entry["skipped"] = "not connected when the fault was injected"
                    continue
                api.disconnect(network.id, entry["id"])
                entry["disconnected"] = True
        return record

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        with self.docker(record["docker_host"]) as api:
            network: NetworkInfo | None = None
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None:
                    continue  # removed: nothing left to reconnect
                network = network or self._network(api, record)
                if attachment_to(current, network) is not None:
                    continue
                try:
                    api.connect(network.id, entry["id"], NetworkAttachment.from_record(entry["attachment"]))
                except FaultError:
                    # The watchdog (or a person) may have reconnected it a moment ago.
                    current = api.inspect(entry["id"])
                    if current is not None and attachment_to(current, network) is None:
                        raise

    def check(self, record: RevertRecord) -> bool:
        with self.docker(record["docker_host"]) as api:
            network = api.network(record["network_id"])
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is not None and (network is None or attachment_to(current, network) is None):
                    return True
        return False

    @staticmethod
    def _network(api: DockerApi, record: RevertRecord) -> NetworkInfo:
        network = api.network(record["network_id"])
        if network is None:
            raise FaultError(
                f"network {record['network']!r} no longer exists; "
                f"{', '.join(entry['name'] for entry in record['containers'])} cannot be reconnected"
            )
        return network


# ------------------------------------------------------------------ blackhole

Port = Annotated[int, Field(ge=1, le=65535)]


class BlackholeParams(DockerFaultParams):
    destination: str = Field(
        min_length=1,
        description=(
            "what to cut off: an IP address or CIDR, the name or alias of a container on a network the "
            "target shares (a Compose service name), or a host name resolved on the chaosrunner host"
        ),
    )
    ports: list[Port] = Field(
        default_factory=list, max_length=15, description="destination ports to drop; empty: every port"
    )
    protocol: Literal["tcp", "udp", "all"] = Field("tcp", description="tcp, udp, or all (needs no ports)")
    action: Literal["drop", "reject"] = Field(
        "drop",
        description="drop: packets vanish and connects time out; reject: refused at once (TCP reset)",
    )

    @model_validator(mode="after")
    def _ports_need_a_protocol(self) -> Self:
        if self.protocol == "all" and self.ports:
            raise ValueError("ports need protocol tcp or udp, not 'all'")
        return self


def blackhole_unsuitable(container: ContainerInfo) -> str | None:
    if container.network_mode == "host" or (container.running and shares_host_network(container)):
        return "uses the host's network namespace (its rules would be the host's)"
    if container.shares_network_of:
        return (
            f"shares the network namespace of container {container.shares_network_of[:12]} "
            "(select that container instead)"
        )
    return host_process_problem(container)


def resolve_destination(api: DockerApi, destination: str, target: ContainerInfo) -> list[str]:
    """Destination networks as CIDRs: a literal, a peer on a shared network, or host DNS."""
    try:
        return [str(ipaddress.ip_network(destination, strict=False))]
    except ValueError:
        pass
    peers = _peer_addresses(api, destination, target)
    if peers:
        return peers
    try:
        answers = socket.getaddrinfo(destination, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    addresses = sorted({str(answer[4][0]) for answer in answers})
    return [str(ipaddress.ip_network(address)) for address in addresses][:MAX_DESTINATIONS]


def _peer_addresses(api: DockerApi, destination: str, target: ContainerInfo) -> list[str]:
    """Addresses of containers named ``destination`` (or aliased so) on the target's networks."""
    found: set[str] = set()
    for attachment in target.networks.values():
        network = api.network(attachment.network_id or attachment.network)
        if network is None:
            continue
        for member in network.members:
            if member.container_id == target.id:
                continue
            aliases: tuple[str, ...] = ()
            if member.name != destination:
                peer = api.inspect(member.container_id)
                peer_attachment = peer.networks.get(network.name) if peer else None
                aliases = peer_attachment.aliases if peer_attachment else ()
            if member.name == destination or destination in aliases:
                found.update(
                    f"{address}/{32 if ':' not in address else 128}"
                    for address in (member.ipv4, member.ipv6)
                    if address
                )
    return sorted(found)


@register
class NetworkBlackhole(DockerFault):
    kind = "docker.network-blackhole"
    summary = (
        "Drop (or reject) a container's traffic to one destination and ports with iptables in its "
        "network namespace; revert deletes exactly the rules carrying the run's comment."
    )
    Params = BlackholeParams

    def plan(self, request: FaultRequest) -> FaultPlan:
        params = request.params
        assert isinstance(params, BlackholeParams)
        comment = iptables.rule_comment(request.run_id, request.name)
        entries: list[dict[str, Any]] = []
        all_rules: list[iptables.Blackhole] = []
        with self.docker(self.host_of(request)) as api:
            targets, selection = select_and_choose(
                api, request, blackhole_unsuitable, self._own_container_ids
            )
            for container in targets:
                destinations = resolve_destination(api, params.destination, container)
                if not destinations:
                    raise PlanRefused(
                        f"fault {request.name!r}: destination {params.destination!r} is neither an address, "
                        f"nor a container on a network {container.name} is on, nor a resolvable host name"
                    )
                rules = [
                    iptables.Blackhole(destination, params.protocol, tuple(params.ports), params.action)
                    for destination in destinations
                ]
                all_rules.extend(rules)
                entries.append(
                    {
                        "id": container.id,
                        "name": container.name,
                        "rules": [{"family": rule.family, "spec": rule.spec(comment)} for rule in rules],
                    }
                )
        families = sorted({rule.family for rule in all_rules})
        missing = missing_tools("nsenter", *(iptables.binary_for(family) for family in families))
        if missing:
            raise PlanRefused(
                f"fault {request.name!r}: {', '.join(missing)} not installed on the chaosrunner host"
            )
        record = self.record_for(request, entries, comment=comment, families=families)
        ports = ",".join(str(port) for port in params.ports) or "every port"
        destinations = sorted({rule.destination for rule in all_rules})
        summary = (
            f"{params.action} {params.protocol} traffic from {names(targets)} to {params.destination} "
            f"({', '.join(destinations)}) on {ports}{exclusions_note(selection.excluded)}"
        )
        return self.plan_for(request, targets, record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = self.arm_watchdog(copy.deepcopy(plan.revert_record))
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running:
                    entry["skipped"] = "not running when the fault was injected"
                    continue
                pid = verified_pid(current)
                for rule in entry["rules"]:
                    present = run(
                        nsenter_net(pid, iptables.check_argv(rule["family"], rule["spec"])), "check rule"
                    )
                    if present.returncode == 0:
                        continue
                    added = run(
                        nsenter_net(pid, iptables.insert_argv(rule["family"], rule["spec"])), "add rule"
                    )
                    if added.returncode != 0:
                        raise FaultError(
                            f"iptables refused the blackhole rule in {entry['name']}: {added.stderr.strip()}"
                        )
                entry["pid"] = pid
        return record

    def revert(self, record: RevertRecord) -> None:
        self.disarm_watchdog(record)
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running:
                    continue  # its network namespace, and our rules in it, are gone
                delete_rules(verified_pid(current), record["comment"], record.get("families", [4]))

    def check(self, record: RevertRecord) -> bool:
        with self.docker(record["docker_host"]) as api:
            for entry in record["containers"]:
                current = api.inspect(entry["id"])
                if current is None or not current.running:
                    continue
                pid = verified_pid(current)
                if any(list_rules(pid, record["comment"], family) for family in record.get("families", [4])):
                    return True
        return False


def list_rules(pid: int, comment: str, family: int, *, prefix: bool = False) -> list[list[str]]:
    listed = run(nsenter_net(pid, iptables.list_argv(family)), "list iptables rules")
    if listed.returncode != 0:
        raise FaultError(f"cannot list iptables rules of process {pid}: {listed.stderr.strip()}")
    return iptables.rules_carrying(listed.stdout, comment, prefix=prefix)


def delete_rules(pid: int, comment: str, families: list[int], *, prefix: bool = False) -> int:
    """Delete every OUTPUT rule carrying ``comment`` in the namespace of ``pid``; returns how many."""
    deleted = 0
    for family in families:
        for rule in list_rules(pid, comment, family, prefix=prefix):
            result = run(nsenter_net(pid, iptables.delete_argv(family, rule)), "delete rule")
            # "does not exist" means a concurrent revert (the watchdog) was faster: fine.
            if result.returncode == 0:
                deleted += 1
            elif list_rules(pid, comment, family, prefix=prefix):
                raise FaultError(f"cannot delete iptables rule {rule}: {result.stderr.strip()}")
    return deleted


def sweep(api: DockerApi, run_id: str | None = None) -> list[dict[str, Any]]:
    """Delete leftover blackhole rules (of one run, or of any) in every reachable container.

    For ``chaosrunner recover`` and people cleaning up after a crashed run with
    no journal; returns what was found, per container, with any error.
    """
    prefix = iptables.rule_comment(run_id, "") if run_id else iptables.COMMENT_PREFIX
    swept = []
    for container in api.list_containers({}):
        if blackhole_unsuitable(container):
            continue
        for family in (4, 6):
            if missing_tools(iptables.binary_for(family)):
                continue
            try:
                count = delete_rules(container.pid, prefix, [family], prefix=True)
            except FaultError as error:
                swept.append(
                    {"id": container.id, "name": container.name, "family": family, "error": str(error)}
                )
                continue
            if count:
                swept.append({"id": container.id, "name": container.name, "family": family, "deleted": count})
    return swept
