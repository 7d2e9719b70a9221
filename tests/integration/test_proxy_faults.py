"""The proxy.* kinds against the rig's real PostgreSQL, through real holder processes.

Each test places the proxy between a client (psycopg, urllib, a raw socket)
and a dependency, observes the toxic's effect, reverts, observes it gone (the
proxy port closed, the dependency untouched) and reverts again as a no-op.
The dead-man's-switch test kills the injecting process with SIGKILL and
watches the holder end the fault by itself at its deadline.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chaosrunner.errors import FaultError
from chaosrunner.faults.base import Fault, FaultParams, FaultRequest, RevertRecord
from chaosrunner.faults.holder import HolderRecord, is_alive
from chaosrunner.faults.proxy import control
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
from tests.support.cli import run_chaosrunner
from tests.support.injector import inject_and_die

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return tmp_path / "state"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_port(dsn: str, port: int) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))


def pg_port(dsn: str) -> int:
    return int(urllib.parse.urlsplit(dsn).port or 5432)


def query_times(dsn: str, count: int = 30) -> list[float]:
    """Seconds per ``select 1`` round trip on one connection (autocommit: one round trip each)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute("select 1")  # warm up: statement, buffers
        times = []
        for _ in range(count):
            started = time.perf_counter()
            conn.execute("select 1").fetchone()
            times.append(time.perf_counter() - started)
        return times


class Injected:
    """One fault's life in a test: inject, then revert at the end whatever happens."""

    def __init__(self, fault: Fault, params: FaultParams, name: str, duration: float = 60) -> None:
        self.fault = fault
        request = FaultRequest(
            run_id=f"it{os.getpid()}", name=name, params=params, duration=timedelta(seconds=duration)
        )
        self.plan = fault.plan(request)
        self.record: RevertRecord = self.plan.revert_record

    def __enter__(self) -> Injected:
        self.record = self.fault.inject(self.plan)
        return self

    def __exit__(self, *exc: object) -> None:
        self.fault.revert(self.record)

    @property
    def control_dir(self) -> Path:
        return Path(self.record["control_dir"])


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def assert_reverted_twice(injected: Injected, port: int) -> None:
    injected.fault.revert(injected.record)
    assert not injected.fault.check(injected.record)
    assert refuses(port), "the proxy still listens after revert"
    assert not Path(injected.record["control_dir"]).exists()
    injected.fault.revert(injected.record)  # a second revert is a no-op
    assert not injected.fault.check(injected.record)


def test_latency_of_100ms_is_added_within_10_percent(postgres_superuser_dsn: str) -> None:
    port = free_port()
    upstream = f"127.0.0.1:{pg_port(postgres_superuser_dsn)}"
    baseline = statistics.median(query_times(postgres_superuser_dsn))
    params = LatencyParams(listen=f"127.0.0.1:{port}", upstream=upstream, delay="100ms")
    with Injected(ProxyLatency(), params, "latency") as injected:
        assert injected.fault.check(injected.record)
        proxied = query_times(with_port(postgres_superuser_dsn, port))
        added = statistics.median(proxied) - baseline
        assert 0.090 <= added <= 0.110, f"median added latency {added * 1000:.1f} ms, wanted 100 ms ± 10 %"
    assert_reverted_twice(injected, port)
    assert statistics.median(query_times(postgres_superuser_dsn, 10)) < 0.05  # the dependency is fine


def test_toxics_switch_off_and_on_during_a_run(postgres_superuser_dsn: str) -> None:
    port = free_port()
    upstream = f"127.0.0.1:{pg_port(postgres_superuser_dsn)}"
    params = LatencyParams(listen=f"127.0.0.1:{port}", upstream=upstream, delay="100ms", enabled=False)
    dsn = with_port(postgres_superuser_dsn, port)
    with Injected(ProxyLatency(), params, "switch") as injected:
        assert statistics.median(query_times(dsn, 5)) < 0.05  # planned switched off
        control.switch(injected.control_dir, "latency", True)
        assert 0.09 < statistics.median(query_times(dsn, 5)) < 0.13
        control.switch(injected.control_dir, "latency", False)
        assert statistics.median(query_times(dsn, 5)) < 0.05
        status = control.read_status(injected.control_dir)
        assert status is not None and status.generation == 2 and status.counts["connections"] >= 2
    assert_reverted_twice(injected, port)


def test_reset_refuses_the_database_to_its_clients(postgres_superuser_dsn: str) -> None:
    port = free_port()
    params = ResetParams(listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{pg_port(postgres_superuser_dsn)}")
    with Injected(ProxyReset(), params, "reset") as injected:
        for _ in range(3):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(with_port(postgres_superuser_dsn, port), connect_timeout=5)
        control.switch(injected.control_dir, "reset", False)
        with psycopg.connect(with_port(postgres_superuser_dsn, port), connect_timeout=5) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert_reverted_twice(injected, port)


def test_timeout_accepts_and_never_answers_until_switched_off(postgres_superuser_dsn: str) -> None:
    port = free_port()
    params = TimeoutParams(
        listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{pg_port(postgres_superuser_dsn)}"
    )
    dsn = with_port(postgres_superuser_dsn, port)
    with Injected(ProxyTimeout(), params, "stall") as injected:
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            psycopg.connect(dsn, connect_timeout=2)
        assert time.monotonic() - started >= 1.9  # it waited: the connection was accepted, never answered
        control.switch(injected.control_dir, "timeout", False)
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            assert conn.execute("select 2").fetchone() == (2,)
    assert_reverted_twice(injected, port)


def test_bandwidth_limits_a_large_result(postgres_superuser_dsn: str) -> None:
    port = free_port()
    params = BandwidthParams(
        listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{pg_port(postgres_superuser_dsn)}", rate=200
    )
    with Injected(ProxyBandwidth(), params, "narrow"):
        with psycopg.connect(with_port(postgres_superuser_dsn, port), autocommit=True) as conn:
            started = time.monotonic()
            (text,) = conn.execute("select repeat('x', 300000)").fetchone()  # type: ignore[misc]
            elapsed = time.monotonic() - started
        assert len(text) == 300000
        assert 1.2 < elapsed < 3.0, f"300 kB at 200 kB/s took {elapsed:.2f}s"


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_http_error_answers_a_share_of_requests_and_passes_the_rest(web_upstream: int) -> None:
    port = free_port()
    params = HttpErrorParams(
        listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{web_upstream}", status=503, percent=30
    )
    with Injected(ProxyHttpError(), params, "flaky-api") as injected:
        answers = [get(f"http://127.0.0.1:{port}/") for _ in range(200)]
        errors = [body for status, body in answers if status == 503]
        assert {status for status, _ in answers} == {200, 503}
        assert all(body == b"ok" for status, body in answers if status == 200)
        assert 35 <= len(errors) <= 90, f"{len(errors)} of 200 answered 503, wanted about 60"
        status = control.read_status(injected.control_dir)
        assert status is not None
    assert_reverted_twice(injected, port)
    assert get(f"http://127.0.0.1:{web_upstream}/") == (200, b"ok")


def test_the_holder_ends_the_fault_by_itself_when_the_injector_is_killed(
    postgres_superuser_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    upstream = f"127.0.0.1:{pg_port(postgres_superuser_dsn)}"
    params = {"listen": f"127.0.0.1:{port}", "upstream": upstream, "delay": "100ms", "grace": "1s"}
    record = inject_and_die(ProxyLatency, run_id="dms", name="doomed", params=params, duration=3)
    holder = HolderRecord.from_dict(record["holder"])
    # The injector is gone; the fault is not.
    assert is_alive(holder)
    assert statistics.median(query_times(with_port(postgres_superuser_dsn, port), 3)) > 0.09
    # It ends by its deadline (3 s duration + 1 s grace), with nobody asking.
    while is_alive(holder) and time.time() < holder.deadline + 5:
        time.sleep(0.1)
    assert not is_alive(holder), "the holder outlived its deadline"
    assert time.time() - holder.deadline < 5
    assert refuses(port)
    assert "stopped (deadline)" in Path(holder.log).read_text()
    fault = ProxyLatency()
    assert not fault.check(record)
    fault.revert(record)  # recover's revert afterwards is a no-op


def test_a_busy_listen_port_fails_inject_with_the_reason(postgres_superuser_dsn: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        upstream = f"127.0.0.1:{pg_port(postgres_superuser_dsn)}"
        fault = ProxyReset()
        plan = fault.plan(
            FaultRequest(
                run_id="busy", name="busy", params=ResetParams(listen=f"127.0.0.1:{port}", upstream=upstream)
            )
        )
        ready_error = rf"before it was ready: fault proxy cannot listen on 127\.0\.0\.1:{port}: .*in use$"
        with pytest.raises(FaultError, match=ready_error):
            fault.inject(plan)
        fault.revert(plan.revert_record)
        assert not fault.check(plan.revert_record)


def chaosrunner(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = run_chaosrunner(*args, timeout=60)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_a_facilitator_switches_a_live_runs_latency_off_and_on_from_another_terminal(
    postgres_superuser_dsn: str, prometheus_url: str, tmp_path: Path
) -> None:
    port = free_port()
    scenario = tmp_path / "slow-db.yaml"
    scenario.write_text(
        json.dumps(
            {
                "metadata": {"title": "slow db", "owner": "t", "expected_severity": "P3", "hypothesis": "h"},
                "target": {"prometheus": prometheus_url},
                "faults": [
                    {
                        "name": "slow-db",
                        "kind": "proxy.latency",
                        "params": {
                            "listen": f"127.0.0.1:{port}",
                            "upstream": f"127.0.0.1:{pg_port(postgres_superuser_dsn)}",
                            "delay": "100ms",
                        },
                        "duration": "2m",
                    }
                ],
                "gameday": {"max_duration": "3m"},
            }
        )
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", str(scenario)],
        env={**os.environ, "CHAOSRUNNER_REPORTS_DIR": str(tmp_path / "reports")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert run.stdout is not None
    run_id = None
    try:
        for line in run.stdout:
            if " started: " in line and run_id is None:
                run_id = line.split("run ", 1)[1].split()[0]
            if "injected slow-db" in line:
                break
        assert run_id is not None
        dsn = with_port(postgres_superuser_dsn, port)
        slow = statistics.median(query_times(dsn, 5))

        switched = chaosrunner("toxic", run_id, "slow-db", "off", "--by", "facilitator")
        assert "latency (latency)  off" in switched.stdout
        fast = statistics.median(query_times(dsn, 5))
        listed = chaosrunner("toxic", run_id, "--json")
        assert [(row["toxic"], row["enabled"]) for row in json.loads(listed.stdout)] == [("latency", False)]

        chaosrunner("toxic", run_id, "slow-db", "on")
        slow_again = statistics.median(query_times(dsn, 5))
        print(f"\nmedian select 1: {slow:.3f}s on, {fast:.3f}s off, {slow_again:.3f}s on again")
        assert slow > 0.09 and fast < 0.05 and slow_again > 0.09

        unknown = chaosrunner("toxic", run_id, "no-such-fault", "off", check=False)
        assert unknown.returncode == 2 and "has no fault 'no-such-fault'" in unknown.stderr
        assert "Traceback" not in unknown.stderr
    finally:
        if run_id is not None:
            chaosrunner("abort", run_id, check=False)
        output = run.communicate(timeout=60)[0]
    assert "reverted slow-db" in output
    assert "facilitator switched latency of slow-db off" in output  # the live console tails the journal
    [report] = list((tmp_path / "reports").glob("*/report.md"))
    assert "toxic latency of fault slow-db switched off" in report.read_text()
    assert refuses(port)
    [run_dir] = list((Path(os.environ["CHAOSRUNNER_STATE_DIR"]) / "runs").iterdir())
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    switches = [(e["enabled"], e["by"]) for e in events if e["type"] == "toxic_switched"]
    assert switches[0] == (False, "facilitator") and switches[1][0] is True
