"""A fake Slack Web API and incoming webhooks on loopback, at our own seam (slack_sdk's ``base_url``).

A real HTTP server: slack_sdk's WebClient and WebhookClient talk to it exactly
as they would to Slack. It records every request (path, headers, body) and
answers like Slack: ``chat.postMessage`` with ``{"ok": true, ...}`` for the
expected bot token and ``{"ok": false, "error": "invalid_auth"}`` otherwise;
a webhook (any path under ``/hooks/``) with ``ok``. Told to, it answers the
next requests with a 429 and ``Retry-After``, or a 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_TOKEN = "xoxb-test-0000-fake-bot-token"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    answered: int = 0  # the HTTP status it was given
    accepted: bool = False  # a 200 that posted (not a refused token)

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class _Scripted:
    status: int
    retry_after: float | None = None


@dataclass
class FakeSlack:
    token: str = BOT_TOKEN
    received: list[Received] = field(default_factory=list)
    _script: deque[_Scripted] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- set-up ---------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def api_url(self) -> str:
        """What a scenario's ``slack.api_url`` points at."""
        return self.base_url + "api/"

    def webhook_url(self, name: str = "slack") -> str:
        return f"{self.base_url}hooks/{name}/T000/B000/XXXXsecretXXXX"

    def answer_429(self, retry_after: float, times: int = 1) -> None:
        with self._lock:
            self._script.extend(_Scripted(429, retry_after) for _ in range(times))

    def answer_500(self, times: int = 1) -> None:
        with self._lock:
            self._script.extend(_Scripted(500) for _ in range(times))

    # -- what tests read ------------------------------------------------------------------

    def posted(self) -> list[Received]:
        """The requests that were accepted (a 200 with ok), in order."""
        with self._lock:
            return [request for request in self.received if request.accepted]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accepted = self.posted()
            if len(accepted) >= count:
                return accepted
            time.sleep(0.05)
        raise AssertionError(f"expected {count} accepted posts, got {len(self.posted())}: {self.received}")

    # -- inside ---------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(min(length, 1 << 20)).decode()
        content_type = handler.headers.get("Content-Type", "")
        if "json" in content_type:
            body = json.loads(raw or "{}")
        else:
            body = {key: values[0] for key, values in parse_qs(raw).items()}
        request = Received(handler.path, dict(handler.headers.items()), body, time.monotonic())
        with self._lock:
            self.received.append(request)
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            headers = {"Retry-After": f"{scripted.retry_after:g}"} if scripted.retry_after is not None else {}
            error = "ratelimited" if scripted.status == 429 else "internal_error"
            self._answer(handler, request, scripted.status, {"ok": False, "error": error}, headers)
        elif handler.path.startswith("/hooks/"):
            self._answer(handler, request, 200, "ok")
        elif handler.path == "/api/chat.postMessage":
            if handler.headers.get("Authorization") != f"Bearer {self.token}":
                self._answer(handler, request, 200, {"ok": False, "error": "invalid_auth"}, ok=False)
            else:
                reply = {"ok": True, "channel": body.get("channel"), "ts": f"{time.time():.6f}"}
                self._answer(handler, request, 200, reply)
        else:
            self._answer(handler, request, 404, {"ok": False, "error": "unknown_method"})

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        request: Received,
        status: int,
        reply: dict[str, Any] | str,
        headers: dict[str, str] | None = None,
        *,
        ok: bool = True,
    ) -> None:
        data = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain" if isinstance(reply, str) else "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        with self._lock:
            request.answered, request.accepted = status, ok and status == 200
