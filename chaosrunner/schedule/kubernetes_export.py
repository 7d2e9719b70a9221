"""A schedule as Kubernetes CronJobs: scale past one machine on an engine teams already run.

``chaosrunner schedule export FILE --kubernetes`` writes, for one namespace:

- a ConfigMap with the schedule's scenario files (and the abort-condition
  library they use, already expanded into each scenario; Kubernetes faults
  switched to the pod's in-cluster ServiceAccount). A scenario with a secret
  written into it (a password in a URL, a webhook token) is refused with its
  file:line:field: a ConfigMap is no place for it (``export_secrets``);
- a Secret with the environment variables the scenarios name for secrets
  (``dsn_env`` ...), taken from the exporting environment and set in the pod
  through ``secretKeyRef``;
- a ServiceAccount, and in every namespace the faults target a Role and a
  RoleBinding to it (plus a ClusterRole when a fault touches nodes) granting
  exactly what the scheduled fault kinds call (``kubernetes_rbac``) - nothing
  for kinds that never talk to Kubernetes;
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

Windows, blackout dates, jitter, max_runs_per_day, the schedule's webhooks
and its outcome Pushgateway have no CronJob equivalent (the pod runs a plain
``chaosrunner run``). Rather than half-implement them in YAML, the exporter refuses
entries that use them unless ``--allow-approximation`` is given, and then
lists what it dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from chaosrunner.errors import UsageError
from chaosrunner.redaction import redact_url
from chaosrunner.schedule.export_secrets import env_names, refuse_literal_secrets
from chaosrunner.schedule.kubernetes_rbac import Grants, grants, rules_for
from chaosrunner.schedule.loader import LoadedSchedule
from chaosrunner.schedule.models import Window

MANAGED = {"app.kubernetes.io/managed-by": "chaosrunner", "app.kubernetes.io/part-of": "chaosrunner-schedule"}
SCENARIO_DIR = "/etc/chaosrunner/scenarios"
REPORTS_DIR = "/var/lib/chaosrunner/reports"
JOB_MARGIN = timedelta(minutes=5)


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
    if entry.webhooks:  # `chaosrunner run` in the pod sends no schedule webhooks
        dropped.append("webhooks (" + ", ".join(redact_url(hook.url) for hook in entry.webhooks) + ")")
    return dropped


def export(
    loaded: LoadedSchedule,
    *,
    namespace: str,
    image: str,
    kubernetes_version: tuple[int, int] = (1, 27),
    reports_claim: str | None = None,
    allow_approximation: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Export:
    env = os.environ if environ is None else environ
    refuse_literal_secrets(sorted(set(loaded.scenario_paths.values())))
    notes: list[str] = []
    base = dns_name(f"chaosrunner-{loaded.name}")
    labels = {**MANAGED, "chaosrunner.io/schedule": dns_name(loaded.name)}
    scenarios = [loaded.scenarios[entry.name] for entry in loaded.entries]

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
    manifests: list[dict[str, Any]] = [config_map, account]
    secret_names = sorted({name for scenario in scenarios for name in env_names(scenario)})
    if secret_names:
        manifests.append(_secret(base, namespace, labels, secret_names, env, notes))
    manifests += _rbac(base, namespace, labels, grants(scenarios), notes)
    dropped = {f"entry {entry.name!r}": _uses_approximations(entry) for entry in loaded.entries}
    if loaded.schedule.pushgateway:  # each run's outcome, pushed by the daemon for alerting
        dropped["the schedule"] = [f"pushgateway ({redact_url(loaded.schedule.pushgateway)})"]
    _check_dropped(allow_approximation, notes, dropped)
    for entry in loaded.entries:
        env_refs = env_names(loaded.scenarios[entry.name])
        manifests.append(
            _cron_job(
                loaded,
                entry,
                base,
                namespace,
                image,
                labels,
                kubernetes_version,
                reports_claim,
                notes,
                env_refs,
            )
        )
    return Export(manifests, notes)


def _check_dropped(allowed: bool, notes: list[str], dropped: dict[str, list[str]]) -> None:
    """Refuse what a CronJob cannot honour, or (with --allow-approximation) list it in the notes."""
    lines = [f"{owner} uses {', '.join(items)}" for owner, items in dropped.items() if items]
    if lines and not allowed:
        raise UsageError(
            "; ".join(lines) + ": a CronJob cannot honour these; "
            "pass --allow-approximation to export without them"
        )
    for owner, items in dropped.items():
        if items:
            notes.append(f"{owner}: dropped {', '.join(items)} (no CronJob equivalent)")


def _secret(
    base: str,
    namespace: str,
    labels: dict[str, str],
    names: list[str],
    env: Mapping[str, str],
    notes: list[str],
) -> dict[str, Any]:
    """The variables the scenarios name, from this environment; the pod reads them by secretKeyRef."""
    present = {name: env[name] for name in names if env.get(name)}
    name = f"{base}-env"
    for missing in (n for n in names if n not in present):
        notes.append(
            f"{missing} is not set here: add it to Secret {namespace}/{name} before the first run "
            f"(kubectl -n {namespace} patch secret {name} --type merge -p "
            f'\'{{"stringData":{{"{missing}":"..."}}}}\')'
        )
    if present:
        notes.append(
            f"Secret {namespace}/{name} carries {', '.join(sorted(present))} from this environment: "
            "keep the manifests out of version control"
        )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "stringData": present,
    }


def _rbac(
    base: str, namespace: str, labels: dict[str, str], granted: Grants, notes: list[str]
) -> list[dict[str, Any]]:
    """A Role and RoleBinding in each namespace the faults touch, a ClusterRole for nodes."""
    subject = [{"kind": "ServiceAccount", "name": base, "namespace": namespace}]
    manifests: list[dict[str, Any]] = []
    for target, rules in granted.by_namespace.items():
        meta = {"name": base, "namespace": target, "labels": labels}
        manifests.append(
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules}
        )
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": dict(meta),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": base},
                "subjects": subject,
            }
        )
    others = [target for target in granted.by_namespace if target != namespace]
    if others:
        notes.append(
            f"faults target {', '.join(others)}: a Role and RoleBinding there bind ServiceAccount "
            f"{namespace}/{base} (the namespaces must exist)"
        )
    if granted.cluster:
        cluster_name = f"{base}-{namespace}"
        cluster_meta = {"name": cluster_name, "labels": labels}
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": cluster_meta,
                "rules": granted.cluster,
            }
        )
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": dict(cluster_meta),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_name,
                },
                "subjects": subject,
            }
        )
        notes.append(
            f"node faults need cluster-wide rights: "
            f"ClusterRole {cluster_name} grants {len(granted.cluster)} rules"
        )
    return manifests


def _scenario_document(loaded: LoadedSchedule, entry: str) -> str:
    """The scenario as validated, library references expanded: the pod needs no abort_conditions/.

    A scenario with Kubernetes faults talks to the cluster as the pod's
    ServiceAccount: ``in_cluster``, and no kubeconfig or context (the pod has
    neither; they name files and contexts of the machine that exported).
    """
    import yaml

    scenario = loaded.scenarios[entry]
    data = scenario.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for condition in data.get("abort_conditions", []):
        condition.pop("origin", None)
    if any(rules_for(fault.kind) is not None for fault in scenario.faults):
        kubernetes = data.setdefault("target", {}).setdefault("kubernetes", {})
        kubernetes.pop("kubeconfig", None)
        kubernetes.pop("context", None)
        kubernetes["in_cluster"] = True
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
    secret_env: list[str],
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
                                    *(
                                        {
                                            "name": name,
                                            "valueFrom": {
                                                "secretKeyRef": {"name": f"{base}-env", "key": name}
                                            },
                                        }
                                        for name in secret_env
                                    ),
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


def write_manifests(path: Path, text: str) -> None:
    """0600 in a 0700 folder: the manifests may carry the Secret's values."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file of that name may have been readable
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def parse_version(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", text.strip())
    if not match:
        raise UsageError(f"--kubernetes-version {text!r}: expected MAJOR.MINOR such as 1.27")
    return int(match.group(1)), int(match.group(2))
