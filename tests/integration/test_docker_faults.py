"""Docker faults on the rig's real dockerd: inject, see the effect, revert, see it gone, revert again.

Every container and network is created with the test's labels (``test_labels``
removes them afterwards) and every injected fault is reverted at teardown even
when an assertion failed, so the suite runs twice in a row.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker.errors
import docker.types
import pytest

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius, Fault, FaultPlan, FaultRequest, RevertRecord
from chaosrunner.faults.connections import Connections, DockerConnection
from chaosrunner.faults.docker import network as docker_network
from chaosrunner.faults.docker.client import open_client
from chaosrunner.faults.docker.lifecycle import ContainerKill
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.registry import registry
from tests.support.cli import run_chaosrunner

SERVER = textwrap.dedent(
    """
    import socket, threading
    def serve(port):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(50)
        while True:
            connection, _ = listener.accept()
            connection.sendall(b"hello")
            connection.close()
    for port in (8080, 8081):
        threading.Thread(target=serve, args=(port,), daemon=True).start()
    threading.Event().wait()
    """
)

CONNECT = textwrap.dedent(
    """
    import socket, sys, time
    started = time.monotonic()
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).recv(5)
        outcome = "ok"
    except socket.timeout:
        outcome = "timeout"
    except OSError as error:
        outcome = type(error).__name__
    print(outcome, round(time.monotonic() - started, 3))
    """
)


@dataclass
class Faults:
    """Plans and injects faults against the rig; reverts whatever is left at teardown."""

    host: str
    run_id: str
    injected: list[tuple[Fault, RevertRecord]] = field(default_factory=list)

    def request(
        self,
        kind: str,
        selector: ContainerSelector,
        duration: float | None = 60,
        blast_radius: BlastRadius | None = None,
        **params: Any,
    ) -> tuple[Fault, FaultRequest]:
        fault_class = registry.get(kind)
        assert fault_class is not None
        request = FaultRequest(
            run_id=self.run_id,
            name=kind.split(".")[1],
            params=fault_class.Params(**params),
            selector=selector,
            blast_radius=blast_radius or BlastRadius(),
            connections=Connections(docker=DockerConnection(host=self.host)),
            duration=timedelta(seconds=duration) if duration is not None else None,
        )
        return fault_class(), request

    def plan(self, kind: str, selector: ContainerSelector, **kwargs: Any) -> tuple[Fault, FaultPlan]:
        fault, request = self.request(kind, selector, **kwargs)
        return fault, fault.plan(request)

    def inject(self, kind: str, selector: ContainerSelector, **kwargs: Any) -> tuple[Fault, RevertRecord]:
        fault, plan = self.plan(kind, selector, **kwargs)
        self.injected.append((fault, plan.revert_record))  # journaled before inject, like the engine
        record = fault.inject(plan)
        self.injected[-1] = (fault, record)
        return fault, record

    def revert_all(self) -> None:
        for fault, record in reversed(self.injected):
            try:
                fault.revert(record)
            except Exception as error:  # keep cleaning up the rest
                print(f"teardown revert of {record.get('fault')} failed: {error}")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def faults(rig_env: dict[str, str], unique_name: str, docker_client: Any) -> Iterator[Faults]:
    harness = Faults(host=rig_env["DOCKER_HOST"], run_id=unique_name)
    yield harness
    harness.revert_all()


@pytest.fixture
def start(docker_client: Any, test_image: str, test_labels: dict[str, str], unique_name: str) -> Any:
    """Run a container from the test image (removed with the test's labels)."""

    def run(
        suffix: str, command: list[str] | None = None, labels: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        return docker_client.containers.run(
            test_image,
            command or ["sleep", "600"],
            name=f"{unique_name}-{suffix}",
            labels={**test_labels, **(labels or {})},
            detach=True,
            **kw,
        )

    return run


def by_name(name: str) -> ContainerSelector:
    return ContainerSelector(name=name)


def state(container: Any) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs["State"])


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- lifecycle


def test_pause_freezes_the_container_and_revert_thaws_it(faults: Faults, start: Any) -> None:
    target = start("web")
    fault, record = faults.inject("docker.container-pause", by_name(target.name))
    assert state(target)["Paused"] is True
    with pytest.raises(docker.errors.APIError, match="is paused"):
        target.exec_run(["sh", "-c", "exit 0"])  # its processes are frozen
    assert fault.check(record)
    assert record["watchdog"]["pid"] > 0
    fault.revert(record)
    assert state(target)["Paused"] is False and state(target)["Running"] is True
    assert not fault.check(record)
    fault.revert(record)  # a second revert is a no-op
    assert state(target)["Running"] is True
    assert target.exec_run(["sh", "-c", "exit 0"]).exit_code == 0


def test_stop_then_revert_starts_it(faults: Faults, start: Any) -> None:
    target = start("web")
    fault, record = faults.inject("docker.container-stop", by_name(target.name), grace_period="1s")
    assert state(target)["Status"] == "exited"
    assert fault.check(record)
    fault.revert(record)
    assert state(target)["Status"] == "running"
    started_at = state(target)["StartedAt"]
    fault.revert(record)
    assert state(target)["StartedAt"] == started_at  # not restarted a second time
    assert not fault.check(record)


def test_kill_with_restart_policy_always_records_that_it_came_back(faults: Faults, start: Any) -> None:
    target = start("web", restart_policy={"Name": "always"})
    before = state(target)["StartedAt"]
    fault, record = faults.inject("docker.container-kill", by_name(target.name))
    entry = record["containers"][0]
    assert (entry["restart_policy"], entry["started_at"]) == ("always", before)
    assert isinstance(fault, ContainerKill)
    wait_for(lambda: state(target)["Running"] and state(target)["StartedAt"] != before, 15, "the comeback")
    (outcome,) = fault.outcome(record)
    assert outcome["came_back"] is True and outcome["came_back_by"] == "restart policy"
    assert outcome["restarts_by_docker"] == 1 and 0 < outcome["seconds_down"] < 15
    print(f"\nkill -> back by restart policy after {outcome['seconds_down']}s")
    assert not fault.check(record)
    came_back_at = state(target)["StartedAt"]
    fault.revert(record)
    fault.revert(record)
    assert state(target)["StartedAt"] == came_back_at  # revert started nothing


def test_kill_without_restart_policy_stays_down_until_revert(faults: Faults, start: Any) -> None:
    target = start("web")
    fault, record = faults.inject("docker.container-kill", by_name(target.name), signal="SIGKILL")
    time.sleep(1.0)
    assert state(target)["Running"] is False and fault.check(record)
    assert isinstance(fault, ContainerKill)
    assert fault.outcome(record)[0]["came_back"] is False
    fault.revert(record)
    assert state(target)["Running"] is True and not fault.check(record)
    assert fault.outcome(record)[0]["came_back_by"] == "a start (by hand or by revert)"
    fault.revert(record)


def test_a_run_journals_that_a_killed_container_came_back_by_its_restart_policy(
    start: Any, tmp_path: Path, rig_env: dict[str, str], prometheus_url: str
) -> None:
    target = start("web", restart_policy={"Name": "always"})
    scenario = tmp_path / "kill.yaml"
    scenario.write_text(
        json.dumps(
            {
                "metadata": {
                    "title": "kill comes back",
                    "owner": "t",
                    "expected_severity": "P3",
                    "hypothesis": "the restart policy brings it back",
                },
                "target": {"prometheus": prometheus_url, "docker": {"host": rig_env["DOCKER_HOST"]}},
                "faults": [
                    {
                        "name": "kill",
                        "kind": "docker.container-kill",
                        "selector": {"name": target.name},
                        "duration": "3s",
                    }
                ],
                "gameday": {"max_duration": "1m"},
            }
        )
    )
    done = run_chaosrunner(
        "run",
        "--plain",
        str(scenario),
        env={**os.environ, **rig_env, "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"aftermath of kill: {target.name} came back after" in done.stdout
    assert "(restart policy)" in done.stdout
    [run] = list((Path(os.environ["CHAOSRUNNER_STATE_DIR"]) / "runs").iterdir())
    events = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    types = [event["type"] for event in events if event.get("fault") == "kill"]
    assert types[-2:] == ["fault_reverted", "fault_outcome"]
    (aftermath,) = [event for event in events if event["type"] == "fault_outcome"]
    (came_back,) = aftermath["targets"]
    assert came_back["came_back"] is True and came_back["came_back_by"] == "restart policy"
    assert 0 < came_back["seconds_down"] < 3


def test_plan_targets_names_what_a_run_would_pause_and_touches_nothing(
    start: Any, tmp_path: Path, rig_env: dict[str, str], unique_name: str
) -> None:
    web = [start(f"web-{index}", labels={"tier": unique_name}) for index in range(3)]
    scenario = tmp_path / "pause.yaml"
    fault = {"name": "freeze", "kind": "docker.container-pause", "duration": "30s"}
    document = {
        "metadata": {"title": "t", "owner": "t", "expected_severity": "P3", "hypothesis": "h"},
        "target": {"docker": {"host": rig_env["DOCKER_HOST"]}},
        "faults": [{**fault, "selector": {"labels": {"tier": unique_name}}, "blast_radius": {"mode": "all"}}],
    }

    def plan(**overrides: Any) -> subprocess.CompletedProcess[str]:
        scenario.write_text(json.dumps({**document, **overrides}))
        return run_chaosrunner("plan", "--targets", "--json", str(scenario))

    planned = plan()
    assert planned.returncode == 0, planned.stderr
    (resolved,) = json.loads(planned.stdout)["targets"]
    assert sorted(target["name"] for target in resolved["targets"]) == sorted(c.name for c in web)
    assert all(state(container)["Paused"] is False for container in web)  # a dry run

    too_wide = plan(faults=[{**document["faults"][0], "blast_radius": {"mode": "all", "maximum": 2}}])
    assert too_wide.returncode == 2
    assert "maximum" in json.loads(too_wide.stdout)["targets"][0]["refused"]
    nothing = plan(faults=[{**fault, "selector": {"labels": {"tier": f"{unique_name}-none"}}}])
    assert nothing.returncode == 2
    assert "matched no running container" in json.loads(nothing.stdout)["targets"][0]["refused"]


def test_kill_via_api_is_a_manual_stop_that_no_policy_undoes_so_revert_does(
    faults: Faults, start: Any
) -> None:
    target = start("web", restart_policy={"Name": "always"})
    fault, record = faults.inject("docker.container-kill", by_name(target.name), via="api")
    time.sleep(1.5)
    assert state(target)["Running"] is False  # Docker honours a manual kill over `always`
    fault.revert(record)
    assert state(target)["Running"] is True


def test_restart_gives_a_new_start_time(faults: Faults, start: Any) -> None:
    target = start("web")
    before = state(target)["StartedAt"]
    fault, record = faults.inject("docker.container-restart", by_name(target.name), grace_period="1s")
    assert state(target)["Running"] is True and state(target)["StartedAt"] != before
    assert "watchdog" not in record and not fault.check(record)
    fault.revert(record)


# ---------------------------------------------------------------- safety


def test_a_protected_container_is_refused_and_untouched(faults: Faults, start: Any) -> None:
    target = start("db", labels={"chaosrunner.protect": "true"})
    with pytest.raises(PlanRefused, match=r"protected \(label chaosrunner.protect=true\)"):
        faults.plan("docker.container-pause", by_name(target.name))
    assert state(target)["Running"] is True and state(target)["Paused"] is False


def test_a_selector_that_matches_nothing_is_refused(faults: Faults, unique_name: str) -> None:
    with pytest.raises(PlanRefused, match="matched no running container"):
        faults.plan("docker.container-stop", by_name(f"{unique_name}-nothing-*"))


def test_the_blast_radius_maximum_is_enforced(faults: Faults, start: Any, unique_name: str) -> None:
    for index in range(3):
        start(f"web-{index}")
    selector = ContainerSelector(name=f"{unique_name}-web-*")
    with pytest.raises(PlanRefused, match="above the blast radius maximum of 2"):
        faults.plan("docker.container-kill", selector, blast_radius=BlastRadius(mode="all", maximum=2))
    _, plan = faults.plan("docker.container-kill", selector, blast_radius=BlastRadius(mode="count", count=2))
    assert len(plan.targets) == 2


def test_the_watchdog_thaws_a_pause_after_the_injecting_process_is_killed(
    rig_env: dict[str, str], start: Any, unique_name: str, tmp_path: Path
) -> None:
    target = start("web")
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from datetime import timedelta
        from chaosrunner.faults.base import FaultRequest
        from chaosrunner.faults.connections import Connections, DockerConnection
        from chaosrunner.faults.docker.lifecycle import ContainerPause
        from chaosrunner.faults.docker.selection import ContainerSelector
        fault = ContainerPause()
        request = FaultRequest(
            run_id={unique_name!r}, name="pause", params=ContainerPause.Params(deadman_grace="1s"),
            selector=ContainerSelector(name={target.name!r}), duration=timedelta(seconds=2),
            connections=Connections(docker=DockerConnection(host={rig_env["DOCKER_HOST"]!r})),
        )
        record = fault.inject(fault.plan(request))
        print(json.dumps(record), flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        record = json.loads(child.stdout.readline())
        assert state(target)["Paused"] is True
        child.kill()  # the injecting side dies abruptly: nobody will revert
        child.wait()
        assert state(target)["Paused"] is True
        waited = wait_for(lambda: not state(target)["Paused"], 20, "the watchdog to unpause")
        deadline = record["watchdog"]["deadline"]
        print(f"\nwatchdog unpaused {time.time() - deadline:+.2f}s from its deadline")
        assert abs(time.time() - deadline) < 3 and waited > 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# ---------------------------------------------------------------- network


@pytest.fixture
def network(docker_client: Any, test_labels: dict[str, str], unique_name: str) -> Any:
    third = zlib.crc32(unique_name.encode()) % 200 + 20
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=f"10.213.{third}.0/24")])
    created = docker_client.networks.create(unique_name, labels=test_labels, ipam=ipam)
    created.subnet_prefix = f"10.213.{third}"
    return created


def resolve_from(container: Any, name: str) -> str:
    result = container.exec_run(["python3", "-c", f"import socket; print(socket.gethostbyname({name!r}))"])
    return result.output.decode().strip() if result.exit_code == 0 else "unresolvable"


def test_disconnect_cuts_the_network_and_revert_restores_aliases_and_static_ip(
    faults: Faults, start: Any, network: Any
) -> None:
    target = start("api")
    peer = start("peer", network=network.name)
    static_ip = f"{network.subnet_prefix}.50"
    network.connect(target, aliases=["checkout", "api"], ipv4_address=static_ip)
    assert resolve_from(peer, "checkout") == static_ip

    fault, record = faults.inject("docker.network-disconnect", by_name(target.name), network=network.name)
    attachment = record["containers"][0]["attachment"]
    assert sorted(attachment["aliases"]) == ["api", "checkout"] and attachment["static_ipv4"] == static_ip
    target.reload()
    assert network.name not in target.attrs["NetworkSettings"]["Networks"]
    assert resolve_from(peer, "checkout") == "unresolvable"
    assert fault.check(record)

    fault.revert(record)
    target.reload()
    attached = target.attrs["NetworkSettings"]["Networks"][network.name]
    assert {"api", "checkout"} <= set(attached["Aliases"])
    assert attached["IPAddress"] == static_ip and attached["IPAMConfig"]["IPv4Address"] == static_ip
    assert resolve_from(peer, "checkout") == static_ip
    assert not fault.check(record)
    fault.revert(record)  # no-op: already connected


def connect_from(container: Any, host: str, port: int) -> tuple[str, float]:
    result = container.exec_run(["python3", "-c", CONNECT, host, str(port)])
    outcome, seconds = result.output.decode().split()
    return outcome, float(seconds)


def our_rules(container: Any) -> list[str]:
    container.reload()
    pid = str(container.attrs["State"]["Pid"])
    listing = subprocess.run(
        ["nsenter", "--target", pid, "--net", "--", "iptables", "-S", "OUTPUT"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in listing.splitlines() if "chaosrunner:" in line]


def test_blackhole_drops_one_port_of_a_real_server_and_revert_deletes_only_our_rules(
    faults: Faults, start: Any, network: Any
) -> None:
    server = start("server", ["python3", "-c", SERVER], network=network.name)
    client = start("client", network=network.name)
    wait_for(lambda: connect_from(client, server.name, 8080)[0] == "ok", 15, "the server to listen")

    fault, record = faults.inject(
        "docker.network-blackhole", by_name(client.name), destination=server.name, ports=[8080]
    )
    blocked, waited = connect_from(client, server.name, 8080)
    assert (blocked, waited >= 1.9) == ("timeout", True)
    assert connect_from(client, server.name, 8081)[0] == "ok"  # another port still works
    assert connect_from(server, client.name, 8080)[0] != "timeout"  # the server's own traffic is untouched
    assert len(our_rules(client)) == 1 and fault.check(record)
    print(f"\nblackholed connect gave up after {waited}s")

    fault.revert(record)
    assert our_rules(client) == [] and not fault.check(record)
    outcome, seconds = connect_from(client, server.name, 8080)
    assert outcome == "ok" and seconds < 1
    fault.revert(record)  # no-op


def test_blackhole_reject_fails_fast_and_a_sweep_finds_leftovers(
    faults: Faults, start: Any, network: Any, unique_name: str
) -> None:
    server = start("server", ["python3", "-c", SERVER], network=network.name)
    client = start("client", network=network.name)
    wait_for(lambda: connect_from(client, server.name, 8081)[0] == "ok", 15, "the server to listen")
    fault, record = faults.inject(
        "docker.network-blackhole", by_name(client.name), destination=server.name, action="reject"
    )
    outcome, seconds = connect_from(client, server.name, 8081)
    assert outcome == "ConnectionRefusedError" and seconds < 1
    api = open_client(faults.host)
    try:
        swept = docker_network.sweep(api, run_id=unique_name)
    finally:
        api.close()
    assert [entry["name"] for entry in swept if entry.get("deleted")] == [client.name]
    assert our_rules(client) == [] and not fault.check(record)
    fault.revert(record)


def test_blackhole_rules_vanish_by_their_deadline_without_a_revert(faults: Faults, start: Any) -> None:
    client = start("client")
    fault, record = faults.inject(
        "docker.network-blackhole",
        by_name(client.name),
        duration=1,
        destination="192.0.2.1",
        ports=[80],
        deadman_grace="1s",
    )
    assert len(our_rules(client)) == 1
    waited = wait_for(lambda: our_rules(client) == [], 15, "the watchdog to delete the rule")
    assert waited < 6 and not fault.check(record)


def test_blackhole_refuses_a_host_network_container(faults: Faults, start: Any) -> None:
    target = start("hostnet", network_mode="host")
    with pytest.raises(PlanRefused, match="host's network namespace"):
        faults.plan("docker.network-blackhole", by_name(target.name), destination="192.0.2.1")


# ---------------------------------------------------------------- stress


def cpu_cores(container: Any) -> float:
    """CPU cores the container used over the last second, as `docker stats` computes it."""
    stats = container.stats(stream=False)
    cpu, previous = stats["cpu_stats"], stats["precpu_stats"]
    used = cpu["cpu_usage"]["total_usage"] - previous["cpu_usage"]["total_usage"]
    system = cpu["system_cpu_usage"] - previous.get("system_cpu_usage", 0)
    return used / system * cpu.get("online_cpus", 1) if system > 0 else 0.0


def memory_mib(container: Any) -> float:
    memory = container.stats(stream=False)["memory_stats"]
    resident = memory.get("stats", {}).get("total_rss", memory["usage"])
    return float(resident) / (1 << 20)


def test_cpu_stress_burns_cpu_in_the_container_and_revert_stops_it(faults: Faults, start: Any) -> None:
    target = start("busy")
    idle = cpu_cores(target)
    fault, record = faults.inject("docker.cpu-stress", by_name(target.name), workers=1, load=100)
    time.sleep(1.0)
    busy = max(cpu_cores(target) for _ in range(2))
    print(f"\ncpu-stress: {idle:.2f} cores idle, {busy:.2f} under stress (1 worker; shared 2-CPU host)")
    # One busy worker is a whole core on an idle host; this rig is shared, so ask for less.
    assert idle < 0.1 and busy > 0.35
    assert fault.check(record)
    fault.revert(record)
    assert not fault.check(record)
    time.sleep(1.0)
    after = cpu_cores(target)
    print(f"cpu-stress: {after:.2f} cores after revert")
    assert after < 0.1
    fault.revert(record)


def test_cpu_stress_is_bounded_by_the_containers_cpu_quota(faults: Faults, start: Any) -> None:
    # The stressor runs in the container's cgroup: its quota throttles it, like the app's own load.
    target = start("capped", nano_cpus=250_000_000)
    throttled_before = target.stats(stream=False)["cpu_stats"]["throttling_data"]["throttled_periods"]
    faults.inject("docker.cpu-stress", by_name(target.name), workers=2, load=100)
    time.sleep(1.0)
    stats = target.stats(stream=False)
    cores = cpu_cores(target)
    throttled = stats["cpu_stats"]["throttling_data"]["throttled_periods"] - throttled_before
    print(f"\ncpu-stress under a 0.25 CPU quota: {cores:.2f} cores, {throttled} throttled periods")
    assert 0.1 < cores < 0.35 and throttled > 5


def test_cpu_stress_ends_by_itself_at_its_deadline(faults: Faults, start: Any) -> None:
    target = start("busy")
    fault, record = faults.inject("docker.cpu-stress", by_name(target.name), duration=1, deadman_grace="1s")
    assert fault.check(record)
    waited = wait_for(lambda: not fault.check(record), 15, "the stressor's own deadline")
    assert waited < 5


def test_memory_stress_grows_resident_memory_and_revert_frees_it(faults: Faults, start: Any) -> None:
    target = start("hungry")
    before = memory_mib(target)
    fault, record = faults.inject("docker.memory-stress", by_name(target.name), megabytes=128)
    during = memory_mib(target)
    print(f"\nmemory-stress: {before:.1f} MiB before, {during:.1f} MiB during")
    assert during - before >= 0.9 * 128
    assert fault.check(record)
    fault.revert(record)
    after = memory_mib(target)
    print(f"memory-stress: {after:.1f} MiB after revert")
    assert after - before < 16 and not fault.check(record)
    fault.revert(record)


def test_stress_is_refused_in_a_container_without_python(
    faults: Faults, docker_client: Any, start: Any
) -> None:
    # The rig image always has python; a container whose PATH hides it stands in for a slim image.
    target = start("slim", ["/usr/bin/sleep", "600"], environment={"PATH": "/nonexistent"})
    with pytest.raises(PlanRefused, match="has none"):
        faults.plan("docker.cpu-stress", by_name(target.name))


def test_revert_is_safe_from_another_process(faults: Faults, start: Any) -> None:
    target = start("web")
    _, record = faults.inject("docker.container-pause", by_name(target.name))
    watchdog = record["watchdog"]["pid"]
    assert state(target)["Paused"] is True and _alive(watchdog)
    script = (
        "import json, sys; from chaosrunner.faults.docker.lifecycle import ContainerPause; "
        "ContainerPause().revert(json.loads(sys.argv[1]))"
    )
    # A watchdog that gets no CPU (SIGSTOP: a signal stays pending until SIGCONT): the revert
    # only signals it (watchdog.disarm) and does not wait for it to exit, so it must finish anyway.
    os.kill(watchdog, signal.SIGSTOP)
    try:
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(record)], check=True, env=dict(os.environ), timeout=60
        )
        assert state(target)["Paused"] is False  # the revert itself unpaused it
        assert _alive(watchdog)  # not waited for: it could not even have run yet
    finally:
        os.kill(watchdog, signal.SIGCONT)
    # Given the CPU, it stands down by itself - long before its deadline, a minute away -
    # without touching the container the revert left running.
    wait_for(lambda: not _alive(watchdog), 30, "the disarmed watchdog to exit")
    assert state(target)["Paused"] is False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] not in "ZX"


# ---------------------------------------------------------------- the shipped scenarios


def scenario_request(
    path: str, selector_labels: dict[str, str], faults: Faults
) -> tuple[Fault, FaultRequest]:
    """The scenario's first fault as the engine would request it, fenced to this test's containers."""
    from chaosrunner.scenario.loader import load_scenario

    scenario = load_scenario(Path(__file__).resolve().parents[2] / path)
    spec = scenario.faults[0]
    assert isinstance(spec.selector, ContainerSelector)
    # The scenario's selector AND this test's label: never another engineer's checkout containers.
    selector = spec.selector.model_copy(update={"labels": {**spec.selector.labels, **selector_labels}})
    fault_class = registry.get(spec.kind)
    assert fault_class is not None
    request = FaultRequest(
        run_id=faults.run_id,
        name=spec.name,
        params=spec.params,
        selector=selector,
        blast_radius=spec.blast_radius,
        connections=Connections(docker=DockerConnection(host=faults.host)),
        duration=spec.duration,
    )
    return fault_class(), request


def test_the_container_pause_scenario_pauses_one_checkout_replica(
    faults: Faults, start: Any, test_labels: dict[str, str]
) -> None:
    compose = {"com.docker.compose.service": "checkout-api", "tier": "web"}
    replicas = [start(f"checkout-api-{index}", labels=compose) for index in range(2)]
    start("checkout-api-protected", labels={**compose, "chaosrunner.protect": "true"})
    fault, request = scenario_request("scenarios/container-pause.yaml", test_labels, faults)
    plan = fault.plan(request)
    assert len(plan.targets) == 1  # blast radius: one, at most 1
    assert "checkout-api-protected protected" in plan.summary  # matched, named, left alone
    record = fault.inject(plan)
    faults.injected.append((fault, record))
    assert sorted(state(replica)["Paused"] for replica in replicas) == [False, True]
    fault.revert(record)
    assert [state(replica)["Paused"] for replica in replicas] == [False, False]


def test_the_network_blackhole_scenario_cuts_checkout_off_db_5432(
    faults: Faults, start: Any, network: Any, test_labels: dict[str, str], unique_name: str
) -> None:
    database = start("database", ["python3", "-c", SERVER], network=network.name)
    network.disconnect(database)
    network.connect(database, aliases=["db"])  # how Compose names a service on its network
    api = start("api", network=network.name)
    api.rename(f"checkout-api-{unique_name}")
    wait_for(lambda: connect_from(api, "db", 8080)[0] == "ok", 15, "the database stand-in to listen")
    fault, request = scenario_request("scenarios/network-blackhole.yaml", test_labels, faults)
    request = request.model_copy(
        update={"params": request.params.model_copy(update={"ports": [8080]})}  # our stand-in's port
    )
    plan = fault.plan(request)
    database.reload()
    db_ip = database.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    assert f"({db_ip}/32)" in plan.summary
    record = fault.inject(plan)
    faults.injected.append((fault, record))
    assert connect_from(api, "db", 8080)[0] == "timeout"
    assert connect_from(api, "db", 8081)[0] == "ok"
    fault.revert(record)
    assert connect_from(api, "db", 8080)[0] == "ok"
