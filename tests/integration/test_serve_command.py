"""`chaosrunner serve` as a person starts it: past runs of a real state folder, read-only, behind a token.

A real (automated) run of the `inprocess.flag` fault makes the state folder,
with a `detected` mark made afterwards for the moment it happened, so the run
list has a TTD to show. Then `chaosrunner serve` runs as its own process: the
test reads the address and token from its one stderr line and asks what the
console page asks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]
SERVE_LINE = re.compile(r"chaosrunner serve: (http://127\.0\.0\.1:(\d+))/#token=([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve") / "state"


@pytest.fixture(scope="module")
def env(state: Path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if key != "CHAOSRUNNER_TOKEN"}
    return {**clean, "CHAOSRUNNER_STATE_DIR": str(state), "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def finished_run(state: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("scenario")
    scenario = folder / "serve-me.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "metadata": {
                    "title": "Served <b>run</b>",
                    "owner": "tests",
                    "expected_severity": "P3",
                    "hypothesis": "h",
                },
                "faults": [
                    {
                        "name": "flag",
                        "kind": "inprocess.flag",
                        "params": {"flag": "serve-run"},
                        "duration": "5s",
                    }
                ],
            }
        )
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", str(scenario)],
        env=env,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        for line in runner.stdout:
            if "injected flag" in line:
                break
        [run_folder] = list((state / "runs").iterdir())
        # Detected while the fault is in place: the run's own report then keeps the figure.
        marked = run_chaosrunner("mark", run_folder.name, "detected", "--by", "alice", env=env, cwd=folder)
        assert marked.returncode == 0, marked.stderr
        rest, errors = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, rest + errors
    return run_folder.name


class Served:
    def __init__(self, process: subprocess.Popen[str], base: str, port: int, token: str) -> None:
        self.process = process
        self.base = base
        self.port = port
        self.token = token

    def get(self, path: str, token: str | None = "") -> tuple[int, str, Any]:
        """(status, body, headers - looked up without regard to case)."""
        headers = {}
        presented = self.token if token == "" else token
        if presented is not None:
            headers["Authorization"] = f"Bearer {presented}"
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers

    def json(self, path: str) -> Any:
        status, body, _ = self.get(path)
        assert status == 200, body
        return json.loads(body)


def start_serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], re.Match[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()  # the first line is the address, or why there is none
    found = SERVE_LINE.search(line)
    if found is None:
        process.kill()
        raise AssertionError(f"no address in {line!r}: {process.communicate(timeout=10)}")
    return process, found


@pytest.fixture
def served(env: dict[str, str], finished_run: str) -> Iterator[Served]:
    process, found = start_serve(env)
    try:
        yield Served(process, found.group(1), int(found.group(2)), found.group(3))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_token_is_needed_for_everything_but_the_page_shell(served: Served) -> None:
    for path in ("/api/run", "/api/runs", f"/api/runs/{served_run_id(served)}/report"):
        status, body, headers = served.get(path, token=None)
        assert status == 401, path
        assert "Served" not in body and "alice" not in body
        wrong, _, _ = served.get(path, token="x" * 43)
        assert wrong == 401, path
    shell, page, headers = served.get("/", token=None)
    assert shell == 200 and "Served" not in page
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def served_run_id(served: Served) -> str:
    return str(served.json("/api/runs")[0]["run_id"])


def test_the_run_list_is_what_history_shows(served: Served, finished_run: str, env: dict[str, str]) -> None:
    status, body, _ = served.get("/api/run")
    assert status == 200 and json.loads(body) == {"serve": True}

    [row] = served.json("/api/runs")
    assert row["run_id"] == finished_run
    assert row["title"] == "Served <b>run</b>"
    assert row["status"] == "completed"
    assert row["ttd_s"] is not None and 0 < row["ttd_s"] < 5  # alice's mark
    assert set(row) == {"run_id", "title", "started", "status", "ttd_s", "ttm_s", "score", "grade"}

    history = run_chaosrunner("history", "--json", env=env)
    [entry] = json.loads(history.stdout)
    assert (entry["run_id"], entry["started"], entry["ttd_seconds"], entry["score"]) == (
        row["run_id"],
        row["started"],
        row["ttd_s"],
        row["score"],
    )


def test_a_report_is_rendered_on_demand_and_unknown_runs_are_404(served: Served, finished_run: str) -> None:
    status, html, headers = served.get(f"/api/runs/{finished_run}/report")
    assert status == 200, html
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert finished_run in html and "alice" in html
    assert "Served &lt;b&gt;run&lt;/b&gt;" in html and "Served <b>run</b>" not in html  # text, not markup

    for unknown in ("20000101-000000-abcdef", "..%2F..%2Fetc", "not-a-run", f"{finished_run}x"):
        code, body, _ = served.get(f"/api/runs/{unknown}/report")
        assert code == 404, unknown
        assert "error" in json.loads(body)


def test_ctrl_c_stops_serve_promptly_with_exit_0(env: dict[str, str], finished_run: str) -> None:
    for stop in (signal.SIGINT, signal.SIGTERM):
        process, found = start_serve(env, "--port", "0")
        port = int(found.group(2))
        started = time.monotonic()
        process.send_signal(stop)
        _, errors = process.communicate(timeout=15)
        assert process.returncode == 0, errors
        assert time.monotonic() - started < 10
        assert "Traceback" not in errors
        with pytest.raises(OSError):  # nobody listens there any more
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)


def test_the_token_is_fresh_per_process_and_written_nowhere(
    env: dict[str, str], state: Path, finished_run: str
) -> None:
    first, found_first = start_serve(env)
    second, found_second = start_serve(env)
    try:
        assert found_first.group(3) != found_second.group(3)
        assert len(found_first.group(3)) >= 43  # 256 bits, URL-safe base64
        for path in state.rglob("*"):
            if path.is_file():
                assert found_first.group(3) not in path.read_text(errors="replace"), path
    finally:
        for process in (first, second):
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=15)


def test_bad_arguments_exit_2_without_a_traceback(env: dict[str, str]) -> None:
    both = run_chaosrunner("serve", "--port", "0", "--listen", "127.0.0.1:0", env=env)
    assert both.returncode == 2 and "not both" in both.stderr
    bad = run_chaosrunner("serve", "--listen", "nowhere", env=env)
    assert bad.returncode == 2 and "--listen" in bad.stderr
    assert "Traceback" not in both.stderr + bad.stderr
