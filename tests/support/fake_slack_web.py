"""A fake Slack Web API for what the inbound chat reads, on loopback, at our seam (chat.slack.api_url).

A real HTTP server that slack_sdk's WebClient talks to as it would to Slack:
``users.info`` answers from ``people`` (``user_not_found`` otherwise),
``conversations.history`` and ``conversations.replies`` from ``messages``
(channel -> list of ``{"ts", "text", "thread_ts"?}``), the way Slack does:
history holds a channel's top-level messages (newest first, up to ``latest``,
``inclusive``), replies holds a thread given any of its messages' ts. Every
method checks the bot token (``invalid_auth`` otherwise); anything else (say
``chat.postMessage`` from the run's own messages) is answered ``ok``. It
records what was asked, and can be told to be slow or to fail.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_TOKEN = "xoxb-test-0000-fake-reader-token"


@dataclass
class FakeSlackWeb:
    token: str = BOT_TOKEN
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> Slack's user object
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    asked: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    answered: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # once the answer is sent
    delay: dict[str, float] = field(default_factory=dict)  # method -> seconds before answering
    failing: set[str] = field(default_factory=set)  # methods answered with a 500
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> FakeSlackWeb:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-slack-web", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def api_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def person(self, user_id: str, display_name: str, real_name: str = "", name: str = "") -> None:
        self.people[user_id] = {
            "id": user_id,
            "name": name or display_name.lower().replace(" ", "."),
            "real_name": real_name or display_name,
            "profile": {"display_name": display_name, "real_name": real_name or display_name},
        }

    def calls(self, method: str) -> list[dict[str, str]]:
        with self._lock:
            return [params for name, params in self.asked if name == method]

    def wait_answered(self, method: str, key: str, values: set[str], timeout: float = 30.0) -> None:
        """Until ``method`` has been answered for every one of ``values`` of parameter ``key``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = {params.get(key) for name, params in self.answered if name == method}
            if values <= done:
                return
            time.sleep(0.02)
        raise AssertionError(f"{method} was not answered for {sorted(values - done)}")

    # -- inside ---------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        method = parts.path.removeprefix("/api/")
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            body = handler.rfile.read(min(length, 1 << 20)).decode()
            params.update({key: values[0] for key, values in parse_qs(body).items()})
        with self._lock:
            self.asked.append((method, params))
        time.sleep(self.delay.get(method, 0.0))
        try:
            self._reply(handler, method, params)
        finally:
            with self._lock:
                self.answered.append((method, params))

    def _reply(self, handler: BaseHTTPRequestHandler, method: str, params: dict[str, str]) -> None:
        if method in self.failing:
            self._answer(handler, 500, {"ok": False, "error": "internal_error"})
        elif handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._answer(handler, 200, {"ok": False, "error": "invalid_auth"})
        elif method == "users.info":
            user = self.people.get(params.get("user", ""))
            self._answer(
                handler, 200, {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
            )
        elif method == "conversations.history":
            self._answer(handler, 200, {"ok": True, "messages": self._history(params)})
        elif method == "conversations.replies":
            self._answer(handler, 200, {"ok": True, "messages": self._replies(params)})
        else:
            self._answer(handler, 200, {"ok": True})

    def _history(self, params: dict[str, str]) -> list[dict[str, Any]]:
        top = [
            m
            for m in self.messages.get(params.get("channel", ""), [])
            if m.get("thread_ts") in (None, m["ts"])
        ]
        latest = float(params.get("latest", "inf"))
        inclusive = params.get("inclusive") in ("1", "true", "True")
        kept = [m for m in top if float(m["ts"]) < latest or (inclusive and float(m["ts"]) == latest)]
        kept.sort(key=lambda m: float(m["ts"]), reverse=True)
        return kept[: int(params.get("limit", "100"))]

    def _replies(self, params: dict[str, str]) -> list[dict[str, Any]]:
        channel = self.messages.get(params.get("channel", ""), [])
        asked = next((m for m in channel if m["ts"] == params.get("ts")), None)
        if asked is None:
            return []
        thread = asked.get("thread_ts") or asked["ts"]
        return sorted(
            (m for m in channel if (m.get("thread_ts") or m["ts"]) == thread), key=lambda m: float(m["ts"])
        )

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, reply: dict[str, Any]) -> None:
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
