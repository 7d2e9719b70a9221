"""The rig survives a package upgrade: services.sh installs everything first, and restarts
a service whose binary was replaced under it.

What happened on a fresh machine: `make demo` started PostgreSQL, then `make test`
installed the packages of the other services, apt upgraded postgresql-15 with them,
and the running server (its /proc/PID/exe now "... (deleted)") could no longer load
plpgsql.so. These tests use a private Pushgateway instance (own rig folder, own port,
a copy of the binary), never the shared services other tests use.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services.sh"
PUSHGATEWAY = Path("/usr/bin/prometheus-pushgateway")


def services(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def replace_like_dpkg(path: Path) -> None:
    """Unpack a new file beside it and rename it over: the running process keeps the old inode."""
    fresh = path.with_name(path.name + ".dpkg-new")
    shutil.copy2(PUSHGATEWAY, fresh)
    fresh.rename(path)


@pytest.fixture()
def binary_copy(tmp_path: Path) -> Path:
    if not PUSHGATEWAY.exists():
        pytest.fail(f"{PUSHGATEWAY} missing: run scripts/services.sh start")
    copy = tmp_path / "bin" / "prometheus-pushgateway"
    copy.parent.mkdir()
    shutil.copy2(PUSHGATEWAY, copy)
    return copy


def test_binary_state_says_replaced_once_the_running_binary_is_gone(binary_copy: Path) -> None:
    process = subprocess.Popen(
        [str(binary_copy), f"--web.listen-address=127.0.0.1:{free_port()}", "--log.level=error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert services("binary-state", str(process.pid)).stdout == "current\n"
        replace_like_dpkg(binary_copy)
        replaced = services("binary-state", str(process.pid))
        assert replaced.returncode == 0 and replaced.stdout == "replaced\n", replaced.stderr
        binary_copy.unlink()  # removed outright, as when a package drops a file
        assert services("binary-state", str(process.pid)).stdout == "replaced\n"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert services("binary-state", str(process.pid)).stdout == "gone\n"


@pytest.fixture()
def private_rig(tmp_path: Path, binary_copy: Path) -> Iterator[dict[str, str]]:
    env = {
        "CHAOSRUNNER_RIG_DIR": str(tmp_path / "rig"),
        "CHAOSRUNNER_PUSHGATEWAY_PORT": str(free_port()),
        "CHAOSRUNNER_PUSHGATEWAY_BIN": str(binary_copy),
    }
    yield env
    services("stop", "pushgateway", env=env)


def rig_pid(env: dict[str, str]) -> int:
    return int((Path(env["CHAOSRUNNER_RIG_DIR"]) / "run" / "pushgateway.pid").read_text())


def test_start_restarts_a_service_whose_binary_was_replaced(
    private_rig: dict[str, str], binary_copy: Path
) -> None:
    started = services("start", "pushgateway", env=private_rig)
    assert started.returncode == 0, started.stderr
    first = rig_pid(private_rig)
    assert os.readlink(f"/proc/{first}/exe") == str(binary_copy)

    again = services("start", "pushgateway", env=private_rig)  # nothing replaced: left alone
    assert again.returncode == 0 and rig_pid(private_rig) == first, again.stderr

    replace_like_dpkg(binary_copy)
    assert os.readlink(f"/proc/{first}/exe").endswith(" (deleted)")
    restarted = services("start", "pushgateway", env=private_rig)
    assert restarted.returncode == 0, restarted.stderr
    assert "binary was replaced" in restarted.stderr
    second = rig_pid(private_rig)
    assert second != first and os.readlink(f"/proc/{second}/exe") == str(binary_copy)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{first}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{first}").exists(), "the old instance is still running"
    status = services("status", "pushgateway", env=private_rig)
    assert status.returncode == 0 and f"pid {second}" in status.stdout


def test_every_start_installs_the_packages_of_every_service() -> None:
    # `make demo` starts four services and `make test` all six: both must install the same
    # packages, so the second never runs apt under servers the first started.
    everything = services("packages")
    assert everything.returncode == 0, everything.stderr
    needed = dict(line.split(":", 1) for line in everything.stdout.splitlines())
    packages = set(needed["needed"].split())
    assert {
        "docker.io",
        "iptables",
        "postgresql-15",
        "postgresql-client-15",
        "pgbouncer",
        "prometheus",
        "prometheus-alertmanager",
        "prometheus-pushgateway",
        "curl",
    } <= packages
    for subset in (["postgres"], ["postgres", "prometheus", "alertmanager", "pushgateway"], ["docker"]):
        assert services("packages", *subset).stdout == everything.stdout, subset
    # the rig is up: nothing is missing, so a start runs no apt-get at all
    assert needed["missing"].split() == []


def test_starting_other_services_also_restarts_a_replaced_one(
    private_rig: dict[str, str], binary_copy: Path
) -> None:
    # The install a start runs may upgrade any service, not only the ones it was asked for.
    # (`start docker` here finds the shared dockerd answering and leaves it alone.)
    assert services("start", "pushgateway", env=private_rig).returncode == 0
    first = rig_pid(private_rig)
    replace_like_dpkg(binary_copy)
    other = services("start", "docker", env=private_rig)
    assert other.returncode == 0, other.stderr
    assert "restarting pushgateway" in other.stderr and rig_pid(private_rig) != first
