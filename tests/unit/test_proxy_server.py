"""The relay itself, in-process over loopback: each toxic does what it says, and can be switched."""

from __future__ import annotations

import http.server
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from chaosrunner.faults.proxy.server import Address, ProxyServer
from chaosrunner.faults.proxy.toxics import Bandwidth, Direction, HttpError, Latency, Reset, Stall, ToxicSet


class EchoServer:
    """A TCP echo server on a free loopback port, one thread per connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = Address("127.0.0.1", self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"x" * int(self.path.strip("/") or 2)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[Address]:
    server = EchoServer()
    yield server.address
    server.sock.close()


@pytest.fixture(scope="module")
def web() -> Iterator[Address]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Address("127.0.0.1", server.server_address[1])
    server.shutdown()


@pytest.fixture
def proxy_to() -> Iterator:
    started: list[ProxyServer] = []

    def start(upstream: Address | None, *toxics: object) -> tuple[ProxyServer, Address]:
        proxy = ProxyServer(Address("127.0.0.1", 0), ToxicSet(toxics=list(toxics)), upstream=upstream)
        started.append(proxy)
        return proxy, proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


def round_trips(address: Address, count: int = 10) -> list[float]:
    with socket.create_connection((address.host, address.port), timeout=5) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            conn.sendall(b"ping")
            received = b""
            while len(received) < 4:
                received += conn.recv(4)
            times.append(time.perf_counter() - started)
        return times


def address_of(address: Address) -> tuple[str, int]:
    return (address.host, address.port)


def assert_reset_on_arrival(address: Address) -> None:
    """The RST may beat the end of connect() (a timeout makes connect poll), or come on recv."""
    with (
        pytest.raises(ConnectionResetError),
        socket.create_connection(address_of(address), timeout=5) as conn,
    ):
        conn.sendall(b"x")
        conn.recv(10)


# The delays here are long enough that "once, not twice" and "off" stay apart by hundreds of
# milliseconds on a busy machine; how exact the added latency is, is bench/unit_timings.py's
# (and bench/proxy_latency.py's) figure, not a unit test's. A relay cannot answer before its
# delay, so the lower bounds hold however slow the machine.


def test_latency_adds_its_delay_once_per_round_trip_and_switches_off(proxy_to, echo: Address) -> None:
    delay = 0.4
    proxy, address = proxy_to(echo, Latency(name="latency", delay=delay))
    delayed = round_trips(address, 3)
    assert min(delayed) >= delay * 0.95 and statistics.median(delayed) < 2 * delay  # once, not twice
    proxy.replace_toxics(ToxicSet(generation=1, toxics=[Latency(name="latency", delay=delay, enabled=False)]))
    assert statistics.median(round_trips(address, 3)) < delay / 2


def test_latency_on_both_directions_adds_it_twice(proxy_to, echo: Address) -> None:
    delay = 0.3
    _, address = proxy_to(echo, Latency(name="latency", delay=delay, direction=Direction.BOTH))
    assert min(round_trips(address, 3)) >= 2 * delay * 0.95


def test_reset_sends_an_rst(proxy_to, echo: Address) -> None:
    proxy, address = proxy_to(echo, Reset(name="reset"))
    assert_reset_on_arrival(address)
    assert proxy.snapshot_counts()["resets"] == 1


def test_switching_reset_on_hits_live_connections_on_their_next_data(proxy_to, echo: Address) -> None:
    proxy, address = proxy_to(echo, Reset(name="reset", enabled=False))
    with socket.create_connection((address.host, address.port), timeout=5) as conn:
        conn.sendall(b"one")
        assert conn.recv(10) == b"one"
        proxy.replace_toxics(ToxicSet(generation=1, toxics=[Reset(name="reset")]))
        with pytest.raises(ConnectionResetError):
            conn.sendall(b"two")
            conn.recv(10)


def test_a_stall_holds_data_intact_until_it_is_switched_off(proxy_to, echo: Address) -> None:
    proxy, address = proxy_to(echo, Stall(name="timeout"))
    with socket.create_connection((address.host, address.port), timeout=0.3) as conn:
        conn.sendall(b"are you there")
        with pytest.raises(TimeoutError):
            conn.recv(100)
        proxy.replace_toxics(ToxicSet(generation=1, toxics=[Stall(name="timeout", enabled=False)]))
        conn.settimeout(5)
        received = b""
        while len(received) < 13:
            received += conn.recv(100)
        assert received == b"are you there"


def test_a_stall_with_close_after_ends_the_connection(proxy_to, echo: Address) -> None:
    _, address = proxy_to(echo, Stall(name="timeout", close_after=0.2))
    with socket.create_connection((address.host, address.port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            conn.recv(10)
        assert 0.15 < time.monotonic() - started < 2


def test_bandwidth_paces_the_answer(proxy_to, web: Address) -> None:
    _, address = proxy_to(web, Bandwidth(name="bandwidth", rate=100_000))
    started = time.monotonic()
    with urllib.request.urlopen(f"http://{address}/30000", timeout=10) as answer:
        assert len(answer.read()) == 30000
    assert 0.25 < time.monotonic() - started < 1.5


def test_http_error_answers_instead_of_the_dependency(proxy_to, web: Address) -> None:
    proxy, address = proxy_to(web, HttpError(name="http-error", status=502, body="nope"))
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://{address}/5", timeout=5)
    assert caught.value.code == 502 and caught.value.read() == b"nope"
    assert caught.value.headers["X-Chaosrunner-Fault"] == "proxy"
    proxy.replace_toxics(ToxicSet(generation=1, toxics=[HttpError(name="http-error", enabled=False)]))
    with urllib.request.urlopen(f"http://{address}/5", timeout=5) as answer:
        assert answer.status == 200 and answer.read() == b"xxxxx"


def test_http_error_decides_per_request_on_a_keep_alive_connection(proxy_to, web: Address) -> None:
    import http.client

    proxy, address = proxy_to(web, HttpError(name="http-error", fraction=0.5))
    statuses = []
    conn = http.client.HTTPConnection(address.host, address.port, timeout=5)
    for _ in range(60):
        conn.request("GET", "/3")
        answer = conn.getresponse()
        body = answer.read()
        statuses.append(answer.status)
        assert body == (b"xxx" if answer.status == 200 else b"injected by chaosrunner\n")
        if answer.will_close:
            conn.close()
    assert 10 < statuses.count(503) < 50 and statuses.count(503) + statuses.count(200) == 60
    assert proxy.snapshot_counts()["http_errors"] == statuses.count(503)


def test_a_non_http_stream_passes_an_http_error_proxy_untouched(proxy_to, echo: Address) -> None:
    _, address = proxy_to(echo, HttpError(name="http-error"))
    with socket.create_connection((address.host, address.port), timeout=5) as conn:
        conn.sendall(b"\x00\x00\x00\x08binary")
        assert conn.recv(100) == b"\x00\x00\x00\x08binary"


def test_transparent_mode_refuses_connections_that_were_not_redirected(proxy_to) -> None:
    proxy, address = proxy_to(None)
    assert_reset_on_arrival(address)
    assert proxy.snapshot_counts()["refused"] == 1


def test_an_unreachable_upstream_resets_the_client(proxy_to) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    proxy, address = proxy_to(Address("127.0.0.1", port))
    assert_reset_on_arrival(address)
    assert proxy.snapshot_counts()["upstream_failures"] == 1


def test_stopping_closes_live_connections_and_the_port(echo: Address) -> None:
    proxy = ProxyServer(Address("127.0.0.1", 0), ToxicSet(), upstream=echo)
    address = proxy.start()
    conn = socket.create_connection((address.host, address.port), timeout=5)
    conn.sendall(b"x")
    assert conn.recv(1) == b"x"
    proxy.stop()
    proxy.stop()  # idempotent
    with pytest.raises((ConnectionResetError, ConnectionAbortedError)):
        conn.sendall(b"y")
        if not conn.recv(1):
            raise ConnectionAbortedError
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address.host, address.port), timeout=5)


def test_a_busy_port_is_reported(echo: Address) -> None:
    from chaosrunner.errors import FaultError

    with pytest.raises(FaultError, match="cannot listen on"):
        ProxyServer(Address("127.0.0.1", echo.port), ToxicSet(), upstream=echo).start()
