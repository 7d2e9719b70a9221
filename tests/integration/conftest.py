"""Fixtures that hand the real services of the test rig to integration tests.

The services are started by ``scripts/services.sh start`` (see scripts/README.md).
Their addresses come from the environment when set (the ``export`` lines printed
by ``scripts/services.sh env``), otherwise from that same command. A fixture whose
service does not answer FAILS (never skips) and says how to start the rig.

Everything a test creates is named from ``unique_name`` and removed afterwards, so
the suite can run twice in a row (and under xdist).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES_SH = REPO / "scripts" / "services.sh"
BUILD_IMAGE_SH = REPO / "scripts" / "build-image.sh"
START_HINT = "run `scripts/services.sh start` (see scripts/README.md)"
TEST_LABEL = "org.chaosrunner.test"

ENV_KEYS = (
    "CHAOSRUNNER_RIG_DIR",
    "CHAOSRUNNER_PROMETHEUS_URL",
    "CHAOSRUNNER_ALERTMANAGER_URL",
    "CHAOSRUNNER_PUSHGATEWAY_URL",
    "CHAOSRUNNER_PG_DSN",
    "CHAOSRUNNER_PGBOUNCER_DSN",
    "CHAOSRUNNER_ALERT_WEBHOOK_PORT",
    "DOCKER_HOST",
)


# --------------------------------------------------------------------- helpers


def http(
    method: str,
    url: str,
    body: bytes | str | None = None,
    *,
    content_type: str = "text/plain",
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Plain urllib request; returns (status, body) and never raises on HTTP errors."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, *, timeout: float = 5.0) -> Any:
    status, body = http("GET", url, timeout=timeout)
    assert status == 200, f"GET {url} -> {status}: {body[:300]!r}"
    return json.loads(body)


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.25, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # keep polling: services answer eventually
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout}s waiting for {what or predicate!r}"
            if last_exc is not None:
                msg += f" (last error: {last_exc!r})"
            pytest.fail(msg)
        time.sleep(interval)


def prom_query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query; returns the result vector."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    data = http_json(url)
    assert data["status"] == "success", data
    return list(data["data"]["result"])


def _require(ok: bool, service: str, address: str, detail: str = "") -> None:
    if not ok:
        pytest.fail(
            f"{service} is not answering at {address}{': ' + detail if detail else ''}; {START_HINT}",
            pytrace=False,
        )


def _http_ready(url: str) -> tuple[bool, str]:
    try:
        status, body = http("GET", url, timeout=3)
    except OSError as exc:
        return False, repr(exc)
    return status == 200, f"HTTP {status} {body[:200]!r}"


class RigTools:
    """The helpers above, handed to tests by the ``rig`` fixture (conftest.py is not
    importable from test modules: tests/ has no packages)."""

    http = staticmethod(http)
    http_json = staticmethod(http_json)
    wait_for = staticmethod(wait_for)
    prom_query = staticmethod(prom_query)


@pytest.fixture(scope="session")
def rig() -> RigTools:
    """Helpers: ``rig.http``, ``rig.http_json``, ``rig.wait_for``, ``rig.prom_query``."""
    return RigTools()


# --------------------------------------------------------------------- the rig


@pytest.fixture(scope="session")
def rig_env() -> dict[str, str]:
    """The rig's addresses: env vars win, else the defaults of `services.sh env`."""
    env: dict[str, str] = {}
    if not all(os.environ.get(k) for k in ENV_KEYS):
        proc = subprocess.run(["bash", str(SERVICES_SH), "env"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.fail(f"`scripts/services.sh env` failed: {proc.stderr}", pytrace=False)
        for line in proc.stdout.splitlines():
            parts = shlex.split(line)
            if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
                key, _, value = parts[1].partition("=")
                env[key] = value
    for key in ENV_KEYS:
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


@pytest.fixture(scope="session")
def rig_dir(rig_env: dict[str, str]) -> Path:
    path = Path(rig_env["CHAOSRUNNER_RIG_DIR"])
    _require(path.is_dir(), "the rig", str(path), "rig directory missing")
    return path


@pytest.fixture(scope="session")
def prometheus_url(rig_env: dict[str, str]) -> str:
    url = rig_env["CHAOSRUNNER_PROMETHEUS_URL"].rstrip("/")
    ok, detail = _http_ready(f"{url}/-/ready")
    _require(ok, "Prometheus", url, detail)
    return url


@pytest.fixture(scope="session")
def alertmanager_url(rig_env: dict[str, str]) -> str:
    url = rig_env["CHAOSRUNNER_ALERTMANAGER_URL"].rstrip("/")
    ok, detail = _http_ready(f"{url}/-/ready")
    _require(ok, "Alertmanager", url, detail)
    return url


@pytest.fixture(scope="session")
def pushgateway_url(rig_env: dict[str, str]) -> str:
    url = rig_env["CHAOSRUNNER_PUSHGATEWAY_URL"].rstrip("/")
    ok, detail = _http_ready(f"{url}/-/ready")
    _require(ok, "Pushgateway", url, detail)
    return url


@pytest.fixture(scope="session")
def docker_client(rig_env: dict[str, str]) -> Iterator[Any]:
    host = rig_env["DOCKER_HOST"]
    try:
        client = docker.DockerClient(base_url=host, timeout=60)
        client.ping()
    except Exception as exc:
        _require(False, "dockerd", host, repr(exc))
    yield client
    client.close()


@pytest.fixture()
def unique_name(request: pytest.FixtureRequest) -> str:
    """Short unique lowercase name for this test: container names, labels, jobs, DBs."""
    return f"crt{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def test_labels(unique_name: str, docker_client: Any) -> Iterator[dict[str, str]]:
    """Docker labels for this test; containers/networks carrying them are removed after."""
    labels = {TEST_LABEL: unique_name}
    yield labels
    flt = {"label": f"{TEST_LABEL}={unique_name}"}
    for container in docker_client.containers.list(all=True, filters=flt):
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
    for network in docker_client.networks.list(filters=flt):
        with contextlib.suppress(Exception):
            network.remove()


@pytest.fixture(scope="session")
def test_image(docker_client: Any) -> str:
    """A local image with busybox-like basics, iptables/ip and the host python3.

    Tagged by a hash of the build script and the python version, so a change to
    either builds a fresh image; otherwise the existing one is reused.
    """
    digest = hashlib.sha256(BUILD_IMAGE_SH.read_bytes() + sys.version.encode()).hexdigest()[:12]
    name = f"chaosrunner-rig-python:{digest}"
    env = dict(os.environ, CHAOSRUNNER_IMAGE_PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(BUILD_IMAGE_SH), name, "--with-python"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-image.sh failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    # drop images of older build scripts (ignore those still in use)
    repo = name.split(":", maxsplit=1)[0]
    for image in docker_client.images.list(name=repo):
        if name not in image.tags:
            with contextlib.suppress(Exception):
                docker_client.images.remove(image.id)
    return name


# --------------------------------------------------------------------- PostgreSQL


def _with_dbname(dsn: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))


def _pg_check(dsn: str, service: str) -> None:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        _require(False, service, dsn, repr(exc))


@pytest.fixture(scope="session")
def postgres_superuser_dsn(rig_env: dict[str, str]) -> str:
    """Superuser DSN to the rig's `postgres` database (do not leave objects behind)."""
    dsn = rig_env["CHAOSRUNNER_PG_DSN"]
    _pg_check(dsn, "PostgreSQL")
    return dsn


@pytest.fixture(scope="session")
def pgbouncer_base_dsn(rig_env: dict[str, str]) -> str:
    dsn = rig_env["CHAOSRUNNER_PGBOUNCER_DSN"]
    _pg_check(dsn, "pgbouncer")
    return dsn


@pytest.fixture()
def postgres_dsn(postgres_superuser_dsn: str, unique_name: str) -> Iterator[str]:
    """Superuser DSN to a fresh database created for this test and dropped after."""
    with psycopg.connect(postgres_superuser_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{unique_name}"')
    yield _with_dbname(postgres_superuser_dsn, unique_name)
    with psycopg.connect(postgres_superuser_dsn, autocommit=True) as conn:
        # FORCE: pgbouncer may still hold server connections to it
        conn.execute(f'DROP DATABASE IF EXISTS "{unique_name}" WITH (FORCE)')


@pytest.fixture()
def pgbouncer_dsn(pgbouncer_base_dsn: str, postgres_dsn: str, unique_name: str) -> str:
    """DSN to this test's database (see postgres_dsn) through pgbouncer."""
    return _with_dbname(pgbouncer_base_dsn, unique_name)


# --------------------------------------------------------------------- Prometheus


class PrometheusRules:
    """Write rule files for one test into the rig's rule dir and reload Prometheus."""

    def __init__(self, prometheus_url: str, rules_dir: Path, prefix: str) -> None:
        self.url = prometheus_url
        self.dir = rules_dir
        self.prefix = prefix
        self.files: list[Path] = []

    def add(self, groups: list[dict[str, Any]] | str, *, wait: bool = True) -> Path:
        """Add a rule file: a list of rule groups (dicts) or a YAML text.

        Group names should start with the test's unique name. With ``wait`` the
        call returns once Prometheus reports the groups as loaded.
        """
        path = self.dir / f"{self.prefix}-{len(self.files)}.yml"
        text = groups if isinstance(groups, str) else json.dumps({"groups": groups}, indent=1)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        self.files.append(path)
        self.reload()
        if wait and not isinstance(groups, str):
            names = {g["name"] for g in groups}
            wait_for(
                lambda: names <= self.loaded_groups(),
                timeout=15,
                what=f"Prometheus to load rule groups {sorted(names)}",
            )
        return path

    def loaded_groups(self) -> set[str]:
        data = http_json(f"{self.url}/api/v1/rules")
        return {g["name"] for g in data["data"]["groups"]}

    def reload(self) -> None:
        status, body = http("POST", f"{self.url}/-/reload", b"", timeout=15)
        assert status == 200, f"Prometheus reload failed: {status} {body[:500]!r}"

    def cleanup(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        if self.files:
            self.reload()
        self.files.clear()


@pytest.fixture()
def prometheus_rules(prometheus_url: str, rig_dir: Path, unique_name: str) -> Iterator[PrometheusRules]:
    rules = PrometheusRules(prometheus_url, rig_dir / "prometheus" / "rules", unique_name)
    yield rules
    rules.cleanup()


class ScrapeTargets:
    """Register file_sd scrape targets for one test (job label = unique name)."""

    def __init__(self, prometheus_url: str, targets_dir: Path, job: str) -> None:
        self.url = prometheus_url
        self.dir = targets_dir
        self.job = job
        self.files: list[Path] = []

    def add(self, *targets: str, labels: dict[str, str] | None = None) -> str:
        """Scrape ``host:port`` targets under this test's job; returns the job name."""
        path = self.dir / f"{self.job}-{len(self.files)}.json"
        doc = [{"targets": list(targets), "labels": {"job": self.job, **(labels or {})}}]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)
        self.files.append(path)
        return self.job

    def wait_up(self, timeout: float = 20.0) -> None:
        """Wait until every target of this job has been scraped successfully."""

        def all_up() -> bool:
            result = prom_query(self.url, f'up{{job="{self.job}"}}')
            return bool(result) and all(r["value"][1] == "1" for r in result)

        wait_for(all_up, timeout=timeout, what=f"up{{job={self.job!r}}} == 1")

    def cleanup(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        self.files.clear()


@pytest.fixture()
def scrape_target(prometheus_url: str, rig_dir: Path, unique_name: str) -> Iterator[ScrapeTargets]:
    targets = ScrapeTargets(prometheus_url, rig_dir / "prometheus" / "targets", unique_name)
    yield targets
    targets.cleanup()


class Pushgateway:
    """Push metrics under this test's job; the groups are deleted afterwards."""

    def __init__(self, url: str, job: str) -> None:
        self.url = url
        self.job = job
        self.groups: set[str] = set()

    def push(
        self,
        name: str,
        value: float,
        labels: dict[str, str] | None = None,
        *,
        metric_type: str = "gauge",
        instance: str | None = None,
    ) -> str:
        """Replace the metric group (job, instance) with one sample; returns the job."""
        group = f"/metrics/job/{urllib.parse.quote(self.job, safe='')}"
        if instance is not None:
            group += f"/instance/{urllib.parse.quote(instance, safe='')}"
        lbl = ",".join(f'{k}="{v}"' for k, v in (labels or {}).items())
        body = f"# TYPE {name} {metric_type}\n{name}{{{lbl}}} {value}\n"
        status, resp = http("PUT", self.url + group, body)
        assert status in (200, 202), f"push to {group} failed: {status} {resp[:300]!r}"
        self.groups.add(group)
        return self.job

    def cleanup(self) -> None:
        for group in self.groups:
            with contextlib.suppress(OSError):
                http("DELETE", self.url + group)
        self.groups.clear()


@pytest.fixture()
def pushgateway(pushgateway_url: str, unique_name: str) -> Iterator[Pushgateway]:
    gw = Pushgateway(pushgateway_url, unique_name)
    yield gw
    gw.cleanup()
