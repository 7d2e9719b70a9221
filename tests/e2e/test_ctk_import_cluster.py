"""A Chaos Toolkit pod-termination experiment, imported, runs on the test cluster and kills the pods it names.

The experiment is written the way chaostoolkit-kubernetes users write them:
``terminate_pods`` by label selector in a namespace taken from
``configuration``, with ``qty: 2``, an HTTP steady-state probe (our stand-in
for the service's health endpoint, served on loopback by the test: pods on
this cluster have no routable network) and a Prometheus probe on the local
Prometheus. ``chaosrunner import ctk`` turns it into a scenario, and
``chaosrunner run`` must probe the HTTP check before and after, delete
exactly the two labelled pods and leave the other Deployment alone.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.faults.kubernetes.api import KubeApi
from tests.e2e.kube_helpers import KubeCluster, deploy, pod_gone, wait_available, wait_for
from tests.support.cli import run_chaosrunner


def chaosrunner(*args: str, env: dict[str, str]) -> Any:
    return run_chaosrunner(*args, env=env, timeout=300)


def journal_events(state: Path) -> list[dict[str, Any]]:
    (journal,) = state.glob("runs/*/journal.jsonl")
    return [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]


class Health(BaseHTTPRequestHandler):
    requests = 0

    def do_GET(self) -> None:
        Health.requests += 1
        body = b'{"status": "UP"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def health_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def experiment(namespace: str, url: str) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "title": "Web survives losing two pods",
        "description": "Two web pods are terminated; the ReplicaSet replaces them.",
        "configuration": {"prometheus_base_url": "http://127.0.0.1:19090", "ns": namespace, "health": url},
        "steady-state-hypothesis": {
            "title": "Web answers UP",
            "probes": [
                {
                    "type": "probe",
                    "name": "web-answers-up",
                    "tolerance": {"type": "jsonpath", "path": "$.status", "expect": "UP", "target": "body"},
                    "provider": {"type": "http", "url": "${health}", "timeout": 3},
                },
                {
                    "type": "probe",
                    "name": "prometheus-up",
                    "tolerance": {"type": "jsonpath", "path": "$.data.result[0].value[1]", "expect": "1"},
                    "provider": {
                        "type": "python",
                        "module": "chaosprometheus.probes",
                        "func": "query",
                        "arguments": {"query": 'min(up{job="prometheus"})'},
                    },
                },
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "terminate-web-pods",
                "provider": {
                    "type": "python",
                    "module": "chaosk8s.pod.actions",
                    "func": "terminate_pods",
                    "arguments": {"label_selector": "app=web", "ns": "${ns}", "qty": 2, "grace_period": 1},
                },
                "pauses": {"after": 5},
            }
        ],
        "rollbacks": [],
    }


def test_an_imported_pod_termination_experiment_kills_the_pods_it_names(
    kube_cluster: KubeCluster, kube_api: KubeApi, kube_namespace: str, health_url: str, tmp_path: Path
) -> None:
    web = {pod["metadata"]["name"] for pod in deploy(kube_api, kube_namespace, "web", replicas=2)}
    bystanders = {pod["metadata"]["name"] for pod in deploy(kube_api, kube_namespace, "api", replicas=1)}
    source = tmp_path / "experiment.json"
    source.write_text(json.dumps(experiment(kube_namespace, health_url), indent=2))
    scenario = tmp_path / "scenario.yaml"
    state = tmp_path / "state"
    env = {**os.environ, **kube_cluster.env(), "CHAOSRUNNER_STATE_DIR": str(state)}

    imported = chaosrunner("import", "ctk", str(source), "-o", str(scenario), env=env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    validated = chaosrunner("validate", str(scenario), env=env)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    ran = chaosrunner("run", "--plain", str(scenario), env=env)
    output = ran.stdout + ran.stderr
    print(f"\n{output}")
    assert ran.returncode == 0, output

    events = journal_events(state)
    (injected,) = [event for event in events if event["type"] == "fault_injected"]
    assert injected["kind"] == "kubernetes.pod-kill" and injected["fault"] == "terminate-web-pods"
    killed = {o["name"] for o in injected["revert_record"]["outcomes"] if o["outcome"] == "killed"}
    assert killed == web  # qty 2: both labelled pods, and nothing else
    wait_for("the killed pods gone", lambda: all(pod_gone(kube_api, kube_namespace, name) for name in web))
    # The HTTP steady-state check held before injecting, and again (with the rest) after the revert.
    (before,) = [e for e in events if e["type"] == "check" and e["name"] == "steady state web-answers-up"]
    assert before["ok"] is True
    returned = [e for e in events if e["type"] == "check" and e["name"] == "steady state returned"]
    assert returned and returned[-1]["ok"] is True
    assert Health.requests >= 2
    # The other Deployment was never touched; web is whole again with new pods.
    assert {pod["metadata"]["name"] for pod in wait_available(kube_api, kube_namespace, "api")} == bystanders
    replacements = {pod["metadata"]["name"] for pod in wait_available(kube_api, kube_namespace, "web")}
    assert len(replacements) == 2 and not replacements & web
    finished = next(event for event in reversed(events) if event["type"] == "run_finished")
    assert finished["status"] == "completed"
