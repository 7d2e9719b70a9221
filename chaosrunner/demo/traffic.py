"""Traffic and outside-in monitoring for the sandbox, in one process.

- a load generator: real users, ``--rps`` checkout requests a second;
- a synthetic probe: one checkout every second with a 1 s timeout, exposed
  as ``probe_success`` / ``probe_duration_seconds`` like a blackbox exporter;
- a database exporter: connections held by the checkout role against its
  CONNECTION LIMIT (``demo_db_role_connections``,
  ``demo_db_role_connection_limit``), read with a monitoring connection.

Metrics on ``--metrics-port``. The monitoring DSN comes from
``DEMO_MONITOR_DSN``, never the command line.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chaosrunner.demo import database
from chaosrunner.demo.exposition import Metrics
from chaosrunner.signals import set_event_handler

MONITOR_DSN_ENV = "DEMO_MONITOR_DSN"


def get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


class Traffic:
    def __init__(self, target: str, rps: float, role: str, metrics: Metrics) -> None:
        self.target = target.rstrip("/")
        self.rps = rps
        self.role = role
        self.stop = threading.Event()
        self.users = ThreadPoolExecutor(max_workers=32, thread_name_prefix="user")
        self.probe_success = metrics.gauge("probe_success", "1 when the last synthetic checkout succeeded")
        self.probe_duration = metrics.gauge(
            "probe_duration_seconds", "duration of the last synthetic checkout"
        )
        self.role_connections = metrics.gauge(
            "demo_db_role_connections", "connections held by the checkout role"
        )
        self.role_limit = metrics.gauge(
            "demo_db_role_connection_limit", "CONNECTION LIMIT of the checkout role"
        )
        self.exporter_up = metrics.gauge("demo_db_exporter_up", "1 when the exporter could read the database")

    def load(self) -> None:
        interval = 1.0 / self.rps
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.users.submit(get, f"{self.target}/checkout", 2.0)
            next_at += interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def probe(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            ok = get(f"{self.target}/checkout", 1.0) == 200
            self.probe_duration.set(time.perf_counter() - started)
            self.probe_success.set(1 if ok else 0)
            self.stop.wait(max(0.0, 1.0 - (time.perf_counter() - started)))

    def export_database(self, dsn: str) -> None:
        connection: Any = None
        while not self.stop.is_set():
            try:
                if connection is None or database.is_broken(connection):
                    connection = database.connect(dsn, "demo-db-exporter", 1.0)
                [(held,)] = database.execute(
                    connection, "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (self.role,)
                )
                [(limit,)] = database.execute(
                    connection, "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (self.role,)
                )
                self.role_connections.set(held)
                self.role_limit.set(limit)
                self.exporter_up.set(1)
            except database.DatabaseUnavailable:
                self.exporter_up.set(0)
                connection = None
            self.stop.wait(1.0)


def serve_metrics(port: int, metrics: Metrics) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_GET(self) -> None:
            body, content_type = metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="sandbox traffic, synthetic probe and database exporter")
    parser.add_argument("--target", default="http://127.0.0.1:18080")
    parser.add_argument("--rps", type=float, default=40.0)
    parser.add_argument("--metrics-port", type=int, default=18081)
    parser.add_argument("--role", default="demo_checkout")
    args = parser.parse_args()
    metrics = Metrics()
    traffic = Traffic(args.target, args.rps, args.role, metrics)
    serve_metrics(args.metrics_port, metrics)
    workers = [
        threading.Thread(target=traffic.load, daemon=True),
        threading.Thread(target=traffic.probe, daemon=True),
        threading.Thread(target=traffic.export_database, args=(os.environ[MONITOR_DSN_ENV],), daemon=True),
    ]
    for worker in workers:
        worker.start()
    signal.signal(signal.SIGTERM, set_event_handler(traffic.stop))
    while not traffic.stop.wait(0.5):
        pass
    traffic.users.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
