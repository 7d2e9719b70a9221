"""Fixtures for the e2e tier's Kubernetes tests: a real control plane and kubelet on this machine.

``kube_cluster`` runs ``scripts/kube-cluster.sh build`` (reuses the cached
binaries; a cold build takes about ten minutes) and ``start`` (idempotent,
about 15 s) once per session and hands over the kubeconfig. Nothing is
stopped at the end: the cluster is shared by the session's tests and cheap to
keep. A cluster that cannot start FAILS the tests that asked for it, with the
script's output, instead of skipping them.

``kube_agent_image`` builds the in-cluster agent image
(``chaosrunner/kube-agent:<digest of the chaosrunner sources>``) with
``scripts/build-image.sh``: the host's python, pydantic and psycopg, and this
checkout's ``chaosrunner`` package, so the agent in a pod runs the code under
test. A tag per source digest means a changed source gets a fresh image and an
unchanged one is reused; images of older digests are removed.

``kube_namespace`` is a fresh namespace per test, annotated
``chaosrunner.io/allow-chaos=true`` and deleted afterwards (in the background).
"""

from __future__ import annotations

import hashlib
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.faults.kubernetes.api import KubeApi
from chaosrunner.faults.kubernetes.client import open_api
from chaosrunner.faults.kubernetes.target import resolve
from tests.e2e.kube_helpers import KubeCluster, chaos_namespace

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "scripts" / "kube-cluster.sh"
BUILD_IMAGE_SH = REPO / "scripts" / "build-image.sh"
AGENT_REPOSITORY = "chaosrunner/kube-agent"
AGENT_MODULES = (
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
    "psycopg",
    "psycopg_binary",
)


def _script(*args: str, timeout: float) -> str:
    done = subprocess.run(
        [str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        pytest.fail(f"scripts/kube-cluster.sh {' '.join(args)} failed ({done.returncode}):\n{tail}")
    return done.stdout


@pytest.fixture(scope="session")
def kube_cluster() -> KubeCluster:
    _script("build", timeout=1800)
    _script("start", timeout=300)
    for line in _script("env", timeout=30).splitlines():
        if line.startswith("export KUBECONFIG="):
            return KubeCluster(Path(line.split("=", 1)[1].strip()))
    pytest.fail("scripts/kube-cluster.sh env printed no KUBECONFIG")


@pytest.fixture(scope="session")
def kube_api(kube_cluster: KubeCluster) -> Iterator[KubeApi]:
    api = open_api(resolve(kube_cluster.connection()))
    yield api
    api.close()


def source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO / "chaosrunner").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def agent_image_argv(name: str) -> list[str]:
    site = sysconfig.get_paths()["purelib"]
    argv = [str(BUILD_IMAGE_SH), name, "--with-python"]
    for module in AGENT_MODULES:
        argv += ["--with-package", module]
    return [*argv, "--add", f"{REPO / 'chaosrunner'}:{site}/chaosrunner"]


@pytest.fixture(scope="session")
def kube_agent_image(kube_cluster: KubeCluster) -> str:
    name = f"{AGENT_REPOSITORY}:{source_digest()}"
    done = subprocess.run(agent_image_argv(name), capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"building {name} failed: {done.stderr[-2000:]}")
    _prune_agent_images(keep=name)
    return name


def _prune_agent_images(keep: str) -> None:
    """Drop agent images of older sources (120 MB each); one still used by a container stays."""
    listed = subprocess.run(
        ["docker", "images", AGENT_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    for image in listed.stdout.split():
        tag = image.rsplit(":", 1)[-1]
        if image != keep and len(tag) == 12 and all(char in "0123456789abcdef" for char in tag):
            subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


@pytest.fixture
def kube_namespace(kube_api: KubeApi) -> Iterator[str]:
    yield from chaos_namespace(kube_api)
