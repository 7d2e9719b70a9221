"""Fake Kubernetes nodes for scale tests, in the spirit of kwok (which cannot be installed here).

``FakeNodes`` registers N Node objects that no kubelet backs and plays their
kubelets' part against the real 1.20 API server, controller manager and
scheduler of ``scripts/kube-cluster.sh``:

- the nodes are created Ready (status in the create body, as a kubelet
  registers), with capacity, allocatable and addresses; their Leases in
  ``kube-node-lease`` are renewed every ``LEASE_RENEW_SECONDS`` so the node
  lifecycle controller keeps them Ready (it reads the lease, not the status,
  within ``node-monitor-grace-period``, 40 s); the Ready condition's heartbeat
  is refreshed every ``STATUS_REFRESH_SECONDS`` as well;
- pods the scheduler (or a DaemonSet controller) binds to them are marked
  Running through ``pods/status`` (phase, conditions, container statuses, a
  made-up pod IP);
- a pod deleted with a grace period (``deletionTimestamp`` set) is finished
  off as a kubelet would once its containers stopped: a grace-0 DELETE with
  the pod's uid as precondition (so a replacement of the same name, as a
  StatefulSet makes, is never hit).

The nodes are tainted ``fake-node.chaosrunner.test/fake=true:NoSchedule`` so
nothing lands on them by accident; workloads opt in with ``TOLERATION`` and
``node_selector(prefix)`` (see ``kube_scale_workloads``). The real kubelet's
node stays for the faults that need a real container.

One watch of every pod, filtered here by node name, drives the pod work; the
writes go through a thread pool so 5,000 pods are marked Running in a few
seconds of API-server time. Run as a process beside a benchmark so that its
CPU and memory are not counted as chaosrunner's::

    python -m tests.support.kube_fake_nodes --kubeconfig K --nodes 100 [--prefix fake]

prints ``ready N nodes`` once the nodes are Ready and keeps them so until
SIGTERM/SIGINT, then removes its pods, nodes and leases.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from chaosrunner.errors import ChaosrunnerError
from chaosrunner.faults.connections import KubernetesConnection
from chaosrunner.faults.kubernetes.api import Conflict, KubeApi, NotFound, Obj
from chaosrunner.faults.kubernetes.client import open_api
from chaosrunner.faults.kubernetes.target import resolve

OWNER_LABEL = "fake-node.chaosrunner.test/owner"
TAINT_KEY = "fake-node.chaosrunner.test/fake"
TOLERATION: dict[str, str] = {"key": TAINT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0
STATUS_REFRESH_SECONDS = 60.0
KUBELET_VERSION = "v1.20.2"
WORKERS = 16
"""Threads writing pod statuses and finishing deletions (the API server, not Python, is the limit)."""
LEASE_WORKERS = 4
WATCH_SECONDS = 5.0
"""Each watch request's length: short, so that closing never waits long for a quiet watch to end."""
POD_NETWORK = ipaddress.IPv4Network("10.128.0.0/9")
NODE_NETWORK = ipaddress.IPv4Network("10.96.0.0/16")


def node_selector(prefix: str) -> dict[str, str]:
    """The nodeSelector that places a pod on the fake nodes of ``prefix``."""
    return {OWNER_LABEL: prefix}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _conditions(now: str) -> list[Obj]:
    def condition(kind: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return [
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "fake node"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "fake node"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "fake node"),
        condition("Ready", "True", "KubeletReady", "fake node: its pods are marked Running by a test helper"),
    ]


class FakeNodes:
    """``count`` fake Ready nodes while the context is open; see the module docstring."""

    def __init__(
        self, kubeconfig: Path, count: int, *, prefix: str = "fake", pods_per_node: int = 110
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.count = count
        self.prefix = prefix
        self.pods_per_node = pods_per_node
        self.names: list[str] = [f"{prefix}-node-{i:03d}" for i in range(count)]
        self._name_set = frozenset(self.names)
        self._addresses = {name: str(NODE_NETWORK[i + 10]) for i, name in enumerate(self.names)}
        self._api: KubeApi | None = None
        self._leases: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lease_pool: ThreadPoolExecutor | None = None
        """Leases have their own threads: a backlog of pod writes must never make a node NotReady."""
        self._lock = threading.Lock()
        self._marked: set[str] = set()
        """uids of pods whose Running status we wrote (or found written)."""
        self._finishing: set[str] = set()
        """uids of pods whose deletion we are finishing."""
        self._next_ip = 1
        self.errors: list[str] = []
        """Failures of the background work (the last 50), for a test to show when something hangs."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            raise RuntimeError("FakeNodes is not entered")
        return self._api

    def __enter__(self) -> FakeNodes:
        self._api = open_api(resolve(KubernetesConnection(kubeconfig=self.kubeconfig)))
        self._leases = _LeaseClient(self.kubeconfig)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"{self.prefix}-pods")
        self._lease_pool = ThreadPoolExecutor(LEASE_WORKERS, thread_name_prefix=f"{self.prefix}-leases")
        try:
            self._register()
            for target in (self._renew_loop, self._watch_loop):
                thread = threading.Thread(target=target, name=f"{self.prefix}-{target.__name__}", daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background work; remove our pods, nodes and leases (idempotent)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WATCH_SECONDS + 30)
        self._threads.clear()
        for pool in (self._pool, self._lease_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._api is None:
            return
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"{self.prefix}-cleanup")
        try:
            # Nodes first: once they are gone the scheduler cannot bind the replacements that
            # controllers make for the pods deleted next.
            list(pool.map(self._delete_node, self.names))
            pods = [pod for pod in self.api.list("pods") if self._ours(pod)]
            list(pool.map(self._force_delete, pods))
        finally:
            pool.shutdown(wait=True)
            self._leases.close()
            self._api.close()
            self._api = None

    def _force_delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            self.api.delete("pods", meta["name"], meta["namespace"], grace_seconds=0, uid=meta["uid"])

    def _delete_node(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.api.delete("nodes", name)
        self._leases.delete(name)

    # ------------------------------------------------------------------ nodes and leases

    def _register(self) -> None:
        assert self._lease_pool is not None
        futures = [self._lease_pool.submit(self._register_one, name) for name in self.names]
        for future in futures:
            future.result()

    def _node(self, name: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    OWNER_LABEL: self.prefix,
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "fake-node",
                },
            },
            "spec": {"taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]},
            "status": self._status(name),
        }

    def _status(self, name: str) -> Obj:
        resources = {
            "cpu": "32",
            "memory": "256Gi",
            "pods": str(self.pods_per_node),
            "ephemeral-storage": "1Ti",
        }
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": _conditions(_now()),
            "addresses": [
                {"type": "InternalIP", "address": self._addresses[name]},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
                "kernelVersion": "5.10.0-fake",
                "osImage": "fake node (chaosrunner tests)",
                "containerRuntimeVersion": "fake://0.1",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "phase": "Running",
        }

    def _register_one(self, name: str) -> None:
        try:
            self.api.create("nodes", self._node(name))
        except Conflict:
            # Left by a helper that was killed: take it over, with our labels, taint and status.
            self.api.patch("nodes", name, {k: v for k, v in self._node(name).items() if k != "status"})
        self.api.patch("nodes", name, {"status": self._status(name)}, subresource="status")
        self._leases.renew(name)

    def _renew_loop(self) -> None:
        assert self._lease_pool is not None
        last_status = time.monotonic()
        while not self._stop.wait(LEASE_RENEW_SECONDS):
            refresh = time.monotonic() - last_status >= STATUS_REFRESH_SECONDS
            if refresh:
                last_status = time.monotonic()
            futures = [self._lease_pool.submit(self._renew_one, name, refresh) for name in self.names]
            for future in futures:
                self._settle(future)

    def _renew_one(self, name: str, refresh_status: bool) -> None:
        self._leases.renew(name)
        if refresh_status:
            body = {"status": {"conditions": _conditions(_now())}}
            self.api.patch("nodes", name, body, strategic=True, subresource="status")

    # ------------------------------------------------------------------ pods

    def _ours(self, pod: Obj) -> bool:
        return (pod.get("spec") or {}).get("nodeName") in self._name_set

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            # A watch without a resourceVersion starts with an ADDED event for every existing
            # pod, so the first request (and one after an expired version) is also the list.
            version = ""
            try:
                while not self._stop.is_set():
                    version = self._follow(version)
            except Exception as exc:  # the background work must go on; errors are noted
                self._note(f"pod watch: {exc}")
                self._stop.wait(1.0)

    def _follow(self, version: str) -> str:
        for event in self.api.watch("pods", resource_version=version or None, timeout=WATCH_SECONDS):
            if self._stop.is_set():
                break
            if event.type == "ERROR":
                raise Conflict(f"pod watch expired: {event.object.get('message')}", 410)
            meta = event.object.get("metadata") or {}
            version = meta.get("resourceVersion") or version
            if event.type == "DELETED":
                with self._lock:
                    self._marked.discard(meta.get("uid", ""))
                    self._finishing.discard(meta.get("uid", ""))
                continue
            if event.type in ("ADDED", "MODIFIED"):
                self._handle(event.object)
        return version

    def _handle(self, pod: Obj) -> None:
        if not self._ours(pod):
            return
        assert self._pool is not None
        meta = pod["metadata"]
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            with self._lock:
                if uid in self._finishing:
                    return
                self._finishing.add(uid)
            self._submit(self._finish_deletion, pod)
            return
        if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
            with self._lock:
                self._marked.add(uid)
            return
        with self._lock:
            if uid in self._marked:
                return
            self._marked.add(uid)
            ip = POD_NETWORK[self._next_ip]
            self._next_ip += 1
        self._submit(self._mark_running, pod, str(ip))

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        assert self._pool is not None
        with contextlib.suppress(RuntimeError):  # the pool is shutting down: we are closing
            self._pool.submit(self._guarded, work, *args)

    def _guarded(self, work: Callable[..., None], *args: Any) -> None:
        try:
            work(*args)
        except Exception as exc:  # the background work must go on; errors are noted
            self._note(f"{work.__name__}: {exc}")

    def _mark_running(self, pod: Obj, ip: str) -> None:
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        now = _now()
        statuses = [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": f"docker-pullable://{container.get('image', '')}",
                "containerID": f"fake://{meta['uid']}-{container['name']}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for container in spec.get("containers") or []
        ]
        conditions = [
            {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        body = {
            "metadata": {"uid": meta["uid"]},
            "status": {
                "phase": "Running",
                "conditions": conditions,
                "containerStatuses": statuses,
                "hostIP": self._addresses[spec["nodeName"]],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": now,
                "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
            },
        }
        try:
            self.api.patch("pods", meta["name"], body, meta["namespace"], subresource="status")
        except NotFound:
            pass
        except Conflict:
            pass  # a replacement of the same name: its own ADDED event marks it

    def _finish_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            self.api.delete("pods", meta["name"], meta["namespace"], grace_seconds=0, uid=meta["uid"])

    def _settle(self, future: Future[None]) -> None:
        try:
            future.result()
        except Exception as exc:  # the background work must go on; errors are noted
            self._note(str(exc))

    def _note(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
            del self.errors[:-50]

    # ------------------------------------------------------------------ for tests

    def lease(self, node: str) -> Obj | None:
        """The node's Lease in kube-node-lease (None when there is none)."""
        lease: Obj | None = self._leases.get(node)
        return lease

    def running(self, namespace: str, labels: str | None = None) -> list[Obj]:
        """Pods in ``namespace`` (matching ``labels``) that are Running on our nodes."""
        pods = self.api.list("pods", namespace, labels=labels, fields="status.phase=Running")
        return [pod for pod in pods if self._ours(pod)]

    def wait_running(
        self, namespace: str, count: int, labels: str | None = None, timeout: float = 120
    ) -> None:
        """Until at least ``count`` matching pods in ``namespace`` are Running on fake nodes."""
        deadline = time.monotonic() + timeout
        while True:
            running = len(self.running(namespace, labels))
            if running >= count:
                return
            if time.monotonic() >= deadline:
                pods = self.api.list("pods", namespace, labels=labels)
                phases: dict[str, int] = {}
                for pod in pods:
                    phase = (pod.get("status") or {}).get("phase", "?")
                    where = (
                        "fake"
                        if self._ours(pod)
                        else "unbound"
                        if not pod["spec"].get("nodeName")
                        else "other"
                    )
                    phases[f"{phase}/{where}"] = phases.get(f"{phase}/{where}", 0) + 1
                raise TimeoutError(
                    f"{running} of {count} pods Running on fake nodes in {namespace} after {timeout:g}s "
                    f"(labels {labels!r}; phase/node of all {len(pods)}: {phases}; "
                    f"helper errors: {self.errors[-3:]})"
                )
            time.sleep(0.5)


class _LeaseClient:
    """Node leases (``coordination.k8s.io/v1``), which chaosrunner's KubeApi does not know of.

    Plain requests through the ``kubernetes`` client's low-level call, as ``LiveKubeApi`` does.
    """

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
        )
        configuration.connection_pool_maxsize = LEASE_WORKERS
        self._client = client.ApiClient(configuration)

    def _request(
        self, method: str, path: str, body: Obj | None, content_type: str = "application/json"
    ) -> int:
        from kubernetes.client.exceptions import ApiException

        request = self._client.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(*request, _request_timeout=(5.0, 30.0))
            response.read()
            return int(response.status)
        except ApiException as exc:
            return int(exc.status or 0)

    def renew(self, node: str) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        spec = {"renewTime": _micro_now()}
        status = self._request("PATCH", f"{path}/{node}", {"spec": spec}, "application/merge-patch+json")
        if status == 404:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
                "spec": {**spec, "holderIdentity": node, "leaseDurationSeconds": LEASE_DURATION_SECONDS},
            }
            status = self._request("POST", path, body)
        if not 200 <= status <= 299:
            raise ChaosrunnerError(f"lease of {node}: HTTP {status}")

    def get(self, node: str) -> Obj | None:
        from kubernetes.client.exceptions import ApiException

        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{node}"
        request = self._client.param_serialize(
            method="GET",
            resource_path=path,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(*request, _request_timeout=(5.0, 30.0))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        if response.status == 404:
            response.read()
            return None
        lease: Obj = json.loads(response.read())
        return lease

    def delete(self, node: str) -> None:
        self._request(
            "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{node}", None
        )

    def close(self) -> None:
        self._client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep N fake Kubernetes nodes Ready until SIGTERM/SIGINT.")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--prefix", default="fake")
    parser.add_argument("--pods-per-node", type=int, default=110)
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeNodes(
        args.kubeconfig, args.nodes, prefix=args.prefix, pods_per_node=args.pods_per_node
    ) as nodes:
        print(f"ready {len(nodes.names)} nodes", flush=True)
        stop.wait()
        print("cleaning up", flush=True)
    print("cleaned up", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
