"""Every exit path of `chaosrunner run` reverts real faults on real services.

The scenario pauses a real container and exhausts a real PostgreSQL role's
CONNECTION LIMIT. After each way a run can end - completion, an abort
condition, SIGTERM, SIGINT, SIGHUP, an exception, kill -9 followed by
`chaosrunner recover` - the test looks at the services themselves: the
container must be running (not paused), the role's connections released, and
no holder process left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.support.cli import run_chaosrunner

REPO = Path(__file__).resolve().parents[2]


class Victims:
    def __init__(self, container: Any, role: str, dsn: str) -> None:
        self.container = container
        self.role = role
        self.dsn = dsn

    def paused(self) -> bool:
        self.container.reload()
        return bool(self.container.attrs["State"]["Paused"])

    def role_connections(self) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (self.role,)
            ).fetchone()
        return int(row[0]) if row else 0

    def holders(self) -> list[str]:
        found = subprocess.run(
            ["pgrep", "-f", f"chaosrunner.faults.holder.*{self.role}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return found.stdout.split()

    def clean(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.paused() and self.role_connections() == 0 and not self.holders():
                return True
            time.sleep(0.1)
        return False

    def faulted(self) -> bool:
        return self.paused() and self.role_connections() >= 3


@pytest.fixture
def victims(
    docker_client: Any, test_image: str, unique_name: str, postgres_superuser_dsn: str
) -> Iterator[Victims]:
    container = docker_client.containers.run(
        test_image,
        ["python3", "-c", "import time; time.sleep(10**9)"],
        name=f"{unique_name}-victim",
        labels={"org.chaosrunner.test": unique_name},
        detach=True,
    )
    role = f"{unique_name}_app"
    with psycopg.connect(postgres_superuser_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 3')
    yield Victims(container, role, postgres_superuser_dsn)
    container.remove(force=True)
    with psycopg.connect(postgres_superuser_dsn, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        connection.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def run_env(tmp_path: Path, postgres_superuser_dsn: str) -> dict[str, str]:
    return {
        **os.environ,
        "CHAOSRUNNER_STATE_DIR": str(tmp_path / "state"),
        "EXIT_PATHS_DSN": postgres_superuser_dsn,
    }


def write_scenario(
    tmp_path: Path, victims: Victims, prometheus_url: str, job: str, duration: str = "30s"
) -> Path:
    data = {
        "metadata": {"title": "exit paths", "owner": "tests", "expected_severity": "P3", "hypothesis": "h"},
        "target": {"prometheus": prometheus_url, "postgres": {"dsn_env": "EXIT_PATHS_DSN"}},
        "faults": [
            {
                "name": "pause",
                "kind": "docker.container-pause",
                "selector": {"name": victims.container.name},
                "duration": duration,
            },
            {
                "name": "exhaust",
                "kind": "postgres.connection-exhaustion",
                "params": {"role": victims.role},
                "duration": duration,
            },
        ],
        "abort_conditions": [
            {
                "name": "trigger",
                "expr": f'max(chaosrunner_test_errors{{job="{job}"}})',
                "comparator": ">",
                "threshold": 5,
            }
        ],
        "gameday": {"max_duration": "2m"},
    }
    path = tmp_path / "exit-paths.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start(env: dict[str, str], scenario: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "run", "--plain", str(scenario)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    injected = 0
    for line in process.stdout:
        injected += "] injected " in line
        if injected == 2:
            return process
    raise AssertionError("the run ended before both faults were injected")


def journal(env: dict[str, str]) -> list[dict]:
    [run] = list((Path(env["CHAOSRUNNER_STATE_DIR"]) / "runs").iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


@pytest.fixture
def armed(tmp_path: Path, victims: Victims, prometheus_url: str, pushgateway: Any, rig: Any) -> Path:
    pushgateway.push("chaosrunner_test_errors", 0)
    rig.wait_for(
        lambda: rig.prom_query(prometheus_url, f'chaosrunner_test_errors{{job="{pushgateway.job}"}}'),
        timeout=20,
    )
    return write_scenario(tmp_path, victims, prometheus_url, pushgateway.job)


def test_completion_reverts(
    tmp_path: Path, victims: Victims, prometheus_url: str, pushgateway: Any, rig: Any, run_env: dict[str, str]
) -> None:
    pushgateway.push("chaosrunner_test_errors", 0)
    rig.wait_for(
        lambda: rig.prom_query(prometheus_url, f'chaosrunner_test_errors{{job="{pushgateway.job}"}}'),
        timeout=20,
    )
    scenario = write_scenario(tmp_path, victims, prometheus_url, pushgateway.job, duration="3s")
    process = start(run_env, scenario)
    assert victims.faulted()
    process.communicate(timeout=60)
    assert process.returncode == 0
    assert victims.clean()


def test_an_abort_condition_reverts(
    armed: Path, victims: Victims, pushgateway: Any, run_env: dict[str, str]
) -> None:
    process = start(run_env, armed)
    assert victims.faulted()
    pushgateway.push("chaosrunner_test_errors", 50)
    process.communicate(timeout=60)
    assert process.returncode == 1
    assert next(e for e in journal(run_env) if e["type"] == "abort")["cause"] == "condition"
    assert victims.clean()


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: signal.Signals(s).name
)
def test_a_signal_reverts(armed: Path, victims: Victims, run_env: dict[str, str], signum: int) -> None:
    process = start(run_env, armed)
    assert victims.faulted()
    process.send_signal(signum)
    process.communicate(timeout=60)
    assert process.returncode == 1
    assert victims.clean()


BUGGY_RUNNER = """
import sys
from chaosrunner.engine import runner

original = runner.Runner._set_fault_view

def buggy(self, name, state):
    original(self, name, state)
    if state == "injecting" and name == "exhaust":
        raise RuntimeError("a bug in the main loop")

runner.Runner._set_fault_view = buggy
from chaosrunner.cli import main
sys.argv = ["chaosrunner", *sys.argv[1:]]
main()
"""


def test_an_exception_in_the_runner_reverts(armed: Path, victims: Victims, run_env: dict[str, str]) -> None:
    # A bug that raises in the main loop while both faults are being injected.
    process = subprocess.run(
        [sys.executable, "-c", BUGGY_RUNNER, "run", "--plain", str(armed)],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 1, process.stdout + process.stderr
    assert "a bug in the main loop" in process.stderr
    events = journal(run_env)
    assert next(e for e in events if e["type"] == "abort")["cause"] == "error"
    # an inject still running when the bug struck is reverted again once it returns
    assert {e["fault"] for e in events if e["type"] == "fault_reverted"} == {"exhaust", "pause"}
    for fault in ("exhaust", "pause"):
        mine = [e["type"] for e in events if e.get("fault") == fault]
        assert mine[-1] == "fault_reverted"
    assert victims.clean()


def test_kill_9_then_recover_leaves_nothing(armed: Path, victims: Victims, run_env: dict[str, str]) -> None:
    process = start(run_env, armed)
    assert victims.faulted()
    process.kill()
    process.wait()
    assert victims.faulted()  # nobody reverted yet: the holders keep the faults until their deadline
    recovered = run_chaosrunner("recover", env=run_env)
    assert recovered.returncode == 0, recovered.stderr
    assert "reverted pause" in recovered.stdout and "reverted exhaust" in recovered.stdout
    assert victims.clean()
