"""Which cluster a record names, and the adapter's pure parts (versions, watch lines, status errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes import api as kube_api
from chaosrunner.faults.kubernetes.client import LiveKubeApi, _lines, parse_version
from chaosrunner.faults.kubernetes.target import KubeTarget, current_context, kubeconfig_paths, resolve

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: staging
contexts:
- name: staging
  context: {cluster: c, user: u}
users:
- name: u
  user: {token: SECRET-TOKEN}
clusters:
- name: c
  cluster: {server: https://127.0.0.1:6443}
"""


def test_explicit_kubeconfig_and_its_current_context(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    target = resolve(KubernetesConnection(kubeconfig=path), environ={})
    assert target == KubeTarget(str(path), "staging")
    assert "SECRET" not in json.dumps(target.as_record())  # a path and a context name, never a token


def test_the_scenario_context_wins(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    assert resolve(KubernetesConnection(kubeconfig=path, context="prod"), environ={}).context == "prod"


def test_kubeconfig_from_the_environment_keeps_every_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    second.write_text(KUBECONFIG)
    paths = kubeconfig_paths(KubernetesConnection(), {"KUBECONFIG": f"{first}:{second}"})
    assert paths == f"{first}:{second}"
    assert current_context(paths) == "staging"  # the first file that names one


def test_default_kubeconfig_without_environment() -> None:
    assert kubeconfig_paths(KubernetesConnection(), {}).endswith(".kube/config")


def test_in_cluster_records_no_file() -> None:
    target = resolve(KubernetesConnection(in_cluster=True), environ={"KUBECONFIG": "/x"})
    assert target == KubeTarget(None, None, in_cluster=True)
    assert KubeTarget.from_record(target.as_record()) == target


@pytest.mark.parametrize(
    ("major", "minor", "version"), [("1", "20", (1, 20)), ("1", "25+", (1, 25)), ("1", "30", (1, 30))]
)
def test_parse_version(major: str, minor: str, version: tuple[int, int]) -> None:
    assert parse_version(major, minor) == version


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, amount: int, decode_content: bool = True) -> list[bytes]:
        return self.chunks


def test_watch_lines_are_split_across_chunks() -> None:
    raw = _Chunks([b'{"type":"ADDED"', b',"object":{}}\n{"type":"DEL', b'ETED","object":{}}\n', b"\n"])
    assert [json.loads(line)["type"] for line in _lines(raw)] == ["ADDED", "DELETED"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, kube_api.NotFound),
        (409, kube_api.Conflict),
        (429, kube_api.TooManyRequests),
        (422, kube_api.Invalid),
        (403, kube_api.Forbidden),
        (500, kube_api.KubeStatus),
    ],
)
def test_status_codes_map_to_our_errors(status: int, error: type[Exception]) -> None:
    body = json.dumps({"kind": "Status", "message": "the server said so", "reason": "Why"})
    mapped = LiveKubeApi._status_error("GET", "/api/v1/pods", status, "", body)
    assert type(mapped) is error
    assert "the server said so" in str(mapped) and mapped.status == status


def test_resource_paths() -> None:
    assert (
        kube_api.resource("pods").path("shop", "web-1", "eviction")
        == "/api/v1/namespaces/shop/pods/web-1/eviction"
    )
    assert kube_api.resource("deployments").path("shop") == "/apis/apps/v1/namespaces/shop/deployments"
    assert kube_api.resource("nodes").path("ignored", "n1") == "/api/v1/nodes/n1"
    assert kube_api.resource("pods").path(None) == "/api/v1/pods"
