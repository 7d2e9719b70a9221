"""ChaosWindowPublisher: what it pushes, and that the run's group is deleted even past a failure.

A loopback HTTP server stands in for the Pushgateway so a failing DELETE can be
staged; tests/integration/test_engine.py runs the publisher against the real one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chaosrunner.observe.pushgateway import ChaosWindowPublisher


class StagedGateway(ThreadingHTTPServer):
    def __init__(self, failing_deletes: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failing_deletes = failing_deletes
        self.requests: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StagedGateway

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append((self.command, self.path, self.rfile.read(length)))
        failing = self.command == "DELETE" and self.server.failing_deletes > 0
        if failing:
            self.server.failing_deletes -= 1
        self.send_response(503 if failing else 202 if self.command == "DELETE" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gateway(request: pytest.FixtureRequest) -> Iterator[StagedGateway]:
    server = StagedGateway(failing_deletes=getattr(request, "param", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run(publisher: ChaosWindowPublisher, gateway: StagedGateway) -> None:
    publisher({"type": "run_started", "run_id": "r-1"})
    publisher({"type": "phase", "phase": "injecting"})
    publisher({"type": "fault_injected", "fault": "kill-api", "kind": "docker.kill"})
    # Pushes are coalesced and a delete supersedes them: let one land before the run ends.
    deadline = time.monotonic() + 10
    while not any(method == "PUT" for method, _path, _body in gateway.requests):
        assert time.monotonic() < deadline, "no push reached the gateway"
        time.sleep(0.01)
    publisher({"type": "fault_reverted", "fault": "kill-api", "kind": "docker.kill"})
    publisher({"type": "run_finished"})
    publisher.close()


def test_pushes_the_fault_and_phase_then_deletes_the_group(gateway: StagedGateway) -> None:
    publisher = ChaosWindowPublisher(gateway.url, "Checkout outage")
    _run(publisher, gateway)
    assert publisher.errors == []
    methods = [method for method, _path, _body in gateway.requests]
    assert methods[-1] == "DELETE" and set(methods[:-1]) == {"PUT"}
    assert all(path == "/metrics/job/chaosrunner/run/r-1" for _method, path, _body in gateway.requests)
    first_push = next(body for method, _path, body in gateway.requests if method == "PUT").decode()
    assert (
        'chaosrunner_fault_active{fault="kill-api",kind="docker.kill",scenario="Checkout outage",'
        'state="injected"} 1.0' in first_push
    )
    assert 'chaosrunner_run_phase{phase="injecting",scenario="Checkout outage"} 1.0' in first_push


@pytest.mark.parametrize("gateway", [2], indirect=True)
def test_a_failing_delete_is_retried_until_the_group_is_gone(gateway: StagedGateway) -> None:
    publisher = ChaosWindowPublisher(gateway.url, "Checkout outage")
    _run(publisher, gateway)
    deletes = [method for method, _path, _body in gateway.requests if method == "DELETE"]
    assert len(deletes) == 3 and gateway.failing_deletes == 0
    assert publisher.errors == []


@pytest.mark.parametrize("gateway", [5], indirect=True)
def test_a_delete_that_keeps_failing_is_reported_not_raised(gateway: StagedGateway) -> None:
    publisher = ChaosWindowPublisher(gateway.url, "Checkout outage")
    _run(publisher, gateway)
    assert len(publisher.errors) == 1 and "503" in publisher.errors[0]
