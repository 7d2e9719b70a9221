"""The responder endpoint against real requests: a real server on loopback, raw sockets.

Every refusal the issue lists, each checked on the wire (status) and in the
journal (nothing written). Requests are written byte by byte, so a test can
send what no polite client would: a negative Content-Length, no length at
all, a foreign Host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.engine.journal import Journal
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import EnvironmentProblem
from chaosrunner.gameday.endpoint import RunServer
from chaosrunner.gameday.server.token import TOKEN_FILE

MIB = 1024 * 1024


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunDir:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    folder = RunDir.create()
    journal = Journal(folder.journal_path)
    journal.append("run_started", run_id=folder.run_id, monotonic_start=journal.monotonic_start)
    return folder


@pytest.fixture
def endpoint(run: RunDir) -> Iterator[RunServer]:
    server = RunServer()
    server.start(run)
    yield server
    server.close()


class Reply:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }

    def json(self) -> object:
        return json.loads(self.body)


def read_reply(sock: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    reply = Reply(data)
    wanted = int(reply.headers.get("content-length", "0"))
    while len(reply.body) < wanted:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply.body += chunk
    return reply


def head_bytes(method: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} /events HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def send(endpoint: RunServer, method: str, headers: dict[str, str], body: bytes = b"") -> Reply:
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as sock:
        sock.sendall(head_bytes(method, headers) + body)
        return read_reply(sock)


def good_headers(endpoint: RunServer, **overrides: str) -> dict[str, str]:
    headers = {
        "Host": f"127.0.0.1:{endpoint.port}",
        "Authorization": f"Bearer {endpoint.token.value}",
        "Content-Type": "application/json",
        "Connection": "close",
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value != ""}


def post(endpoint: RunServer, document: object, **overrides: str) -> Reply:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = {"Content-Length": str(len(body)), **good_headers(endpoint, **overrides)}
    return send(endpoint, "POST", {k: v for k, v in headers.items() if v != ""}, body)


def marks(run: RunDir) -> list[dict]:
    return [dict(event) for event in run.events() if event.type == "responder"]


MITIGATED = {"event": "mitigated", "by": "mallory"}


def test_a_mark_with_the_token_is_journaled_and_listed(endpoint: RunServer, run: RunDir) -> None:
    reply = post(endpoint, {"event": "severity", "value": "p2", "by": "alice", "run_id": run.run_id})
    assert reply.status == 201, reply.body
    assert reply.json()["value"] == "P2"
    assert [(m["event"], m["value"], m["by"]) for m in marks(run)] == [("severity", "P2", "alice")]
    listed = send(endpoint, "GET", good_headers(endpoint))
    assert listed.status == 200
    assert [(m["event"], m["by"]) for m in listed.json()] == [("severity", "alice")]
    assert listed.headers["x-content-type-options"] == "nosniff"


def test_localhost_and_a_charset_are_fine(endpoint: RunServer, run: RunDir) -> None:
    reply = post(
        endpoint,
        {"event": "detected", "via": "synthetic"},
        Host=f"localhost:{endpoint.port}",
        **{"Content-Type": "application/json; charset=utf-8", "Origin": f"http://localhost:{endpoint.port}"},
    )
    assert reply.status == 201, reply.body
    assert marks(run)[0]["via"] == "synthetic"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_token_is_401_and_nothing_is_journaled(endpoint: RunServer, run: RunDir, method: str) -> None:
    if method == "POST":
        reply = post(endpoint, MITIGATED, Authorization="")
    else:
        reply = send(endpoint, "GET", good_headers(endpoint, Authorization=""))
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert marks(run) == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong", "Bearer ", "Basic dXNlcjpwYXNz", "token-without-scheme", "Bearer \xe9\xe9"],
)
def test_a_wrong_token_is_401_and_nothing_is_journaled(
    endpoint: RunServer, run: RunDir, authorization: str
) -> None:
    assert post(endpoint, MITIGATED, Authorization=authorization).status == 401
    assert marks(run) == []


def test_the_token_of_another_scheme_or_a_prefix_of_it_is_refused(endpoint: RunServer) -> None:
    token = endpoint.token.value
    assert post(endpoint, MITIGATED, Authorization=f"Bearer {token[:-1]}").status == 401
    assert post(endpoint, MITIGATED, Authorization=f"Bearer {token}x").status == 401
    assert post(endpoint, MITIGATED, Authorization=f"Basic {token}").status == 401


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
def test_an_html_form_cannot_forge_a_mark(endpoint: RunServer, run: RunDir, content_type: str) -> None:
    """A form's body can be made to look like JSON, but its Content-Type cannot be application/json."""
    reply = post(endpoint, MITIGATED, **{"Content-Type": content_type})
    assert reply.status == 415
    assert marks(run) == []


@pytest.mark.parametrize(
    "host", ["attacker.example:{port}", "127.0.0.1:1", "evil@127.0.0.1:{port}", "127.0.0.1:{port}/x", ""]
)
def test_a_foreign_host_is_403_even_with_the_token(endpoint: RunServer, run: RunDir, host: str) -> None:
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, but the Host header keeps the name."""
    reply = post(endpoint, MITIGATED, Host=host.format(port=endpoint.port))
    assert reply.status in (400, 403)  # h11 itself answers 400 to a request without Host
    assert marks(run) == []
    assert (
        send(endpoint, "GET", good_headers(endpoint, Host=f"attacker.example:{endpoint.port}")).status == 403
    )


@pytest.mark.parametrize(
    "origin", ["http://attacker.example", "null", "https://127.0.0.1:{port}", "http://127.0.0.1:1"]
)
def test_a_foreign_origin_is_403(endpoint: RunServer, run: RunDir, origin: str) -> None:
    reply = post(endpoint, MITIGATED, Origin=origin.format(port=endpoint.port))
    assert reply.status == 403
    assert marks(run) == []


def test_a_negative_length_is_refused_before_the_body_is_read(
    endpoint: RunServer, run: RunDir, capfd: pytest.CaptureFixture[str]
) -> None:
    """The old server read the whole stream for Content-Length: -1. Here the answer comes while
    almost all of a 5 MiB body is still unsent - so it was decided without reading it."""
    headers = {**good_headers(endpoint), "Content-Length": "-1"}
    body = json.dumps({"event": "note", "value": "x" * (5 * MIB)}).encode()
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as sock:
        sock.sendall(head_bytes("POST", headers) + body[:1024])
        reply = read_reply(sock)
        with contextlib.suppress(OSError):  # the server may have closed: exactly what should happen
            sock.sendall(body[1024:])
    assert reply.status == 400
    assert marks(run) == []
    assert post(endpoint, {"event": "note", "value": "still serving"}).status == 201
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("length", ["abc", "1e3", "+5", " 12x"])
def test_a_length_that_is_not_a_number_is_400(
    endpoint: RunServer, run: RunDir, length: str, capfd: pytest.CaptureFixture[str]
) -> None:
    headers = {**good_headers(endpoint), "Content-Length": length}
    assert send(endpoint, "POST", headers, b"{}").status == 400
    assert marks(run) == []
    assert "Traceback" not in capfd.readouterr().err


def test_a_missing_length_is_411(endpoint: RunServer, run: RunDir) -> None:
    assert send(endpoint, "POST", good_headers(endpoint)).status == 411
    chunk = json.dumps(MITIGATED).encode()
    chunked = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    headers = {**good_headers(endpoint), "Transfer-Encoding": "chunked"}
    assert send(endpoint, "POST", headers, chunked).status == 411
    assert marks(run) == []


def test_an_oversized_length_is_413_without_sending_the_body(endpoint: RunServer, run: RunDir) -> None:
    headers = {**good_headers(endpoint), "Content-Length": str(10 * MIB)}
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as sock:
        sock.sendall(head_bytes("POST", headers))  # not one byte of the 10 MiB
        reply = read_reply(sock)
    assert reply.status == 413
    assert marks(run) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"event": "detected"', "malformed JSON"),
        (b"\xff\xfe{}", "malformed JSON"),
        pytest.param(b"[" * 60000, "nested deeper", id="60000-open-brackets"),
        (b'{"event": "note", "value": {"a": {"b": {"c": {"d": 1}}}}}', "nested deeper"),
        (b'{"event": "note", "value": 42}', "'value' must be a string"),
        (b'{"event": "detected", "by": ["alice"]}', "'by' must be a string"),
        (b'{"event": "detected", "at": 1700000000}', "'at' must be a string"),
        (b'{"event": "detected", "via": true}', "'via' must be a string"),
        (b'{"event": "detected", "when": "now"}', "unknown field 'when'"),
        (b'["detected"]', "expected a JSON object"),
        (b'{"event": "pwned"}', "unknown event"),
        (b'{"event": "severity", "value": "P9"}', "severity must be"),
    ],
)
def test_bad_documents_are_400_with_a_reason(
    endpoint: RunServer, run: RunDir, body: bytes, says: str, capfd: pytest.CaptureFixture[str]
) -> None:
    reply = post(endpoint, body)
    assert reply.status == 400, reply.body
    assert says in reply.json()["error"]  # type: ignore[index]
    assert marks(run) == []
    assert "Traceback" not in capfd.readouterr().err


def test_a_mark_for_another_run_is_refused(endpoint: RunServer, run: RunDir) -> None:
    reply = post(endpoint, {**MITIGATED, "run_id": "20990101-000000-abcdef"})
    assert reply.status == 409
    assert marks(run) == []


def test_the_token_file_is_private_and_the_token_long(endpoint: RunServer, run: RunDir) -> None:
    path = run.path / TOKEN_FILE
    assert endpoint.token_file == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == endpoint.token.value
    assert len(endpoint.token.value) >= 43  # 32 random bytes, url-safe base64
    assert endpoint.token.value not in run.journal_path.read_text()
    assert endpoint.token.value not in repr(endpoint.token)


def test_the_token_file_is_never_written_through_a_planted_symlink(run: RunDir, tmp_path: Path) -> None:
    elsewhere = tmp_path / "stolen"
    (run.path / TOKEN_FILE).symlink_to(elsewhere)
    server = RunServer()
    try:
        with pytest.raises(EnvironmentProblem, match="token file"):
            server.start(run)
    finally:
        server.close()
    assert not elsewhere.exists()


def test_closing_stops_serving_and_removes_the_token(run: RunDir) -> None:
    server = RunServer()
    server.start(run)
    port = server.port
    server.close()
    assert not (run.path / TOKEN_FILE).exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_port_in_use_fails_at_once_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(EnvironmentProblem) as caught:
            RunServer(port=port)
    assert caught.value.exit_code == 3
    assert str(caught.value).startswith(f"port {port} on 127.0.0.1 is in use")
