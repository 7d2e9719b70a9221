"""Ephemeral containers: adding a process to a running pod, as the server version allows.

An ephemeral container joins a running pod's namespaces (its network, and with
``targetContainerName`` one container's processes) without restarting it. The
API changed twice while the feature was alpha, so the body depends on the
server, which ``body_style`` reads from its version:

``EphemeralContainers`` (servers 1.16 to 1.21)
    ``GET`` the pod's ``ephemeralcontainers`` subresource, which is an object
    of kind ``EphemeralContainers`` (``metadata`` + ``ephemeralContainers``),
    append the container and ``PUT`` it back (optimistic concurrency through
    its resourceVersion; a Conflict is retried).
``Pod`` (servers 1.22 and later; kubernetes/kubernetes#101034)
    A strategic merge patch of Pod shape, ``{"spec": {"ephemeralContainers":
    [container]}}``, on the same subresource; the list merges by name.

The issue that asked for this put the switch at 1.25 (when the API went GA);
the change of kind actually shipped in 1.22, so that is where we switch.

``securityContext`` (for NET_ADMIN) is refused on ephemeral containers before
1.21 (kubernetes/kubernetes#99023: "cannot be set for an Ephemeral
Container"); ``allows_security_context`` tells the network faults to use a
node pod instead on older servers.

Ephemeral containers can never be removed from a pod: a fault's process in one
must end by itself at its deadline, and revert ends it early with an ``exec``.
"""

from __future__ import annotations

import copy
import time
from enum import StrEnum

from chaosrunner.errors import FaultError
from chaosrunner.faults.kubernetes.api import Conflict, KubeApi, NotFound, Obj

POD_BODY_FROM = (1, 22)
SECURITY_CONTEXT_FROM = (1, 21)
CONFLICT_RETRIES = 5
FAILED_WAITING_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerError"}
)


class BodyStyle(StrEnum):
    EPHEMERAL_CONTAINERS = "EphemeralContainers"
    POD = "Pod"


def body_style(version: tuple[int, int]) -> BodyStyle:
    return BodyStyle.POD if version >= POD_BODY_FROM else BodyStyle.EPHEMERAL_CONTAINERS


def allows_security_context(version: tuple[int, int]) -> bool:
    return version >= SECURITY_CONTEXT_FROM


def container_spec(
    name: str,
    image: str,
    argv: list[str],
    *,
    pull_policy: str = "IfNotPresent",
    capabilities: tuple[str, ...] = (),
    target_container: str | None = None,
) -> Obj:
    """An ephemeral container; ``argv`` is its command, every value its own argument."""
    container: Obj = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": list(argv),
        "stdin": False,
        "tty": False,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if capabilities:
        container["securityContext"] = {"capabilities": {"add": list(capabilities)}}
    if target_container:
        container["targetContainerName"] = target_container
    return container


def legacy_body(current: Obj, container: Obj) -> Obj:
    """The ``EphemeralContainers`` object to PUT: what the server returned plus ``container``."""
    body = copy.deepcopy(current)
    body.setdefault("apiVersion", "v1")
    body.setdefault("kind", "EphemeralContainers")
    body["ephemeralContainers"] = [*(body.get("ephemeralContainers") or []), container]
    return body


def pod_patch(container: Obj) -> Obj:
    """The strategic merge patch (Pod shape) that adds ``container``."""
    return {"spec": {"ephemeralContainers": [container]}}


def attach(api: KubeApi, namespace: str, pod: str, container: Obj, version: tuple[int, int]) -> None:
    """Add ``container`` to the pod; a no-op when a container of that name is already there."""
    if container.get("securityContext") and not allows_security_context(version):
        raise FaultError(
            f"Kubernetes {version[0]}.{version[1]} refuses securityContext on ephemeral containers "
            f"(allowed from {SECURITY_CONTEXT_FROM[0]}.{SECURITY_CONTEXT_FROM[1]})"
        )
    if body_style(version) is BodyStyle.POD:
        if container["name"] in names(api.get("pods", pod, namespace)):
            return
        api.patch(
            "pods", pod, pod_patch(container), namespace, strategic=True, subresource="ephemeralcontainers"
        )
        return
    for attempt in range(CONFLICT_RETRIES):
        current = api.get("pods", pod, namespace, subresource="ephemeralcontainers")
        if any(entry.get("name") == container["name"] for entry in current.get("ephemeralContainers") or []):
            return
        try:
            api.replace(
                "pods", pod, legacy_body(current, container), namespace, subresource="ephemeralcontainers"
            )
            return
        except Conflict:
            if attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def names(pod: Obj) -> list[str]:
    return [entry["name"] for entry in (pod.get("spec") or {}).get("ephemeralContainers") or []]


def status(pod: Obj, name: str) -> Obj | None:
    """The ephemeral container's status entry, or None before the kubelet reported it."""
    for entry in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if entry.get("name") == name:
            found: Obj = entry
            return found
    return None


def state_of(pod: Obj, name: str) -> str | None:
    """``waiting``, ``running``, ``terminated``, or None (not reported yet)."""
    entry = status(pod, name)
    if entry is None:
        return None
    return next(iter(entry.get("state") or {}), None)


def wait_started(api: KubeApi, namespace: str, pod: str, name: str, timeout: float) -> str:
    """Wait until the container runs (or already ended); returns its state. FaultError on image trouble."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            current = api.get("pods", pod, namespace)
        except NotFound as exc:
            raise FaultError(
                f"pod {namespace}/{pod} vanished while its ephemeral container {name} started"
            ) from exc
        state = state_of(current, name)
        if state in ("running", "terminated"):
            return state
        entry = status(current, name) or {}
        waiting = (entry.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FAILED_WAITING_REASONS:
            raise FaultError(
                f"ephemeral container {name} in {namespace}/{pod} cannot start: "
                f"{waiting.get('reason')}: {waiting.get('message', '')}".strip()
            )
        if time.monotonic() >= deadline:
            raise FaultError(
                f"ephemeral container {name} in {namespace}/{pod} did not start within {timeout:g}s"
            )
        time.sleep(0.2)
