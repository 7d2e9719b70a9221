"""A small local HTTP endpoint that takes responder events while a gameday is live.

So a chat bot or a web page can post what the team does without a terminal:

    POST /events   {"event": "severity", "value": "P2", "by": "alice"}
    POST /events   {"event": "detected", "via": "synthetic", "by": "bob"}
    GET  /events   the responder events so far (JSON)

It listens on loopback only and validates exactly as ``chaosrunner mark`` does
(same ``record`` function): a bad event is a 400 with the reason. Stdlib
``http.server`` is enough for a handful of requests a minute.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.marks import record, responder_events

MAX_BODY = 64 * 1024


class ResponderEndpoint:
    def __init__(self, run: RunDir, host: str = "127.0.0.1", port: int = 0) -> None:
        self.run = run
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # the journal is the log
                return

            def _reply(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/events":
                    self._reply(404, {"error": "POST or GET /events"})
                    return
                events = responder_events(endpoint.run.events())
                self._reply(200, [event.as_fields() for event in events])

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/events":
                    self._reply(404, {"error": "POST /events"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {"error": "body too large"})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
                        raise ValueError('expected a JSON object with "event"')
                    event = record(
                        endpoint.run,
                        body["event"],
                        body.get("value"),
                        by=str(body.get("by", "")),
                        at=body.get("at"),
                        via=body.get("via"),
                    )
                except (ValueError, ChaosrunnerError) as error:
                    self._reply(400, {"error": str(error)})
                    return
                self._reply(201, event.as_fields())

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/events"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="responder-endpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
