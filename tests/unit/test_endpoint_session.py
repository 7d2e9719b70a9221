"""The gameday session's endpoint within a run, and who the guards let in.

An endpoint that cannot serve stops the run before anything is injected
(the old session swallowed the error and ran on without one). The guards are
pure functions of the headers, so the address rules are checked here without
a server, for each kind of bind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaosrunner.engine.runner import Runner, RunOptions, RunStatus
from chaosrunner.errors import EnvironmentProblem
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.gameday.server.guards import Access
from chaosrunner.gameday.server.token import RunToken
from chaosrunner.gameday.session import GamedaySession
from chaosrunner.scenario.loader import load_scenario

TOKEN = RunToken("t" * 43)
AUTH = (b"authorization", b"Bearer " + b"t" * 43)


def test_an_endpoint_that_cannot_serve_stops_the_run_before_any_injection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()
    path = tmp_path / "gameday.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "metadata": {"title": "t", "owner": "o", "expected_severity": "P3", "hypothesis": "h"},
                "faults": [{"name": "one", "kind": "inprocess.flag", "params": {"flag": "session-test"}}],
                "gameday": {"mode": "gameday", "max_duration": "20s", "check_interval": "100ms"},
            }
        )
    )
    runner = Runner(load_scenario(path), str(path), None, RunOptions(handle_signals=False))
    session = GamedaySession(runner, None)
    assert session.server is not None

    def cannot_serve(*_: object, **__: object) -> None:
        raise EnvironmentProblem("the responder endpoint did not start")

    monkeypatch.setattr(session.server, "start", cannot_serve)
    runner.listeners.append(session)
    try:
        result = runner.run()
    finally:
        session.close()
    assert result.status is RunStatus.ABORTED
    assert runner.run_dir is not None
    types = [event.type for event in runner.run_dir.events()]
    assert "fault_injecting" not in types and "responder_endpoint" not in types
    abort = next(event for event in runner.run_dir.events() if event.type == "abort")
    assert abort["cause"] == "responder_endpoint"


def headers(host: str, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"host", host.encode()), AUTH, *extra]


def test_a_loopback_bind_accepts_its_address_and_localhost_only() -> None:
    access = Access("127.0.0.1", "127.0.0.1", 8765, TOKEN)
    assert access.check(headers("127.0.0.1:8765")) is None
    assert access.check(headers("LOCALHOST:8765")) is None
    for host in ("rebind.attacker.example:8765", "10.0.0.5:8765", "127.0.0.1:8766", "127.0.0.1"):
        refusal = access.check(headers(host))
        assert refusal is not None and refusal.status == 403, host


def test_a_wildcard_bind_accepts_ip_literals_and_its_own_names_never_a_foreign_name() -> None:
    import socket

    access = Access("0.0.0.0", "0.0.0.0", 8765, TOKEN)
    for host in ("10.1.2.3:8765", "[fe80::1]:8765", f"{socket.gethostname()}:8765", "localhost:8765"):
        assert access.check(headers(host)) is None, host
    refusal = access.check(headers("rebind.attacker.example:8765"))
    assert refusal is not None and refusal.status == 403
    origin = access.check(headers("10.1.2.3:8765", (b"origin", b"http://rebind.attacker.example:8765")))
    assert origin is not None and origin.status == 403


def test_a_second_host_header_or_token_is_refused() -> None:
    access = Access("127.0.0.1", "127.0.0.1", 8765, TOKEN)
    twice = access.check([*headers("127.0.0.1:8765"), (b"host", b"attacker.example:8765")])
    assert twice is not None and twice.status == 400
    tokens = access.check([*headers("127.0.0.1:8765"), AUTH])
    assert tokens is not None and tokens.status == 401
