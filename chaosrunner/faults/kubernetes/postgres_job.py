"""``kubernetes.postgres-connection-exhaustion``: the PostgreSQL holder, run as a pod in the cluster.

The database of a Kubernetes application is often reachable only from inside
the cluster. This kind runs the PostgreSQL backend's own holder
(``python -m chaosrunner.faults.holder`` with ``chaosrunner.faults.postgres.
holder``, the ``exhaustion`` body of ``postgres.connection-exhaustion``) in a
pod next to the application: it opens connections until the server (or a
role's ``CONNECTION LIMIT``) has ``leave_free`` slots left, says ``ready`` in
its log, and holds them.

Dead-man's switches, two of them: the holder's own deadline (duration plus
``deadman_grace``, or ``max_hold``), and the pod's ``activeDeadlineSeconds``,
which makes the kubelet end the pod even if the holder hangs. Revert deletes
the pod (SIGTERM: the holder closes its connections) and waits until it is
gone; when the DSN is also reachable from chaosrunner's machine
(``target.postgres.dsn_env`` set here), it then terminates whatever backends
still carry the fault's ``application_name`` - the same fallback as the
PostgreSQL backend.

The DSN never appears in the pod manifest, the record or an argument: the pod
reads it from a Secret through ``secretKeyRef``. Either the scenario names an
existing Secret (``dsn_secret``, key ``dsn_secret_key``), or chaosrunner copies
the DSN from the environment variable the scenario names (``dsn_env``, else
``target.postgres.dsn_env``) into a Secret of its own for the fault's lifetime,
labelled like everything it creates and deleted on revert.

The plan does not connect to PostgreSQL (the point is that chaosrunner may not
reach it): the role checks of the PostgreSQL backend happen in the holder, and
an impossible request makes the holder fail at inject, with its log in the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import timedelta
from typing import Any, Self

from pydantic import Field, model_validator

from chaosrunner.durations import Duration
from chaosrunner.errors import ChaosrunnerError, FaultError, PlanRefused
from chaosrunner.faults.base import FaultPlan, FaultRequest, RevertRecord, TargetRef
from chaosrunner.faults.connections import ENV_VAR_NAME
from chaosrunner.faults.kubernetes import ownership
from chaosrunner.faults.kubernetes.agents import AgentParams
from chaosrunner.faults.kubernetes.api import Conflict, Invalid, KubeApi, NotFound, Obj
from chaosrunner.faults.kubernetes.fault import KubernetesFault
from chaosrunner.faults.kubernetes.selection import DNS_LABEL, check_namespace
from chaosrunner.faults.registry import register

HOLDER_MODULE = "chaosrunner.faults.postgres.holder"
POD_DSN_ENV = "CHAOSRUNNER_PG_DSN"
"""The variable the holder reads inside the pod (filled from the Secret)."""
SECRET_KEY = "dsn"
POD_MARGIN = 30
READY_MARGIN = 30.0


class PgJobParams(AgentParams):
    leave_free: int = Field(0, ge=0, le=10_000, description="slots left free once the fault is in place")
    role: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="exhaust this role's CONNECTION LIMIT instead of the server, connecting as it",
    )
    max_connections: int = Field(
        200, ge=1, le=5_000, description="never hold more connections than this (the holder stops there)"
    )
    connect_timeout: Duration = Field(
        timedelta(seconds=10), description="give up on a connection after this long"
    )
    max_hold: Duration = Field(
        timedelta(minutes=10), description="the holder's lifetime when the fault has no duration"
    )
    namespace: str | None = Field(
        None,
        pattern=DNS_LABEL,
        description="namespace of the holder pod; default: target.kubernetes.namespace",
    )
    dsn_secret: str | None = Field(
        None, pattern=DNS_LABEL, description="existing Secret (in the holder's namespace) holding the DSN"
    )
    dsn_secret_key: str = Field(SECRET_KEY, min_length=1, description="key of the DSN in dsn_secret")
    dsn_env: str | None = Field(
        None,
        pattern=ENV_VAR_NAME,
        description="environment variable on this machine holding the DSN as the cluster reaches it; "
        "copied into a Secret for the fault's lifetime (default: target.postgres.dsn_env)",
    )

    @model_validator(mode="after")
    def _one_dsn_source(self) -> Self:
        if self.dsn_secret and self.dsn_env:
            raise ValueError("give dsn_secret (a Secret in the cluster) or dsn_env (this machine), not both")
        return self


def holder_pod(
    name: str,
    namespace: str,
    image: str,
    pull_policy: str,
    payload: dict[str, Any],
    secret: str,
    key: str,
    labels: dict[str, str],
    lifetime: float,
) -> Obj:
    """The holder pod; the DSN reaches it only through ``secretKeyRef``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": max(1, int(lifetime) + POD_MARGIN),
            "terminationGracePeriodSeconds": 15,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "holder",
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": [
                        "python3",
                        "-m",
                        "chaosrunner.faults.holder",
                        json.dumps(payload, sort_keys=True),
                    ],
                    "env": [
                        {"name": POD_DSN_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}},
                    ],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
        },
    }


@register
class PostgresConnectionExhaustion(KubernetesFault):
    kind = "kubernetes.postgres-connection-exhaustion"
    summary = (
        "Hold PostgreSQL connections from a holder pod in the cluster (activeDeadlineSeconds as its "
        "dead-man's switch) until the server or a role has leave_free slots left; revert deletes the pod."
    )
    Params = PgJobParams

    def plan(self, request: FaultRequest) -> FaultPlan:
        from chaosrunner.faults.postgres.held import application_name, holder_label

        params = request.params
        assert isinstance(params, PgJobParams)
        connection = request.connections.kubernetes
        namespace = params.namespace or connection.namespace
        target = self.target_of(request)
        env_name = None if params.dsn_secret else (params.dsn_env or request.connections.postgres.dsn_env)
        if env_name is not None and not os.environ.get(env_name):
            raise PlanRefused(
                f"fault {request.name!r}: the DSN variable ${env_name} is not set on this machine"
            )
        with self.kube(target) as api:
            check_namespace(api, request.name, namespace, connection.allowed_namespaces)
            if params.dsn_secret:
                _check_secret(api, request.name, namespace, params.dsn_secret, params.dsn_secret_key)
        name = application_name(request.run_id, request.name)
        lifetime = (
            request.hold_for + params.deadman_grace if request.hold_for is not None else params.max_hold
        )
        spec = {
            "hold_kind": "exhaustion",
            "mode": "role" if params.role else "server",
            "role": params.role,
            "leave_free": params.leave_free,
            "max_connections": params.max_connections,
            "dsn_env": POD_DSN_ENV,
            "application_name": name,
            "connect_timeout": params.connect_timeout.total_seconds(),
        }
        own_secret = ownership.object_name("pg-dsn", request.run_id, request.name) if env_name else None
        record = self.spine(
            request,
            target,
            namespace=namespace,
            pod=ownership.object_name("pg", request.run_id, request.name),
            secret=params.dsn_secret or own_secret,
            secret_key=params.dsn_secret_key if params.dsn_secret else SECRET_KEY,
            own_secret=own_secret is not None,
            dsn_env=env_name,
            host_dsn_env=request.connections.postgres.dsn_env,
            application_name=name,
            label=holder_label(name),
            lifetime=lifetime.total_seconds(),
            spec=spec,
            image=params.agent_image,
            pull_policy=params.image_pull_policy.value,
            start_timeout=params.agent_start_timeout.total_seconds()
            + params.connect_timeout.total_seconds()
            + READY_MARGIN
            + params.max_connections * 0.05,
        )
        limit = f"role {params.role!r}'s CONNECTION LIMIT" if params.role else "the server's max_connections"
        source = f"Secret {params.dsn_secret}" if params.dsn_secret else f"${env_name} (copied into a Secret)"
        summary = (
            f"from pod {record['pod']} in {namespace}, hold connections until {limit} has "
            f"{params.leave_free} free slots (at most {params.max_connections}; DSN from {source})"
        )
        ref = TargetRef(id=f"postgres:{name}", name=f"PostgreSQL via {source}")
        return self.plan_for(request, [ref], record, summary)

    def inject(self, plan: FaultPlan) -> RevertRecord:
        record = dict(plan.revert_record)
        namespace = record["namespace"]
        labels = ownership.created_labels(record["run_id"], record["fault"])
        deadline = time.time() + float(record["lifetime"])
        payload = {
            "module": HOLDER_MODULE,
            "spec": record["spec"],
            "deadline": deadline,
            "label": record["label"],
        }
        with self.kube(record["connection"]) as api:
            if record["own_secret"]:
                _create_secret(api, namespace, record["secret"], record["dsn_env"], labels)
            manifest = holder_pod(
                record["pod"],
                namespace,
                record["image"],
                record["pull_policy"],
                payload,
                record["secret"],
                record["secret_key"],
                labels,
                float(record["lifetime"]),
            )
            with contextlib.suppress(Conflict):  # an inject retried after a crash: the pod is ours
                api.create("pods", manifest, namespace)
            _wait_ready(api, namespace, record["pod"], float(record["start_timeout"]))
        return {**record, "deadline": deadline}

    def revert(self, record: RevertRecord) -> None:
        namespace = record["namespace"]
        with self.kube(record["connection"]) as api:
            api.delete("pods", record["pod"], namespace, grace_seconds=15)  # SIGTERM: the holder lets go
            self._terminate_from_here(record)
            _wait_stopped(api, namespace, record["pod"], 30.0)
            if record.get("own_secret"):
                api.delete("secrets", record["secret"], namespace)

    @staticmethod
    def _terminate_from_here(record: RevertRecord) -> None:
        """When this machine reaches the database too, end the backends by name at once."""
        host_env = record.get("host_dsn_env")
        if not host_env or not os.environ.get(host_env):
            return
        from chaosrunner.faults.postgres.held import terminate_backends

        # The database may not be reachable from here: the holder's end closes them anyway.
        with contextlib.suppress(ChaosrunnerError):
            terminate_backends(host_env, record["application_name"])

    def check(self, record: RevertRecord) -> bool:
        with self.kube(record["connection"]) as api:
            try:
                pod = api.get("pods", record["pod"], record["namespace"])
            except NotFound:
                return False
        return (pod.get("status") or {}).get("phase") == "Running" and not (pod.get("metadata") or {}).get(
            "deletionTimestamp"
        )


def _check_secret(api: KubeApi, fault: str, namespace: str, name: str, key: str) -> None:
    try:
        secret = api.get("secrets", name, namespace)
    except NotFound as exc:
        raise PlanRefused(f"fault {fault!r}: Secret {namespace}/{name} does not exist") from exc
    if key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
        raise PlanRefused(f"fault {fault!r}: Secret {namespace}/{name} has no key {key!r}")


def _create_secret(api: KubeApi, namespace: str, name: str, env_name: str, labels: dict[str, str]) -> None:
    value = os.environ.get(env_name)
    if not value:
        raise FaultError(f"the DSN variable ${env_name} is not set on this machine")
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "stringData": {SECRET_KEY: value},
    }
    with contextlib.suppress(Conflict):
        api.create("secrets", body, namespace)


def _wait_ready(api: KubeApi, namespace: str, pod: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            log = api.logs(namespace, pod, "holder")
        except (NotFound, Invalid):
            log = ""  # not started yet
        if "ready" in log.split():
            return
        try:
            phase = (api.get("pods", pod, namespace).get("status") or {}).get("phase")
        except NotFound as exc:
            raise FaultError(f"the holder pod {namespace}/{pod} vanished before it was ready") from exc
        if phase in ("Succeeded", "Failed"):
            tail = " | ".join(log.strip().splitlines()[-5:]) or "no log"
            raise FaultError(f"the holder pod {namespace}/{pod} ended before it was ready: {tail}")
        if time.monotonic() >= deadline:
            raise FaultError(f"the holder pod {namespace}/{pod} was not ready after {timeout:g}s")
        time.sleep(0.3)


def _wait_stopped(api: KubeApi, namespace: str, pod: str, timeout: float) -> None:
    """Wait until the holder's container ended (the pod object itself lingers a few seconds more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            current = api.get("pods", pod, namespace)
        except NotFound:
            return
        statuses = (current.get("status") or {}).get("containerStatuses") or []
        if statuses and all("terminated" in (entry.get("state") or {}) for entry in statuses):
            return
        time.sleep(0.2)
    raise FaultError(f"the holder pod {namespace}/{pod} still ran {timeout:g}s after its deletion")
