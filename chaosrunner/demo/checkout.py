"""The sandbox's checkout service: real HTTP, a PostgreSQL connection pool, RED metrics.

    GET /checkout   place an order (one INSERT through the pool); 503 when the
                    pool cannot get a connection in time
    GET /health     200 while the process runs (liveness, not readiness)
    GET /metrics    Prometheus metrics: http_requests_total{handler,code},
                    http_request_duration_seconds, checkout_db_pool_* gauges

Run: ``python -m chaosrunner.demo.checkout --port 18080`` with the database
DSN in ``DEMO_CHECKOUT_DSN`` (never on the command line).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chaosrunner.demo import database
from chaosrunner.demo.exposition import Metrics
from chaosrunner.demo.pool import ConnectionPool

DSN_ENV = "DEMO_CHECKOUT_DSN"


def build_server(port: int, pool: ConnectionPool) -> ThreadingHTTPServer:
    metrics = Metrics()
    requests = metrics.counter(
        "http_requests_total", "HTTP requests by handler and status code", ("handler", "code")
    )
    latency = metrics.histogram("http_request_duration_seconds", "HTTP request latency", ("handler",))
    metrics.gauge_function(
        "checkout_db_pool_in_use", "pool connections lent to requests", lambda: pool.in_use
    )
    metrics.gauge_function("checkout_db_pool_idle", "pool connections open and idle", lambda: pool.idle)
    metrics.gauge_function(
        "checkout_db_pool_waiting", "requests waiting for a pool connection", lambda: pool.waiting
    )
    metrics.gauge_function("checkout_db_pool_max", "pool size limit", lambda: pool.max_size)
    metrics.gauge_function(
        "checkout_db_connect_failures_total",
        "database connections the pool could not open",
        lambda: pool.connect_failures,
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            return

        def _send(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, content_type = metrics.render()
                self._send(200, body, content_type)
                return
            if self.path == "/health":
                self._send(200, b"ok\n")
                return
            if self.path != "/checkout":
                self._send(404, b"not found\n")
                return
            started = time.perf_counter()
            code = 200
            try:
                with pool.connection() as connection:
                    # The order's payment check takes a while: what makes one connection not enough.
                    database.execute(connection, "SELECT pg_sleep(0.03)")
                    [(order,)] = database.execute(
                        connection,
                        "INSERT INTO demo_orders (amount) VALUES (%s) RETURNING id",
                        (round(random.uniform(5, 200), 2),),
                    )
                body = f"order {order} placed\n".encode()
            except database.DatabaseUnavailable as error:
                code, body = 503, f"checkout unavailable: {error}\n".encode()
            latency.labels("/checkout").observe(time.perf_counter() - started)
            requests.labels("/checkout", str(code)).inc()
            self._send(code, body)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description="the sandbox checkout service")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--max-lifetime", type=float, default=2.0)
    args = parser.parse_args()
    pool = ConnectionPool(os.environ[DSN_ENV], max_size=args.pool_size, max_lifetime=args.max_lifetime)
    server = build_server(args.port, pool)
    server.daemon_threads = True
    # shutdown() waits for serve_forever(), which runs in this thread: ask from another.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    finally:
        pool.close()


if __name__ == "__main__":
    main()
