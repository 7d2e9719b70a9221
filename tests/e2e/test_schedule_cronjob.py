"""Scheduled chaos as Kubernetes CronJobs, on the real test cluster.

Export a schedule, apply the manifests (ConfigMap, ServiceAccount, CronJob;
no Role for a schedule without Kubernetes faults) to the cluster built by scripts/kube-cluster.sh, start a
Job from the CronJob, and see chaosrunner run in a pod to completion. The pod
image is built locally (no registry): the host's Python, the package source
and the few libraries a run imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "scripts" / "kube-cluster.sh"
IMAGE = "chaosrunner/cronjob-e2e:latest"
RUNTIME_MODULES = (
    "click",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
    "yaml",
    "tenacity",
    "jinja2",
    "markupsafe",
    "certifi",
)


def kubectl(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER), "kubectl", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


@pytest.fixture(scope="module")
def cluster() -> None:
    subprocess.run([str(CLUSTER), "build"], check=True, capture_output=True, timeout=1800)
    subprocess.run([str(CLUSTER), "start"], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("image")
    wrapper = folder / "chaosrunner"
    wrapper.write_text('#!/bin/sh\nPYTHONPATH=/opt/chaosrunner exec python3 -m chaosrunner "$@"\n')
    wrapper.chmod(0o755)
    argv = [
        str(REPO / "scripts" / "build-image.sh"),
        IMAGE,
        "--with-python",
        "--force",
        "--add",
        f"{REPO / 'chaosrunner'}:/opt/chaosrunner/chaosrunner",
        "--add",
        f"{wrapper}:/usr/local/bin/chaosrunner",
    ]
    for module in RUNTIME_MODULES:
        argv += ["--with-package", module]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return IMAGE


@pytest.fixture
def namespace(cluster: None) -> Iterator[str]:
    name = f"sched-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_cronjob_runs_chaosrunner_in_a_pod_to_completion(
    tmp_path: Path, namespace: str, image: str
) -> None:
    scenario = {
        "metadata": {
            "title": "cronjob smoke",
            "owner": "tests",
            "expected_severity": "P3",
            "hypothesis": "a scheduled run completes in a pod",
        },
        "faults": [{"name": "flag", "kind": "inprocess.flag", "params": {"flag": "cron"}, "duration": "2s"}],
    }
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(scenario))
    schedule = {
        "kind": "Schedule",
        "name": "cron-e2e",
        "entries": [{"name": "smoke", "scenario": "smoke.yaml", "cron": "*/5 * * * *"}],
    }
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosrunner",
            "schedule",
            "export",
            str(tmp_path / "schedule.yaml"),
            "--kubernetes",
            "--namespace",
            namespace,
            "--image",
            image,
            "--kubernetes-version",
            "1.20",
            "--out",
            str(tmp_path / "k8s"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert "wrote 3 manifests" in exported.stdout  # ConfigMap, ServiceAccount, CronJob
    manifests = list(yaml.safe_load_all((tmp_path / "k8s" / "manifests.yaml").read_text()))
    cronjob = next(m for m in manifests if m["kind"] == "CronJob")
    assert cronjob["apiVersion"] == "batch/v1beta1"  # 1.20 has no batch/v1 CronJob
    assert (
        cronjob["spec"]["concurrencyPolicy"] == "Forbid" and cronjob["spec"]["startingDeadlineSeconds"] == 120
    )
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 35 * 60
    assert not [m for m in manifests if m["kind"] in ("Role", "ClusterRole", "Secret")]  # no k8s faults

    kubectl("apply", "-f", str(tmp_path / "k8s" / "manifests.yaml"))
    name = cronjob["metadata"]["name"]
    kubectl("create", "job", f"--from=cronjob/{name}", "manual-run", "-n", namespace)
    waited = kubectl(
        "wait", "--for=condition=complete", "job/manual-run", "-n", namespace, "--timeout=150s", check=False
    )
    logs = kubectl("logs", "job/manual-run", "-n", namespace, check=False).stdout
    assert waited.returncode == 0, (
        waited.stderr,
        logs,
        kubectl("describe", "job/manual-run", "-n", namespace, check=False).stdout[-2000:],
    )
    assert "run finished: completed" in logs and "completed: the hypothesis held" in logs
    assert "report: /var/lib/chaosrunner/reports/" in logs
