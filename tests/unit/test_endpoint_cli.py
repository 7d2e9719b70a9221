"""`chaosrunner run` and the responder endpoint: a port in use, --listen, and the end of a run.

The port-in-use case runs chaosrunner as a user does (a new process): the
command must stop before the run folder exists. The end-of-run case runs the
command in-process with fakes at our own seams (the console factory, the
session's close, the Pushgateway publisher): whatever a console or listener
does on close, the summary, the report and the Pushgateway clean-up happen.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from chaosrunner.cli import cli
from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]

GAMEDAY = {
    "metadata": {"title": "Endpoint CLI", "owner": "o", "expected_severity": "P3", "hypothesis": "h"},
    "faults": [{"name": "one", "kind": "inprocess.flag", "params": {"flag": "endpoint-cli"}}],
    "gameday": {"mode": "gameday", "max_duration": "1s", "check_interval": "100ms"},
}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(folder))
    return folder


def scenario_file(tmp_path: Path, **target: str) -> Path:
    path = tmp_path / "gameday.yaml"
    path.write_text(yaml.safe_dump({**GAMEDAY, **({"target": target} if target else {})}))
    return path


def test_a_port_in_use_stops_the_run_before_anything_is_created(tmp_path: Path, state: Path) -> None:
    scenario = scenario_file(tmp_path)
    env = {**os.environ, "CHAOSRUNNER_STATE_DIR": str(state), "PYTHONPATH": str(REPO)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_chaosrunner("run", str(scenario), "--port", str(port), env=env, timeout=60)
    assert result.returncode == 3, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (state / "runs").exists() or not any((state / "runs").iterdir())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--listen", "8765"], "expected HOST:PORT"),
        (["--listen", "0.0.0.0:http"], "expected HOST:PORT"),
        (["--listen", "127.0.0.1:8765", "--port", "8766"], "not both"),
        (["--public-url", "ftp://gameday.example.net"], "--public-url"),
        (["--public-url", "https://gameday.example.net/console?x=1"], "--public-url"),
        (["--public-url", "https://user@gameday.example.net"], "--public-url"),
    ],
)
def test_bad_listen_arguments_are_exit_2(tmp_path: Path, state: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli, ["run", str(scenario_file(tmp_path)), *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not (state / "runs").exists()


class BrokenConsole:
    """A console whose close fails the way rich's did on a note with square brackets."""

    def __call__(self, event: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        raise ValueError("closing tag '[/var/lib/pg]' has nothing to close")


class RecordingPublisher:
    instances: list[RecordingPublisher] = []

    def __init__(self, url: str, title: str) -> None:
        self.closed = False
        RecordingPublisher.instances.append(self)

    def __call__(self, event: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def test_a_console_or_listener_failing_to_close_skips_nothing(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrunner.cli import console
    from chaosrunner.gameday.session import GamedaySession
    from chaosrunner.observe import pushgateway

    really_close = GamedaySession.close

    def broken_close(self: GamedaySession) -> None:
        really_close(self)  # stop the endpoint for real, then fail like a broken listener
        raise RuntimeError("the listener broke")

    monkeypatch.setattr(console, "make_console", lambda runner, force_plain=False: BrokenConsole())
    monkeypatch.setattr(GamedaySession, "close", broken_close)
    monkeypatch.setattr(pushgateway, "ChaosWindowPublisher", RecordingPublisher)
    reports = tmp_path / "reports"
    monkeypatch.setenv("CHAOSRUNNER_REPORTS_DIR", str(reports))
    RecordingPublisher.instances.clear()

    scenario = scenario_file(tmp_path, pushgateway="http://127.0.0.1:9")
    result = CliRunner().invoke(cli, ["run", str(scenario)])

    assert result.exit_code == 1, result.output  # max_duration passed: an abort, not a crash
    assert "aborted" in result.stdout
    assert "team score" in result.stdout  # the gameday summary
    assert "report: " in result.stdout and any(reports.rglob("*.html"))
    assert [publisher.closed for publisher in RecordingPublisher.instances] == [True]
    assert "warning: the console failed: ValueError" in result.stderr
    assert "warning: the gameday session failed: RuntimeError: the listener broke" in result.stderr
    assert "Traceback" not in result.output
