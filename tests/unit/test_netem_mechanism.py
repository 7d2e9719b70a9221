"""docker.network-latency / -loss: which mechanism, the refusal without netem, exact commands.

The Docker Engine is replaced by a fake of *our* seam (``DockerApi``: only the
calls planning makes), and the kernel by a fake probe; the namespace checks use
this test process's own pid, which is a real process with a real namespace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chaosrunner.errors import EnvironmentProblem, PlanRefused
from chaosrunner.faults import docker_network_shaping as shaping
from chaosrunner.faults.base import BlastRadius, BlastRadiusMode, FaultPlan, FaultRequest
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.docker.snapshot import ContainerInfo
from chaosrunner.faults.proxy.netns import netns_inode

NO_NETEM = "tc said: Error: Specified qdisc kind is unknown."


def container(name: str, **overrides: Any) -> ContainerInfo:
    fields: dict[str, Any] = {"id": name.ljust(64, "0"), "name": name, "pid": os.getpid()}
    return ContainerInfo(**{**fields, **overrides})


class FakeDocker:
    def __init__(self, containers: Sequence[ContainerInfo]) -> None:
        self.containers = list(containers)
        self.host = "fake"

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        return [c for c in self.containers if all(c.labels.get(k) == v for k, v in labels.items())]

    def inspect(self, container_id: str) -> ContainerInfo | None:
        return next((c for c in self.containers if c.id == container_id), None)

    def close(self) -> None:
        pass


def kernel(*missing: str):
    def probe(features: Sequence[str]) -> dict[str, str]:
        return {feature: NO_NETEM for feature in features if feature in missing}

    return probe


def unreachable(host: str | None) -> FakeDocker:
    raise AssertionError("the plan should have been refused before asking dockerd")


@pytest.fixture(autouse=True)
def _host_can_enter_any_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shaping, "_unsuitable", lambda container: None)
    monkeypatch.setattr(shaping.NetworkShaping, "_preconditions", lambda self, request, mechanism: None)


def latency(docker: Any = None, probe: Any = None) -> shaping.DockerNetworkLatency:
    docker = docker or FakeDocker([container("api-1")])
    return shaping.DockerNetworkLatency(
        connect=lambda host: docker, own_container_ids=set(), kernel_probe=probe or kernel()
    )


def request_for(params: shaping.ShapingParams, name: str = "api-*") -> FaultRequest:
    return FaultRequest(
        run_id="run-1",
        name="slow-api",
        params=params,
        selector=ContainerSelector(name=name),
        duration=timedelta(seconds=30),
    )


def test_explicit_netem_without_kernel_support_is_refused_naming_the_module() -> None:
    fault = shaping.DockerNetworkLatency(
        connect=unreachable, own_container_ids=set(), kernel_probe=kernel("netem")
    )
    params = shaping.LatencyParams(delay="100ms", mechanism="netem")
    with pytest.raises(EnvironmentProblem) as refused:
        fault.plan(request_for(params))
    message = str(refused.value)
    assert "sch_netem (CONFIG_NET_SCH_NETEM) is missing" in message
    assert NO_NETEM in message and "modprobe sch_netem" in message and "mechanism 'proxy'" in message
    assert refused.value.exit_code == 3


def test_netem_steered_to_ports_also_needs_prio_and_u32() -> None:
    params = shaping.LatencyParams(delay="100ms", mechanism="netem", ports=[5432])
    with pytest.raises(EnvironmentProblem, match=r"sch_prio .* is missing.*modprobe sch_prio cls_u32"):
        latency(probe=kernel("prio", "u32")).plan(request_for(params))


def test_auto_falls_back_to_the_proxy_and_says_why() -> None:
    plan = latency(probe=kernel("netem")).plan(request_for(shaping.LatencyParams(delay="100ms", ports=[80])))
    record = plan.revert_record
    assert record["mechanism"] == "proxy"
    assert "auto: proxy, because sch_netem" in plan.summary
    assert "through the fault proxy (TCP to ports 80)" in plan.summary
    assert record["comment"] == "chaosrunner:run-1:slow-api"
    assert record["ports"] == [80] and record["destinations"] == []
    assert record["toxics"]["toxics"][0] == {
        "name": "latency",
        "enabled": True,
        "type": "latency",
        "delay": 0.1,
        "jitter": 0.0,
        "direction": "upstream",
    }
    (target,) = record["containers"]
    assert target["pid"] == os.getpid() and target["netns_inode"] == netns_inode(os.getpid())
    assert target["label"] == "proxy-run-1-slow-api-api-10000000" and target["holder"] is None
    assert record["hold_seconds"] == 60  # 30 s duration + the default 30 s dead-man's grace


def test_auto_uses_netem_when_the_kernel_has_it() -> None:
    params = shaping.LatencyParams(delay="100ms", jitter="10ms", correlation=25)
    plan = latency().plan(request_for(params))
    assert plan.revert_record["mechanism"] == "netem"
    assert plan.revert_record["netem_commands"] == [
        [
            "tc",
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "handle",
            "1:",
            "netem",
            "delay",
            "100ms",
            "10ms",
            "25%",
        ]
    ]
    assert "add 100ms ± 10ms latency on api-1 through tc netem on eth0" in plan.summary


def test_loss_by_proxy_resets_or_stalls_a_share_of_connections() -> None:
    fault = shaping.DockerNetworkLoss(
        connect=lambda host: FakeDocker([container("api-1")]),
        own_container_ids=set(),
        kernel_probe=kernel("netem"),
    )
    reset = fault.plan(request_for(shaping.LossParams(percent=20))).revert_record["toxics"]["toxics"][0]
    assert reset == {"name": "loss", "enabled": True, "type": "reset", "fraction": 0.2}
    stalled = fault.plan(request_for(shaping.LossParams(percent=20, proxy_loss="stall"))).revert_record
    assert stalled["toxics"]["toxics"][0]["type"] == "timeout"


def test_loss_by_netem_drops_packets() -> None:
    fault = shaping.DockerNetworkLoss(
        connect=lambda host: FakeDocker([container("api-1")]), own_container_ids=set(), kernel_probe=kernel()
    )
    record = fault.plan(request_for(shaping.LossParams(percent=5, correlation=50))).revert_record
    assert record["netem_commands"] == [
        ["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem", "loss", "5%", "50%"]
    ]


def test_protected_containers_are_left_alone_and_named() -> None:
    docker = FakeDocker([container("api-1", labels={"chaosrunner.protect": "true"})])
    with pytest.raises(PlanRefused, match=r"off limits: api-1: protected"):
        latency(docker).plan(request_for(shaping.LatencyParams(delay="100ms")))


def test_a_selector_matching_nothing_is_refused() -> None:
    with pytest.raises(PlanRefused, match="matched no running container"):
        latency().plan(request_for(shaping.LatencyParams(delay="100ms"), name="nothing-*"))


def test_the_blast_radius_maximum_holds() -> None:
    docker = FakeDocker([container("api-1"), container("api-2")])
    request = request_for(shaping.LatencyParams(delay="100ms"))
    request = FaultRequest(
        **{**dict(request), "blast_radius": BlastRadius(mode=BlastRadiusMode.ALL, maximum=1)}
    )
    with pytest.raises(PlanRefused, match="above the blast radius maximum of 1"):
        latency(docker).plan(request)


class Recorder:
    """Stands in for running host commands; answers ``tc qdisc show`` with ``shown``."""

    def __init__(self, shown: str = "") -> None:
        self.commands: list[list[str]] = []
        self.shown = shown

    def __call__(self, argv: list[str], **_: object) -> str:
        self.commands.append(argv)
        return self.shown if argv[-4:-1] == ["qdisc", "show", "dev"] else ""


def netem_plan() -> tuple[shaping.DockerNetworkLatency, FaultPlan]:
    fault = latency()
    return fault, fault.plan(request_for(shaping.LatencyParams(delay="100ms")))


def test_netem_inject_runs_the_commands_in_the_target_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(shaping.redirect, "run_checked", recorder)
    monkeypatch.setattr(shaping.NetworkShaping, "arm_watchdog", lambda self, record: dict(record))
    fault, plan = netem_plan()
    fault.inject(plan)
    pid = str(os.getpid())
    tc_add = ["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem", "delay", "100ms"]
    assert recorder.commands == [["nsenter", "-t", pid, "-n", *tc_add]]


@pytest.mark.parametrize(
    ("shown", "deleted"),
    [
        ("qdisc netem 1: root refcnt 2 limit 1000 delay 100ms\n", True),
        ("qdisc noqueue 0: root refcnt 2\n", False),
    ],
)
def test_netem_revert_deletes_only_our_qdisc(
    monkeypatch: pytest.MonkeyPatch, shown: str, deleted: bool
) -> None:
    recorder = Recorder(shown)
    monkeypatch.setattr(shaping.redirect, "run_checked", recorder)
    fault, plan = netem_plan()
    assert fault.check(plan.revert_record) is deleted
    recorder.commands.clear()
    fault.revert(plan.revert_record)
    pid = str(os.getpid())
    expected = [["nsenter", "-t", pid, "-n", "tc", "qdisc", "show", "dev", "eth0"]]
    if deleted:
        expected.append(["nsenter", "-t", pid, "-n", "tc", "qdisc", "del", "dev", "eth0", "root"])
    assert recorder.commands == expected


def test_a_restarted_container_is_not_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder("qdisc netem 1: root\n")
    monkeypatch.setattr(shaping.redirect, "run_checked", recorder)
    monkeypatch.setattr(shaping.NetworkShaping, "arm_watchdog", lambda self, record: dict(record))
    fault, plan = netem_plan()
    record = {**plan.revert_record}
    record["containers"] = [{**record["containers"][0], "netns_inode": 1}]  # another namespace now
    with pytest.raises(Exception, match="no longer in the planned network namespace"):
        fault.inject(plan.model_copy(update={"revert_record": record}))
    fault.revert(record)
    assert not fault.check(record)
    assert recorder.commands == []


@pytest.mark.parametrize(
    "bad",
    [
        {"delay": "0s"},
        {"delay": "2m"},
        {"delay": "100ms", "ports": [0]},
        {"delay": "100ms", "destinations": ["127.0.0.1"]},
        {"delay": "100ms", "destinations": ["db.internal"]},
        {"delay": "100ms", "device": "eth0; reboot"},
        {"delay": "100ms", "mechanism": "ebpf"},
    ],
)
def test_invalid_latency_params_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        shaping.LatencyParams(**bad)


def test_ports_are_deduplicated_and_sorted() -> None:
    assert shaping.LatencyParams(delay="1s", ports=[443, 80, 443]).ports == [80, 443]


def test_a_container_in_another_container_s_namespace_is_unsuitable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real _unsuitable
    from chaosrunner.faults.docker import hostaccess

    monkeypatch.setattr(hostaccess, "host_process_problem", lambda c: None)
    monkeypatch.setattr(hostaccess, "shares_host_network", lambda c: False)
    sidecar = container("sidecar", network_mode="container:api-1")
    assert "api-1's network namespace" in (shaping._unsuitable(sidecar) or "")
    assert "paused" in (shaping._unsuitable(container("api-1", paused=True)) or "")
    assert shaping._unsuitable(container("api-1")) is None
    monkeypatch.setattr(hostaccess, "shares_host_network", lambda c: True)
    assert "host's network namespace" in (shaping._unsuitable(container("api-1")) or "")
