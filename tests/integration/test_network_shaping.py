"""docker.network-latency / -loss on real containers, with an unmodified client inside one.

A server container answers TCP echoes on two ports; a client container runs a
plain Python socket program that knows nothing of chaosrunner and reports its
round-trip times. The fault goes on the client's egress; the client must see
the added latency (or the lost connections) on the chosen port only, and after
revert its namespace must hold no chaosrunner rule and no proxy.

netem cannot run on this machine (no sch_netem): the test checks the refusal
there and runs netem for real wherever the kernel has it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.errors import EnvironmentProblem
from chaosrunner.faults import netem
from chaosrunner.faults.base import FaultRequest, RevertRecord
from chaosrunner.faults.docker.selection import ContainerSelector
from chaosrunner.faults.docker_network_shaping import (
    DockerNetworkLatency,
    DockerNetworkLoss,
    LatencyParams,
    LossParams,
    NetworkShaping,
    ShapingParams,
)
from chaosrunner.faults.holder import HolderRecord, is_alive
from tests.support.injector import inject_and_die

REPO = Path(__file__).resolve().parents[2]
SHAPED, UNSHAPED = 7007, 7008

ECHO_SERVER = """
import socket, threading
def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
def serve(port):
    server = socket.create_server(("0.0.0.0", port))
    while True:
        threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()
threading.Thread(target=serve, args=(7008,), daemon=True).start()
serve(7007)
"""

CLIENT = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
result = {"rtt": [], "failed": 0}
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.perf_counter()
            conn.sendall(b"ping")
            if conn.recv(4) != b"ping":
                raise OSError("short echo")
            result["rtt"].append(time.perf_counter() - started)
    except OSError:
        result["failed"] += 1
print(json.dumps(result))
"""


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))


@dataclass
class Pair:
    client: Any
    server_ip: str

    @property
    def pid(self) -> int:
        self.client.reload()
        return int(self.client.attrs["State"]["Pid"])

    def measure(self, port: int = SHAPED, count: int = 20) -> dict[str, Any]:
        """Round trips of the unmodified client: one new connection per echo."""
        exit_code, output = self.client.exec_run(
            ["python3", "-c", CLIENT, self.server_ip, str(port), str(count)]
        )
        assert exit_code == 0, output
        return json.loads(output)

    def median_rtt(self, port: int = SHAPED) -> float:
        result = self.measure(port)
        assert result["failed"] == 0, result
        return statistics.median(result["rtt"])

    def nat_rules(self) -> str:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-n", "iptables-save", "-t", "nat"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def listeners(self) -> str:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-n", "ss", "-Htln"], capture_output=True, text=True, check=True
        ).stdout


@pytest.fixture
def pair(
    docker_client: Any, test_image: str, test_labels: dict[str, str], unique_name: str
) -> Iterator[Pair]:
    server = docker_client.containers.run(
        test_image,
        ["python3", "-c", ECHO_SERVER],
        name=f"{unique_name}-server",
        labels=test_labels,
        detach=True,
    )
    client = docker_client.containers.run(
        test_image, ["sleep", "600"], name=f"{unique_name}-client", labels=test_labels, detach=True
    )
    server.reload()
    pair = Pair(client, server.attrs["NetworkSettings"]["IPAddress"])
    deadline = time.monotonic() + 20
    while pair.measure(count=1)["failed"]:
        assert time.monotonic() < deadline, "the echo server did not come up"
        time.sleep(0.2)
    yield pair


def request_for(pair: Pair, params: ShapingParams, name: str, seconds: float = 60) -> FaultRequest:
    return FaultRequest(
        run_id=f"it{os.getpid()}",
        name=name,
        params=params,
        selector=ContainerSelector(name=pair.client.name),
        duration=timedelta(seconds=seconds),
    )


def assert_nothing_left(fault: NetworkShaping, record: RevertRecord, pair: Pair) -> None:
    assert not fault.check(record)
    assert "chaosrunner" not in pair.nat_rules()
    assert pair.listeners().strip() == "", "a proxy still listens in the container's namespace"
    for container in record["containers"]:
        assert not is_alive(HolderRecord.from_dict(container["holder"]))


def test_an_unmodified_client_sees_100ms_on_the_shaped_port_only(pair: Pair) -> None:
    baseline = pair.median_rtt()
    fault = DockerNetworkLatency()
    params = LatencyParams(delay="100ms", mechanism="proxy", ports=[SHAPED])
    plan = fault.plan(request_for(pair, params, "slow-echo"))
    assert "through the fault proxy (TCP to ports 7007)" in plan.summary
    record = fault.inject(plan)
    try:
        assert fault.check(record)
        assert plan.revert_record["comment"] in pair.nat_rules()
        added = pair.median_rtt() - baseline
        assert 0.090 <= added <= 0.110, f"the client saw {added * 1000:.1f} ms added, wanted 100 ms ± 10 %"
        assert pair.median_rtt(UNSHAPED) < 0.02  # another port of the same server is untouched
    finally:
        fault.revert(record)
    assert_nothing_left(fault, record, pair)
    assert pair.median_rtt() < baseline + 0.02
    fault.revert(record)  # again: a no-op
    assert_nothing_left(fault, record, pair)


def test_loss_by_proxy_resets_new_connections_until_reverted(pair: Pair) -> None:
    fault = DockerNetworkLoss()
    params = LossParams(percent=100, mechanism="proxy", ports=[SHAPED])
    record = fault.inject(fault.plan(request_for(pair, params, "lossy-echo")))
    try:
        lost = pair.measure(count=10)
        assert lost["failed"] == 10, lost
        assert pair.measure(UNSHAPED, 5)["failed"] == 0
    finally:
        fault.revert(record)
    assert pair.measure(count=10)["failed"] == 0
    assert_nothing_left(fault, record, pair)
    fault.revert(record)


def test_half_loss_by_proxy_loses_about_half(pair: Pair) -> None:
    fault = DockerNetworkLoss()
    params = LossParams(percent=50, mechanism="proxy", ports=[SHAPED])
    record = fault.inject(fault.plan(request_for(pair, params, "half-lossy")))
    try:
        failed = pair.measure(count=60)["failed"]
        assert 12 <= failed <= 48, f"{failed} of 60 connections lost at 50 %"
    finally:
        fault.revert(record)
    assert_nothing_left(fault, record, pair)


def test_netem_is_refused_without_kernel_support_and_works_with_it(pair: Pair) -> None:
    netem.forget_probes()
    missing = netem.missing_features(["netem"])
    fault = DockerNetworkLatency()
    params = LatencyParams(delay="100ms", mechanism="netem")
    if missing:  # this machine: no sch_netem
        with pytest.raises(EnvironmentProblem, match=r"sch_netem .*is missing"):
            fault.plan(request_for(pair, params, "netem-here"))
        auto = fault.plan(request_for(pair, LatencyParams(delay="100ms"), "auto-here"))
        assert auto.revert_record["mechanism"] == "proxy"
        return
    baseline = pair.median_rtt()
    record = fault.inject(fault.plan(request_for(pair, params, "netem-here")))
    try:
        assert fault.check(record)
        assert pair.median_rtt() - baseline > 0.09
    finally:
        fault.revert(record)
    assert not fault.check(record)
    assert pair.median_rtt() < baseline + 0.02
    fault.revert(record)


def test_the_proxy_holder_ends_and_cleans_up_by_itself_when_the_injector_is_killed(
    pair: Pair, tmp_path: Path
) -> None:
    record = inject_and_die(
        DockerNetworkLatency,
        run_id="dms",
        name="doomed",
        params={"delay": "100ms", "mechanism": "proxy", "ports": [7007], "deadman_grace": "1s"},
        selector={"name": pair.client.name},
        duration=3,
    )
    fault = DockerNetworkLatency()
    try:
        holder = HolderRecord.from_dict(record["containers"][0]["holder"])
        assert is_alive(holder), "the fault died with its injector"
        assert record["comment"] in pair.nat_rules()
        while is_alive(holder) and time.time() < holder.deadline + 5:
            time.sleep(0.1)
        assert not is_alive(holder), "the holder outlived its deadline"
        log = Path(holder.log).read_text()
        assert "removed 2 redirect rules" in log and "stopped (deadline)" in log
        assert "chaosrunner" not in pair.nat_rules()
        assert pair.listeners().strip() == ""
        assert pair.median_rtt() < 0.05
    finally:
        fault.revert(record)  # disarms the Docker watchdog; the rules are already gone
    assert_nothing_left(fault, record, pair)
