"""`schedule export --kubernetes`: secrets stay out of the ConfigMap, nothing is dropped silently,
and the Roles sit in the namespaces the faults touch.

The command runs as a user runs it (a new process); the manifests are read
back as YAML. Applying them to a real cluster is the e2e test's job
(tests/e2e/test_schedule_rbac_on_cluster.py).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_chaosrunner

pytestmark = pytest.mark.unit

TOKEN = "SEKRETtok3nXYZ"
PASSWORD = "s3cr3t-Pr0m"
DSN = "postgresql://app:pg-Pa55word@db.shop:5432/app"


def scenario(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "metadata": {"title": "t", "owner": "o", "expected_severity": "P3", "hypothesis": "h"},
        "faults": [{"name": "f", "kind": "inprocess.flag", "params": {"flag": "x"}, "duration": "1s"}],
    }
    data.update(extra)
    return data


def export(
    tmp_path: Path,
    scenario_data: dict[str, Any],
    *args: str,
    env: dict[str, str] | None = None,
    **schedule: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario_data, sort_keys=False))
    data = {
        "kind": "Schedule",
        "name": "nightly",
        "entries": [{"name": "e", "scenario": "s.yaml", "cron": "0 3 * * *"}],
    }
    data.update(schedule)
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "k8s"
    done = run_chaosrunner(
        "schedule",
        "export",
        str(tmp_path / "schedule.yaml"),
        "--kubernetes",
        "--namespace",
        "chaos",
        "--out",
        str(out),
        *args,
        env={**os.environ, **(env or {})},
    )
    manifests = list(yaml.safe_load_all((out / "manifests.yaml").read_text())) if done.returncode == 0 else []
    return done, manifests


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"target": {"prometheus": f"http://chaos:{PASSWORD}@prometheus:9090"}}, "target.prometheus"),
        (
            {"gameday": {"escalation_webhook": f"https://hooks.slack.com/services/T0CHAOS/B0HOOKS/{TOKEN}"}},
            "gameday.escalation_webhook",
        ),
        ({"target": {"pushgateway": f"http://pushgateway:9091/?token={TOKEN}"}}, "target.pushgateway"),
    ],
)
def test_a_secret_written_into_a_scenario_is_refused_with_its_location(
    tmp_path: Path, extra: dict[str, Any], field: str
) -> None:
    done, _ = export(tmp_path, {**scenario(), **extra})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f": {field}: " in done.stderr and "ConfigMap" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr and TOKEN not in done.stdout + done.stderr
    assert not (tmp_path / "k8s" / "manifests.yaml").exists()


def test_the_refusal_names_the_line_of_the_field(tmp_path: Path) -> None:
    text = (
        "metadata: {title: t, owner: o, expected_severity: P3, hypothesis: h}\n"
        "target:\n"
        f"  prometheus: http://chaos:{PASSWORD}@prometheus:9090\n"
        "faults: [{name: f, kind: inprocess.flag, params: {flag: x}, duration: 1s}]\n"
    )
    (tmp_path / "s.yaml").write_text(text)
    schedule = {
        "kind": "Schedule",
        "name": "n",
        "entries": [{"name": "e", "scenario": "s.yaml", "cron": "0 3 * * *"}],
    }
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    done = run_chaosrunner("schedule", "export", str(tmp_path / "schedule.yaml"), "--kubernetes")
    assert done.returncode == 2
    assert f"{tmp_path / 's.yaml'}:3:15: target.prometheus: a password in the URL" in done.stderr, done.stderr


def test_named_secrets_travel_in_a_secret_by_secret_key_ref(tmp_path: Path) -> None:
    data = scenario(
        target={"postgres": {"dsn_env": "SHOP_PG_DSN"}},
        faults=[
            {
                "name": "pool",
                "kind": "postgres.connection-exhaustion",
                "params": {"max_connections": 5},
                "duration": "5s",
            }
        ],
    )
    done, manifests = export(tmp_path, data, env={"SHOP_PG_DSN": DSN})
    assert done.returncode == 0, done.stderr
    [secret] = of_kind(manifests, "Secret")
    assert secret["metadata"]["namespace"] == "chaos" and secret["stringData"] == {"SHOP_PG_DSN": DSN}
    [config_map] = of_kind(manifests, "ConfigMap")
    assert "pg-Pa55word" not in yaml.safe_dump(config_map)
    [cron] = of_kind(manifests, "CronJob")
    env = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "SHOP_PG_DSN",
        "valueFrom": {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "SHOP_PG_DSN"}},
    } in env
    mode = stat.S_IMODE((tmp_path / "k8s" / "manifests.yaml").stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE((tmp_path / "k8s").stat().st_mode) == 0o700
    assert "carries SHOP_PG_DSN" in done.stderr and "pg-Pa55word" not in done.stderr


def test_a_named_secret_missing_here_is_listed(tmp_path: Path) -> None:
    data = scenario(
        faults=[
            {
                "name": "p",
                "kind": "postgres.connection-exhaustion",
                "params": {"max_connections": 5},
                "duration": "5s",
            }
        ]
    )
    env = {k: v for k, v in os.environ.items() if k != "CHAOSRUNNER_PG_DSN"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    schedule = {
        "kind": "Schedule",
        "name": "n",
        "entries": [{"name": "e", "scenario": "s.yaml", "cron": "0 3 * * *"}],
    }
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    done = run_chaosrunner("schedule", "export", str(tmp_path / "schedule.yaml"), "--kubernetes", env=env)
    assert done.returncode == 0, done.stderr
    assert "CHAOSRUNNER_PG_DSN is not set here: add it to Secret chaosrunner/chaosrunner-n-env" in done.stderr


def test_webhooks_and_the_pushgateway_are_never_dropped_silently(tmp_path: Path) -> None:
    hooks = {
        "webhooks": [{"url": f"https://hooks.slack.com/services/T0CHAOS/B0HOOKS/{TOKEN}", "format": "slack"}]
    }
    refused, _ = export(tmp_path, scenario(), defaults=hooks, pushgateway="http://pushgateway:9091")
    assert refused.returncode == 2 and "webhooks (https://hooks.slack.com/[redacted])" in refused.stderr
    assert "--allow-approximation" in refused.stderr and TOKEN not in refused.stderr

    done, _ = export(
        tmp_path, scenario(), "--allow-approximation", defaults=hooks, pushgateway="http://pushgateway:9091"
    )
    assert done.returncode == 0, done.stderr
    assert "entry 'e': dropped webhooks (https://hooks.slack.com/[redacted])" in done.stderr
    assert "the schedule: dropped pushgateway (http://pushgateway:9091)" in done.stderr
    assert TOKEN not in done.stderr and TOKEN not in (tmp_path / "k8s" / "manifests.yaml").read_text()


def test_roles_are_made_in_each_namespace_the_faults_target(tmp_path: Path) -> None:
    data = scenario(
        target={
            "kubernetes": {"namespace": "shop", "kubeconfig": "/home/me/.kube/config", "context": "staging"}
        },
        faults=[
            {
                "name": "kill",
                "kind": "kubernetes.pod-kill",
                "selector": {"labels": {"app": "web"}},
                "params": {},
                "duration": "10s",
            },
            {
                "name": "cut",
                "kind": "kubernetes.network-partition",
                "selector": {"namespace": "payments", "labels": {"app": "pay"}},
                "params": {},
                "duration": "10s",
            },
            {
                "name": "pg",
                "kind": "kubernetes.postgres-connection-exhaustion",
                "params": {"namespace": "db"},
                "duration": "10s",
            },
        ],
    )
    done, manifests = export(tmp_path, data, env={"CHAOSRUNNER_PG_DSN": DSN})
    assert done.returncode == 0, done.stderr
    roles = {role["metadata"]["namespace"]: role["rules"] for role in of_kind(manifests, "Role")}
    assert sorted(roles) == ["db", "payments", "shop"]  # not "chaos", where nothing is touched
    for binding in of_kind(manifests, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "chaosrunner-nightly", "namespace": "chaos"}
        ]
    assert {b["metadata"]["namespace"] for b in of_kind(manifests, "RoleBinding")} == set(roles)

    def grants(namespace: str, verb: str, resource: str, group: str = "") -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
            for r in roles[namespace]
        )

    assert grants("payments", "patch", "pods") and grants(
        "payments", "create", "networkpolicies", "networking.k8s.io"
    )
    assert (
        grants("db", "create", "pods")
        and grants("db", "create", "secrets")
        and grants("db", "get", "pods/log")
    )
    assert grants("shop", "create", "pods/eviction") and grants("shop", "delete", "pods")
    assert not grants("shop", "create", "networkpolicies", "networking.k8s.io")
    assert not grants("payments", "delete", "pods") and not grants("shop", "create", "secrets")
    assert not of_kind(manifests, "ClusterRole")
    [config_map] = of_kind(manifests, "ConfigMap")
    exported = yaml.safe_load(config_map["data"]["e.yaml"])
    assert exported["target"]["kubernetes"] == {"namespace": "shop", "in_cluster": True}


def test_a_schedule_without_kubernetes_faults_grants_nothing(tmp_path: Path) -> None:
    done, manifests = export(tmp_path, scenario())
    assert done.returncode == 0, done.stderr
    assert [m["kind"] for m in manifests] == ["ConfigMap", "ServiceAccount", "CronJob"]
