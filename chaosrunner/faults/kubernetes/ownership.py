"""How chaosrunner marks what it creates and what it changes in a cluster.

The journal is the first record of a fault; the cluster itself is the second,
so that ``chaosrunner recover --kubernetes`` can put things back even when the
journal is lost with the machine that ran the experiment:

- every object chaosrunner *creates* (agent pods, PostgreSQL holder pods,
  NetworkPolicies, Secrets) carries ``app.kubernetes.io/managed-by=chaosrunner``,
  ``chaosrunner.io/run-id=<run>`` and ``chaosrunner.io/fault=<fault>``;
- every object it *changes* (a Deployment scaled down, a Node cordoned, a Pod
  given an ephemeral container or put behind a NetworkPolicy) gets the
  ``chaosrunner.io/run-id`` label in the same write as the change, plus an
  annotation holding what the revert needs (the original replica count ...).

Label values are limited to 63 characters of ``[A-Za-z0-9._-]``; run ids fit,
fault names are cleaned and, when too long, shortened with a digest so two
faults never share a value. Object names are DNS labels built from a digest
of the run and fault, so they are valid whatever the scenario calls things.
"""

from __future__ import annotations

import hashlib
import re

from chaosrunner.faults.kubernetes.api import Obj

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "chaosrunner"
RUN_ID = "chaosrunner.io/run-id"
FAULT = "chaosrunner.io/fault"
ALLOW_CHAOS = "chaosrunner.io/allow-chaos"
"""Namespace annotation: ``true`` lets faults touch the namespace (besides the scenario's allowlist)."""
PROTECT = "chaosrunner.io/protect"
"""Label on a pod, workload or node: ``true`` keeps every fault away from it."""
ORIGINAL_REPLICAS = "chaosrunner.io/original-replicas"
CORDONED = "chaosrunner.io/cordoned-by"
PARTITION = "chaosrunner.io/partition"
"""Label put on the pods a network-partition isolates; its NetworkPolicy selects it."""
AGENT_ANNOTATION_PREFIX = "agents.chaosrunner.io/"
"""Annotation ``agents.chaosrunner.io/<container>`` on a pod: an ephemeral agent chaosrunner added."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
LABEL_LIMIT = 63


def digest(*parts: str, size: int = 10) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:size]


def label_value(text: str) -> str:
    """``text`` as a valid label value: safe characters, alphanumeric ends, at most 63 characters."""
    cleaned = _UNSAFE.sub("_", text).strip("._-") or "x"
    if len(cleaned) <= LABEL_LIMIT:
        return cleaned
    return cleaned[: LABEL_LIMIT - 11].rstrip("._-") + "-" + digest(text)


def created_labels(run_id: str, fault: str) -> dict[str, str]:
    """Labels of every object chaosrunner creates for a fault."""
    return {MANAGED_BY: MANAGER, RUN_ID: label_value(run_id), FAULT: label_value(fault)}


def created_selector(run_id: str | None = None, fault: str | None = None) -> str:
    """Label selector for what chaosrunner created (for one run and fault when given)."""
    terms = [f"{MANAGED_BY}={MANAGER}"]
    if run_id is not None:
        terms.append(f"{RUN_ID}={label_value(run_id)}")
    if fault is not None:
        terms.append(f"{FAULT}={label_value(fault)}")
    return ",".join(terms)


def changed_selector(run_id: str | None = None) -> str:
    """Label selector for objects a run changed (not created): they carry the run id only."""
    return f"{RUN_ID}={label_value(run_id)}" if run_id is not None else RUN_ID


def object_name(purpose: str, run_id: str, fault: str, *extra: str) -> str:
    """A DNS-label name for an object chaosrunner creates: ``chaosrunner-<purpose>-<digest>``."""
    return f"chaosrunner-{purpose}-{digest(run_id, fault, *extra)}"


def run_token(run_id: str) -> str:
    return digest(run_id, size=6)


def ephemeral_name(run_id: str, fault: str, purpose: str) -> str:
    """An ephemeral container's name: ``cr-<run token>-<fault token>-<purpose>``.

    Ephemeral containers carry no labels; the run token in the name is how the
    sweep finds a run's agents without the journal.
    """
    return f"cr-{run_token(run_id)}-{digest(fault, size=6)}-{purpose}"[:LABEL_LIMIT]


def labels_of(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def annotations_of(obj: Obj) -> dict[str, str]:
    annotations: dict[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations


def other_marks(
    pod: Obj, *, dropping_annotation: str | None = None, dropping_partition: bool = False
) -> bool:
    """Whether a pod keeps another chaosrunner mark once one is dropped (then it keeps the run label)."""
    agents = [
        key
        for key in annotations_of(pod)
        if key.startswith(AGENT_ANNOTATION_PREFIX) and key != dropping_annotation
    ]
    return bool(agents) or (PARTITION in labels_of(pod) and not dropping_partition)


def is_protected(obj: Obj) -> bool:
    labels = labels_of(obj)
    return str(labels.get(PROTECT, "")).lower() == "true"


def is_ours(obj: Obj) -> bool:
    """Created by chaosrunner (an agent, a holder): never a fault's target."""
    return labels_of(obj).get(MANAGED_BY) == MANAGER
