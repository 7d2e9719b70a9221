"""Shared set-up for the engine benchmarks: two real faults on real services.

Each trial runs a scenario with a ``docker.container-pause`` of a container
and a ``postgres.connection-exhaustion`` of a role's CONNECTION LIMIT, under
one abort condition on a metric the benchmark pushes through the rig's
Pushgateway (scraped every second). ``leftovers()`` checks the services
themselves - container state, backends by application_name, holder
processes - never the journal, so "zero faults left" means zero on the system.

Needs the rig: ``scripts/services.sh start`` (``make bench`` does it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMETHEUS = os.environ.get("CHAOSRUNNER_PROMETHEUS_URL", "http://127.0.0.1:19090")
PUSHGATEWAY = os.environ.get("CHAOSRUNNER_PUSHGATEWAY_URL", "http://127.0.0.1:19091")
PG_DSN = os.environ.get("CHAOSRUNNER_PG_DSN", "postgresql://postgres@127.0.0.1:15432/postgres")
IMAGE = "chaosrunner/bench-target:latest"
METRIC = "chaosrunner_bench_trigger"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def push_trigger(job: str, value: float) -> None:
    body = f"# TYPE {METRIC} gauge\n{METRIC} {value}\n".encode()
    request = urllib.request.Request(f"{PUSHGATEWAY}/metrics/job/{job}", data=body, method="PUT")
    urllib.request.urlopen(request, timeout=5).close()


def delete_trigger(job: str) -> None:
    request = urllib.request.Request(f"{PUSHGATEWAY}/metrics/job/{job}", method="DELETE")
    urllib.request.urlopen(request, timeout=5).close()


def own_holders(state_dir: str) -> list[int]:
    """Live holder processes started with this state folder (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            b"chaosrunner.faults.holder" in cmdline
            and state != "Z"
            and (f"CHAOSRUNNER_STATE_DIR={state_dir}".encode() in environ)
        ):
            found.append(int(entry.name))
    return found


class Target:
    """A container to pause and a role to exhaust, created for one benchmark and removed after."""

    def __init__(self, tag: str) -> None:
        import docker
        import psycopg

        self.tag = tag
        self.container_name = f"bench-{tag}"
        self.role = f"bench_{tag}"
        self.job = f"bench-{tag}"
        subprocess.run(
            [str(REPO / "scripts" / "build-image.sh"), IMAGE, "--with-python"],
            check=True,
            capture_output=True,
        )
        self.docker = docker.from_env()
        self.container = self.docker.containers.run(
            IMAGE,
            ["python3", "-c", "import time; time.sleep(10**9)"],
            name=self.container_name,
            detach=True,
            labels={"org.chaosrunner.test": tag},
        )
        self._psycopg = psycopg
        with psycopg.connect(PG_DSN, autocommit=True) as connection:
            connection.execute(f'CREATE ROLE "{self.role}" LOGIN CONNECTION LIMIT 5')
        os.environ["CHAOSRUNNER_BENCH_DSN"] = PG_DSN
        # A state folder of the benchmark's own: its journals, and the mark by which
        # leftovers() recognises this benchmark's holder processes.
        os.environ["CHAOSRUNNER_STATE_DIR"] = tempfile.mkdtemp(prefix="chaosrunner-bench-")

    def scenario(self, folder: Path, *, prometheus: str = PROMETHEUS, duration: str = "20s") -> Path:
        data: dict[str, Any] = {
            "metadata": {
                "title": f"bench {self.tag}",
                "owner": "bench",
                "expected_severity": "P3",
                "hypothesis": "h",
            },
            "target": {"prometheus": prometheus, "postgres": {"dsn_env": "CHAOSRUNNER_BENCH_DSN"}},
            "faults": [
                {
                    "name": "pause",
                    "kind": "docker.container-pause",
                    "selector": {"name": self.container_name},
                    "duration": duration,
                },
                {
                    "name": "exhaust",
                    "kind": "postgres.connection-exhaustion",
                    "params": {"role": self.role},
                    "duration": duration,
                },
            ],
            "abort_conditions": [
                {
                    "name": "trigger",
                    "expr": f'max({METRIC}{{job="{self.job}"}})',
                    "comparator": ">",
                    "threshold": 0.5,
                }
            ],
            "gameday": {"max_duration": "2m"},
        }
        path = folder / f"bench-{self.tag}-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def leftovers(self) -> list[str]:
        """What a fault left on the real services (empty when everything was reverted).

        Only this benchmark's own traces count: other test suites may run on the
        same rig, so backends are matched by the bench role and holder processes by
        the state folder in their environment.
        """
        found = []
        self.container.reload()
        if self.container.attrs["State"]["Paused"]:
            found.append("container still paused")
        with self._psycopg.connect(PG_DSN, autocommit=True) as connection:
            held = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (self.role,)
            ).fetchone()
        if held and held[0]:
            found.append(f"{held[0]} PostgreSQL backends still held")
        holders = own_holders(os.environ["CHAOSRUNNER_STATE_DIR"])
        if holders:
            found.append(f"{len(holders)} holder processes alive")
        return found

    def wait_clean(self, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = self.leftovers()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def close(self) -> None:
        self.container.remove(force=True)
        with self._psycopg.connect(PG_DSN, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.role,)
            )
            connection.execute(f'DROP ROLE IF EXISTS "{self.role}"')
        with contextlib.suppress(OSError):
            delete_trigger(self.job)
