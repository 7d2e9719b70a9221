"""Slow clients cannot take the run's server from the room (slowloris).

130 connections that each send half a request line used to hold every slot
of uvicorn's concurrency limit for as long as they liked: the facilitator's
abort button got 503s. Now one address may keep at most ``SLOW_PER_CLIENT``
connections waiting for their headers, each for at most ``HEADER_TIMEOUT``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.endpoint import RunServer
from chaosrunner.gameday.server import serving


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunServer]:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(serving, "HEADER_TIMEOUT", 1.0)
    run = RunDir.create()
    journal = Journal(run.journal_path)
    journal.append("run_started", run_id=run.run_id, monotonic_start=journal.monotonic_start)
    started = RunServer()
    started.start(run)
    yield started
    started.close()


def get_events(server: RunServer) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Authorization: Bearer {server.token.value}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        return int(sock.recv(4096).split(b" ", 2)[1])


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_trickled_headers_neither_hold_the_server_nor_stay_open(server: RunServer) -> None:
    slow = []
    try:
        for _ in range(serving.CONCURRENCY + 2):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /events HT")  # and never the rest
            slow.append(sock)
        assert get_events(server) == 200  # the room still gets in at once
        time.sleep(serving.HEADER_TIMEOUT + 1.0)
        for sock in slow:  # closed by the server (a FIN or a reset), not left hanging
            assert closed_by_server(sock)
        assert get_events(server) == 200
    finally:
        for sock in slow:
            sock.close()


def test_a_request_that_arrives_whole_is_not_cut_off_by_the_deadline(server: RunServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request = (
            f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.token.value}\r\n\r\n"
        ).encode()
        for _ in range(3):  # keep-alive: three requests on one connection, past the deadline
            sock.sendall(request)
            reply = b""
            while not reply.endswith(b"[]"):  # the headers, then the body: no marks yet
                chunk = sock.recv(4096)
                assert chunk, reply
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200")
            time.sleep(serving.HEADER_TIMEOUT * 0.6)
