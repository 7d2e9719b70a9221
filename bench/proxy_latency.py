"""Added latency of the fault proxy: what 100 ms configured really adds, and the floor.

Runs a TCP echo server on loopback and measures echo round trips on one
connection three ways: direct (the baseline), through a proxy holder with no
toxic (the proxy's own cost), and through one with ``proxy.latency`` at 100 ms.
The proxies are real holder processes, started the way a run starts them.
Prints median and p95 of the round trips and of the latency each adds over
the baseline.

Usage: python bench/proxy_latency.py [--count N] [--delay-ms MS]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaosrunner.faults.proxy import lifecycle  # noqa: E402
from chaosrunner.faults.proxy.control import proxy_dir, read_status  # noqa: E402
from chaosrunner.faults.proxy.toxics import Latency, ToxicSet  # noqa: E402


def echo_server() -> int:
    server = socket.create_server(("127.0.0.1", 0))

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def round_trips(port: int, count: int) -> list[float]:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(b"warm")
        conn.recv(4)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            conn.sendall(b"ping")
            received = b""
            while len(received) < 4:
                received += conn.recv(4)
            times.append(time.perf_counter() - started)
        return times


@contextmanager
def proxy(upstream: int, toxics: ToxicSet, label: str) -> Iterator[int]:
    spec = {"fault": label, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"}
    holder = lifecycle.start(label, spec, toxics, seconds=600)
    try:
        status = read_status(proxy_dir(label))
        assert status is not None
        yield int(status.address.rsplit(":", 1)[1])
    finally:
        lifecycle.stop(label, holder.as_dict())


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def line(label: str, times: list[float], baseline: float | None) -> str:
    text = f"{label:<34} median {statistics.median(times) * 1000:8.2f} ms   p95 {p95(times) * 1000:8.2f} ms"
    if baseline is not None:
        added = [value - baseline for value in times]
        text += f"   added: median {statistics.median(added) * 1000:7.2f} ms, p95 {p95(added) * 1000:7.2f} ms"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="round trips per measurement")
    parser.add_argument("--delay-ms", type=float, default=100.0)
    args = parser.parse_args()
    os.environ.setdefault("CHAOSRUNNER_STATE_DIR", tempfile.mkdtemp(prefix="chaosrunner-bench-"))
    os.environ["PYTHONPATH"] = str(REPO)
    upstream = echo_server()
    direct = round_trips(upstream, args.count)
    baseline = statistics.median(direct)
    print(line("direct (baseline)", direct, None))
    with proxy(upstream, ToxicSet(), "bench-no-toxic") as port:
        print(line("proxy, no toxic", round_trips(port, args.count), baseline))
    delay = Latency(name="latency", delay=args.delay_ms / 1000)
    with proxy(upstream, ToxicSet(toxics=[delay]), "bench-latency") as port:
        delayed = round_trips(port, args.count)
    print(line(f"proxy, latency {args.delay_ms:g} ms", delayed, baseline))
    error = (statistics.median(delayed) - baseline) * 1000 - args.delay_ms
    print(f"\nmedian added latency is {error:+.2f} ms off the configured {args.delay_ms:g} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
