"""HTTP steady-state checks against a real HTTP server on loopback.

The server answers by path: a healthy JSON document, a 503, the wrong body, a
redirect, an answer slower than the check's timeout, and an echo of the
Authorization header it received (to prove a header_env value is sent). The
run tests drive `chaosrunner run` with a ``command.run`` fault that touches a
file, so "nothing was injected" is a file that does not exist.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrunner.engine.http_checks import probe
from chaosrunner.scenario.http_check import HttpSteadyStateCheck
from tests.support.cli import run_chaosrunner

pytestmark = pytest.mark.integration

SECRET = "Bearer s3cret-health-token"


class Handler(BaseHTTPRequestHandler):
    state: dict[str, Any] = {}

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/health":
            healthy = self.state.get("healthy", True)
            self.answer(200 if healthy else 503, json.dumps({"status": "UP" if healthy else "DOWN"}))
        elif self.path == "/wrong-body":
            self.answer(200, json.dumps({"status": "DEGRADED"}))
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(3)
            self.answer(200, "late")
        elif self.path == "/auth":
            ok = self.headers.get("Authorization") == SECRET
            self.answer(200 if ok else 401, "authorised" if ok else "who are you")
        else:
            self.answer(404, "not found")

    def answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    Handler.state = {"healthy": True}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def check(url: str, **http: Any) -> HttpSteadyStateCheck:
    return HttpSteadyStateCheck.model_validate({"name": "web", "http": {"url": url, **http}})


def test_a_healthy_answer_passes(server: str) -> None:
    result = probe(check(f"{server}/health", expect_json={"path": "$.status", "equals": "UP"}))
    assert result.ok and result.status == 200 and result.failed is None
    assert 0 <= result.elapsed < 3


def test_a_wrong_status_fails_naming_it(server: str) -> None:
    Handler.state["healthy"] = False
    result = probe(check(f"{server}/health"))
    assert not result.ok and result.status == 503
    assert result.failed == "expect_status: got 503, wanted 200"


def test_a_body_mismatch_fails_naming_the_expectation(server: str) -> None:
    substring = probe(check(f"{server}/wrong-body", expect_body='"UP"'))
    assert substring.failed == "expect_body: the body does not contain '\"UP\"'"
    regex = probe(check(f"{server}/wrong-body", expect_body_regex=r"\bUP\b"))
    assert regex.failed == "expect_body_regex: /\\bUP\\b/ does not match the body"
    value = probe(check(f"{server}/wrong-body", expect_json={"path": "$.status", "equals": "UP"}))
    assert value.failed == 'expect_json: $.status is "DEGRADED", wanted "UP"'
    assert value.status == 200 and not value.ok


def test_a_slow_answer_fails_at_the_timeout(server: str) -> None:
    began = time.monotonic()
    result = probe(check(f"{server}/slow", timeout="500ms"))
    assert time.monotonic() - began < 2.5
    assert not result.ok and result.status is None
    assert result.failed == "no answer within 0.5s"


def test_no_server_fails_with_the_reason(server: str) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = probe(check(f"http://127.0.0.1:{port}/health", timeout="1s"))
    assert not result.ok and result.status is None and result.failed == "Connection refused"


def test_redirects_are_answers_not_followed(server: str) -> None:
    assert probe(check(f"{server}/redirect")).failed == "expect_status: got 302, wanted 200"
    assert probe(check(f"{server}/redirect", expect_status=[302])).ok


def test_a_header_from_the_environment_is_sent_and_never_shown(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("F_HEALTH_TOKEN", SECRET)
    result = probe(check(f"{server}/auth", header_env={"Authorization": "F_HEALTH_TOKEN"}))
    assert result.ok
    assert "s3cret" not in json.dumps(result.journal_fields())
    monkeypatch.delenv("F_HEALTH_TOKEN")
    missing = probe(check(f"{server}/auth", header_env={"Authorization": "F_HEALTH_TOKEN"}))
    assert not missing.ok and missing.failed == "environment variable(s) F_HEALTH_TOKEN are not set"


# ----------------------------------------------------------------------------- whole runs


def write_scenario(tmp_path: Path, url: str, injected: Path) -> Path:
    data = {
        "metadata": {
            "title": "http steady state",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "h",
        },
        "steady_state": [
            {
                "name": "web",
                "http": {
                    "url": url,
                    "header_env": {"Authorization": "F_HEALTH_TOKEN"},
                    "timeout": "2s",
                    "expect_json": {"path": "$.status", "equals": "UP"},
                },
            }
        ],
        "faults": [
            {
                "name": "mark",
                "kind": "command.run",
                "params": {"inject": ["touch", str(injected)], "revert": ["rm", "-f", str(injected)]},
                "duration": "1s",
            }
        ],
        "gameday": {"max_duration": "1m", "steady_state_timeout": "5s", "check_interval": "250ms"},
    }
    path = tmp_path / "http.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def journal(state: Path) -> list[dict[str, Any]]:
    [run] = list((state / "runs").iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"), "F_HEALTH_TOKEN": SECRET}


def test_a_run_refuses_to_inject_when_the_http_steady_state_fails(
    tmp_path: Path, server: str, run_env: dict[str, str]
) -> None:
    Handler.state["healthy"] = False
    injected = tmp_path / "injected"
    result = run_chaosrunner(
        "run", "--plain", str(write_scenario(tmp_path, f"{server}/health", injected)), env=run_env
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "steady state 'web' does not hold before injecting (HTTP 503" in result.stdout + result.stderr
    assert not injected.exists()
    events = journal(Path(run_env["CHAOSRUNNER_STATE_DIR"]))
    [failed] = [e for e in events if e["type"] == "check" and e["name"] == "steady state web"]
    assert failed["ok"] is False and failed["status"] == 503
    assert failed["failed"] == "expect_status: got 503, wanted 200"
    assert not [e for e in events if e["type"] == "fault_injecting"]
    raw = (next((Path(run_env["CHAOSRUNNER_STATE_DIR"]) / "runs").iterdir()) / "journal.jsonl").read_text()
    assert "s3cret" not in raw


def test_a_run_checks_before_injecting_and_after_reverting(
    tmp_path: Path, server: str, run_env: dict[str, str]
) -> None:
    injected = tmp_path / "injected"
    result = run_chaosrunner(
        "run", "--plain", str(write_scenario(tmp_path, f"{server}/health", injected)), env=run_env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal(Path(run_env["CHAOSRUNNER_STATE_DIR"]))
    types = [(e["type"], e.get("name")) for e in events if e["type"] in ("check", "fault_injecting")]
    assert types[0] == ("check", "steady state web") and types[1] == ("fault_injecting", None)
    assert types[-1] == ("check", "steady state returned")
    first = next(e for e in events if e.get("name") == "steady state web")
    assert first["ok"] and first["status"] == 200 and first["elapsed"] >= 0
    assert not injected.exists()  # reverted


def test_a_run_deviates_when_the_http_check_does_not_return(
    tmp_path: Path, server: str, run_env: dict[str, str]
) -> None:
    injected = tmp_path / "injected"
    scenario = write_scenario(tmp_path, f"{server}/health", injected)
    data = yaml.safe_load(scenario.read_text())
    # the inject takes the service down (a file the test server cannot see: flip it from here)
    data["faults"][0]["duration"] = "2s"
    scenario.write_text(yaml.safe_dump(data))

    def take_down_once_injected() -> None:
        deadline = time.monotonic() + 30
        while not injected.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        Handler.state["healthy"] = False

    flipper = threading.Thread(target=take_down_once_injected, daemon=True)
    flipper.start()
    result = run_chaosrunner("run", "--plain", str(scenario), env=run_env)
    flipper.join(1)
    assert result.returncode == 1, result.stdout + result.stderr
    events = journal(Path(run_env["CHAOSRUNNER_STATE_DIR"]))
    verdict = next(e for e in events if e.get("name") == "steady state returned")
    assert verdict["ok"] is False and "web (HTTP 503" in verdict["detail"]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "deviated"
