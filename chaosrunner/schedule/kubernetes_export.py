"""A schedule as Kubernetes CronJobs: scale past one machine on an engine teams already run.

``chaosrunner schedule export FILE --kubernetes`` writes, for one namespace:

- a ConfigMap with the schedule's scenario files (and the abort-condition
  library they use, already expanded into each scenario);
- a ServiceAccount, and a Role (plus a ClusterRole when a fault touches
  nodes) granting exactly what the scheduled fault kinds need - nothing for
  kinds that never talk to Kubernetes;
- one CronJob per entry: ``concurrencyPolicy: Forbid`` (never two runs of an
  entry at once), ``startingDeadlineSeconds`` (a missed slot is skipped, not
  run late - the daemon's rule), a Job ``activeDeadlineSeconds`` of the
  scenario's max_duration plus a margin (the Job's own dead-man's switch), and
  ``backoffLimit: 0`` (a chaos run is never retried blindly).

Reports are written to ``/var/lib/chaosrunner/reports`` in the pod: an
emptyDir by default (the run's summary is in the pod log), or a
PersistentVolumeClaim with ``--reports-claim``. Cron time zones need
Kubernetes 1.25+ (``timeZone``); for older clusters the exporter converts
nothing and says so: the schedule must then be written in UTC.

Windows, blackout dates, jitter and max_runs_per_day have no CronJob
equivalent. Rather than half-implement them in YAML, the exporter refuses
entries that use them unless ``--allow-approximation`` is given, and then
lists what it dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chaosrunner.errors import UsageError
from chaosrunner.schedule.loader import LoadedSchedule
from chaosrunner.schedule.models import Window

MANAGED = {"app.kubernetes.io/managed-by": "chaosrunner", "app.kubernetes.io/part-of": "chaosrunner-schedule"}
SCENARIO_DIR = "/etc/chaosrunner/scenarios"
REPORTS_DIR = "/var/lib/chaosrunner/reports"
JOB_MARGIN = timedelta(minutes=5)

PodRules = list[dict[str, Any]]
_POD_READ = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
_WORKLOADS_READ = {
    "apiGroups": ["apps"],
    "resources": ["deployments", "replicasets", "statefulsets"],
    "verbs": ["get", "list", "watch"],
}
NAMESPACED_RULES: dict[str, PodRules] = {
    "kubernetes.pod-kill": [
        {**_POD_READ, "verbs": ["get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        _WORKLOADS_READ,
    ],
    "kubernetes.container-kill": [
        _POD_READ,
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    ],
    "kubernetes.deployment-scale": [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale", "statefulsets/scale"],
            "verbs": ["get", "patch", "update"],
        },
    ],
    "kubernetes.node-drain": [
        {**_POD_READ, "verbs": ["get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    ],
    "kubernetes.network-partition": [
        _POD_READ,
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["networkpolicies"],
            "verbs": ["get", "list", "create", "delete"],
        },
    ],
    "kubernetes.postgres-connection-exhaustion": [
        _POD_READ,
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create", "delete"]},
    ],
}
for _kind in ("network-latency", "network-loss", "cpu-stress", "memory-stress"):
    NAMESPACED_RULES[f"kubernetes.{_kind}"] = [
        _POD_READ,
        {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    ]
CLUSTER_RULES: dict[str, PodRules] = {
    "kubernetes.node-cordon": [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]}
    ],
    "kubernetes.node-drain": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]}],
}
ALWAYS = [  # the allowlist check reads namespace annotations; recover sweeps by label
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
]


@dataclass
class Export:
    manifests: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:52] or "chaosrunner"  # CronJob names leave room for the Job suffix


def _uses_approximations(entry: Any) -> list[str]:
    dropped = []
    if entry.windows != [Window()]:
        dropped.append("windows")
    if entry.blackout_dates:
        dropped.append("blackout_dates")
    if entry.jitter:
        dropped.append("jitter")
    if entry.max_runs_per_day:
        dropped.append("max_runs_per_day")
    return dropped


def export(
    loaded: LoadedSchedule,
    *,
    namespace: str,
    image: str,
    kubernetes_version: tuple[int, int] = (1, 27),
    reports_claim: str | None = None,
    allow_approximation: bool = False,
) -> Export:
    notes: list[str] = []
    base = dns_name(f"chaosrunner-{loaded.name}")
    labels = {**MANAGED, "chaosrunner.io/schedule": dns_name(loaded.name)}
    kinds = sorted({fault.kind for scenario in loaded.scenarios.values() for fault in scenario.faults})

    files = {f"{entry.name}.yaml": _scenario_document(loaded, entry.name) for entry in loaded.entries}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{base}-scenarios", "namespace": namespace, "labels": labels},
        "data": files,
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": base, "namespace": namespace, "labels": labels},
    }
    rules = list(ALWAYS)
    for kind in kinds:
        rules.extend(rule for rule in NAMESPACED_RULES.get(kind, []) if rule not in rules)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": base, "namespace": namespace, "labels": labels},
        "rules": rules,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": base, "namespace": namespace, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": base},
        "subjects": [{"kind": "ServiceAccount", "name": base, "namespace": namespace}],
    }
    manifests: list[dict[str, Any]] = [config_map, account, role, binding]
    cluster_rules = [rule for kind in kinds for rule in CLUSTER_RULES.get(kind, [])]
    if cluster_rules:
        cluster_name = f"{base}-{namespace}"
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": cluster_name, "labels": labels},
                "rules": cluster_rules,
            }
        )
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": cluster_name, "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": base, "namespace": namespace}],
            }
        )
        rights = f"ClusterRole {cluster_name} grants {len(cluster_rules)} rules"
        notes.append(f"node faults need cluster-wide rights: {rights}")
    for entry in loaded.entries:
        dropped = _uses_approximations(entry)
        if dropped and not allow_approximation:
            raise UsageError(
                f"entry {entry.name!r} uses {', '.join(dropped)}, which a CronJob cannot honour; "
                "pass --allow-approximation to export it without them"
            )
        if dropped:
            notes.append(f"{entry.name}: dropped {', '.join(dropped)} (no CronJob equivalent)")
        manifests.append(
            _cron_job(loaded, entry, base, namespace, image, labels, kubernetes_version, reports_claim, notes)
        )
    return Export(manifests, notes)


def _scenario_document(loaded: LoadedSchedule, entry: str) -> str:
    """The scenario as validated, library references expanded: the pod needs no abort_conditions/."""
    import yaml

    data = loaded.scenarios[entry].model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for condition in data.get("abort_conditions", []):
        condition.pop("origin", None)
    return yaml.safe_dump(data, sort_keys=False)


def _cron_job(
    loaded: LoadedSchedule,
    entry: Any,
    base: str,
    namespace: str,
    image: str,
    labels: dict[str, str],
    version: tuple[int, int],
    reports_claim: str | None,
    notes: list[str],
) -> dict[str, Any]:
    scenario = loaded.scenarios[entry.name]
    deadline = int((scenario.gameday.max_duration + JOB_MARGIN).total_seconds())
    reports: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": reports_claim}} if reports_claim else {"emptyDir": {}}
    )
    spec: dict[str, Any] = {
        "schedule": entry.cron,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 120,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 5,
        "jobTemplate": {
            "metadata": {"labels": {**labels, "chaosrunner.io/entry": dns_name(entry.name)}},
            "spec": {
                "activeDeadlineSeconds": deadline,
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": {**labels, "chaosrunner.io/entry": dns_name(entry.name)}},
                    "spec": {
                        "serviceAccountName": base,
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "chaosrunner",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "chaosrunner",
                                    "run",
                                    "--plain",
                                    f"{SCENARIO_DIR}/{entry.name}.yaml",
                                    "--mode",
                                    "automated",
                                ],
                                "env": [
                                    {"name": "CHAOSRUNNER_STATE_DIR", "value": "/var/lib/chaosrunner/state"},
                                    {"name": "CHAOSRUNNER_REPORTS_DIR", "value": REPORTS_DIR},
                                ],
                                "volumeMounts": [
                                    {"name": "scenarios", "mountPath": SCENARIO_DIR, "readOnly": True},
                                    {"name": "reports", "mountPath": REPORTS_DIR},
                                    {"name": "state", "mountPath": "/var/lib/chaosrunner/state"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "scenarios", "configMap": {"name": f"{base}-scenarios"}},
                            {"name": "reports", **reports},
                            {"name": "state", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
    }
    if entry.timezone != "UTC":
        if version >= (1, 25):
            spec["timeZone"] = entry.timezone
        else:
            notes.append(
                f"{entry.name}: Kubernetes {version[0]}.{version[1]} has no CronJob timeZone; "
                f"'{entry.cron}' will run in the controller's time zone (usually UTC), not {entry.timezone}"
            )
    api = "batch/v1" if version >= (1, 21) else "batch/v1beta1"
    return {
        "apiVersion": api,
        "kind": "CronJob",
        "metadata": {"name": dns_name(f"{base}-{entry.name}"), "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def to_yaml(result: Export) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(manifest, sort_keys=False) for manifest in result.manifests)


def parse_version(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", text.strip())
    if not match:
        raise UsageError(f"--kubernetes-version {text!r}: expected MAJOR.MINOR such as 1.27")
    return int(match.group(1)), int(match.group(2))
