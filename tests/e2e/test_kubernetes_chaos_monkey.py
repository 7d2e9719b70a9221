"""Chaos Monkey on the real test cluster: ``random: true`` kills pods only among those that opted in.

With the default blast radius it kills one; a count, percentage or ``all`` takes
more, still only from the opted-in pods.

Every namespace here holds one fleet of ``app=web`` pods in two Deployments:
``monkey`` (3 replicas, labelled ``chaosrunner.io/monkey=enabled``) and
``spared`` (2 replicas, not labelled). Both share the app label on purpose: a
selector ``{random: true, labels: {app: web}}`` matches all five pods by app,
and the monkey must still only ever pick among the three that opted in. The
two Deployments are told apart by a ``track`` label so their own selectors do
not overlap (overlapping Deployments fight over each other's pods).

The victim is random, so the tests assert membership and count (exactly one
pod killed per run, always an opted-in one, the others untouched), never that
different runs picked different pods: with three pods that would fail now and
then by chance alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.errors import PlanRefused
from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.kubernetes.api import KubeApi, Obj
from chaosrunner.faults.kubernetes.pods import PodKill, PodKillParams
from chaosrunner.faults.kubernetes.selection import MONKEY_LABEL, PodSelector
from chaosrunner.faults.kubernetes.workloads import fully_available, pod_ready
from tests.e2e.kube_helpers import KubeCluster, chaos_namespace, deployment, request_for, wait_for
from tests.support.cli import run_chaosrunner

APP = "web"
OPTED_IN = "monkey"
"""The Deployment whose pods carry chaosrunner.io/monkey=enabled."""
SPARED = "spared"
"""The Deployment whose pods did not opt in: the monkey must never touch them."""
REPLICAS = {OPTED_IN: 3, SPARED: 2}
ROUNDS = 4

PodIds = dict[str, str]
"""pod name -> uid: comparing uids, not names, tells "the same pod" from "a new pod of that name"."""


# ----------------------------------------------------------------------------- the fleet


def fleet_deployment(track: str, replicas: int, *, opted_in: bool) -> Obj:
    """kube_helpers' test Deployment, with the shared app label and (maybe) the monkey's opt-in label."""
    manifest = deployment(track, replicas)
    selector = {"app": APP, "track": track}
    manifest["spec"]["selector"] = {"matchLabels": selector}
    manifest["spec"]["template"]["metadata"]["labels"] = {
        **selector,
        **({MONKEY_LABEL: "enabled"} if opted_in else {}),
    }
    return manifest


def deploy_fleet(api: KubeApi, namespace: str, tracks: dict[str, int]) -> dict[str, PodIds]:
    for track, replicas in tracks.items():
        api.create("deployments", fleet_deployment(track, replicas, opted_in=track == OPTED_IN), namespace)
    return wait_settled(api, namespace, tracks)


def live_pods(api: KubeApi, namespace: str) -> dict[str, PodIds]:
    """Ready, not terminating pods of the fleet, by track."""
    pods: dict[str, PodIds] = {}
    for pod in api.list("pods", namespace, labels=f"app={APP}"):
        if pod_ready(pod):
            meta = pod["metadata"]
            pods.setdefault(meta["labels"]["track"], {})[meta["name"]] = meta["uid"]
    return pods


def wait_settled(api: KubeApi, namespace: str, tracks: dict[str, int]) -> dict[str, PodIds]:
    """Wait until every Deployment is fully available and no killed pod is still on its way out.

    Counting every pod (terminating ones included) matters: a killed pod still
    terminating would otherwise show up in the next plan as "left alone".
    """

    def settled() -> dict[str, PodIds] | None:
        if not all(fully_available("Deployment", api.get("deployments", t, namespace)) for t in tracks):
            return None
        if len(api.list("pods", namespace, labels=f"app={APP}")) != sum(tracks.values()):
            return None
        pods = live_pods(api, namespace)
        return pods if {t: len(pods.get(t, {})) for t in tracks} == tracks else None

    pods: dict[str, PodIds] = wait_for(f"the fleet in {namespace} to settle", settled, timeout=180)
    return pods


@pytest.fixture
def fleet(kube_api: KubeApi, kube_namespace: str) -> dict[str, PodIds]:
    return deploy_fleet(kube_api, kube_namespace, REPLICAS)


@pytest.fixture
def quiet_namespace(kube_api: KubeApi) -> Iterator[str]:
    """A second namespace, allowed for chaos like kube_namespace, for pods that never opted in."""
    yield from chaos_namespace(kube_api)


def monkey_request(
    kube_cluster: KubeCluster,
    namespace: str,
    *,
    blast_radius: BlastRadius | None = None,
    **selector: Any,
) -> FaultRequest:
    """A pod-kill request with a ``random: true`` selector (plus any other criterion given)."""
    # The connection's default namespace is "default": the selector's own namespace must win.
    return request_for(
        kube_cluster.connection("default"),
        PodKillParams(grace_period=timedelta(seconds=1), recovery_timeout=timedelta(minutes=2)),
        PodSelector(random=True, namespace=namespace, **selector),
        blast_radius=blast_radius,
    )


# ----------------------------------------------------------------------------- the API, round after round


# Half the rounds name no other criterion; the other half also match the spared
# pods by app label, which the opt-in label must still narrow to the monkey's.
SELECTORS: list[dict[str, Any]] = [{}, {"labels": {"app": APP}}]


def test_the_monkey_kills_exactly_one_opted_in_pod_each_time(
    kube_cluster: KubeCluster, kube_api: KubeApi, kube_namespace: str, fleet: dict[str, PodIds]
) -> None:
    fault = PodKill()
    before = fleet
    victims: list[str] = []
    for round_ in range(ROUNDS):
        extra = SELECTORS[round_ % len(SELECTORS)]
        plan = fault.plan(monkey_request(kube_cluster, kube_namespace, **extra))
        # Exactly one target, and it is one of the opted-in pods.
        (target,) = plan.targets
        namespace, victim = target.name.split("/")
        assert namespace == kube_namespace
        assert victim in before[OPTED_IN], f"{victim} did not opt in: {before}"
        assert target.id == before[OPTED_IN][victim]

        record = fault.inject(plan)
        assert [(o["name"], o["outcome"]) for o in record["outcomes"]] == [(victim, "killed")]
        (recovery,) = record["recovery"]
        assert recovery["owner"] == f"Deployment/{kube_namespace}/{OPTED_IN}" and recovery["recovered"]

        after = wait_settled(kube_api, kube_namespace, REPLICAS)
        # Nobody else was touched: the spared pods are the very same pods (same uids) ...
        assert after[SPARED] == before[SPARED]
        # ... and among the opted-in pods only the victim is gone, replaced by one new pod.
        assert set(before[OPTED_IN]) - set(after[OPTED_IN]) == {victim}
        assert len(set(after[OPTED_IN]) - set(before[OPTED_IN])) == 1
        assert not fault.check(record)
        victims.append(victim)
        before = after
    # Each victim's replacement gets a new name, so the names are distinct by construction:
    # printed to show the picks, not asserted on (which pod is hit is chance).
    print(f"\nmonkey victims over {ROUNDS} rounds: {victims}")


def test_a_monkey_with_a_wider_blast_radius_still_kills_only_opted_in_pods(
    kube_cluster: KubeCluster, kube_api: KubeApi, kube_namespace: str, fleet: dict[str, PodIds]
) -> None:
    # On Kubernetes a monkey may take a count, a percentage or all (its picks spread
    # over nodes); the opt-in label narrows every one of them, even with the app label.
    opted_in = set(fleet[OPTED_IN])
    for radius, expected in ((BlastRadius(mode="all"), 3), (BlastRadius(mode="percent", percent=50), 2)):
        plan = PodKill().plan(
            monkey_request(kube_cluster, kube_namespace, blast_radius=radius, labels={"app": APP})
        )
        picked = {target.name.split("/")[1] for target in plan.targets}
        assert len(picked) == expected and picked <= opted_in, f"{radius}: {picked} vs {fleet}"
    assert live_pods(kube_api, kube_namespace) == fleet  # planning deleted nothing

    fault = PodKill()
    plan = fault.plan(
        monkey_request(kube_cluster, kube_namespace, blast_radius=BlastRadius(mode="count", count=2))
    )
    victims = {target.name.split("/")[1] for target in plan.targets}
    assert len(victims) == 2 and victims <= opted_in
    record = fault.inject(plan)
    assert sorted((o["name"], o["outcome"]) for o in record["outcomes"]) == [
        (v, "killed") for v in sorted(victims)
    ]
    after = wait_settled(kube_api, kube_namespace, REPLICAS)
    assert after[SPARED] == fleet[SPARED]  # the same spared pods, same uids
    assert opted_in - set(after[OPTED_IN]) == victims


def test_a_namespace_where_no_pod_opted_in_is_refused(
    kube_cluster: KubeCluster,
    kube_api: KubeApi,
    kube_namespace: str,
    quiet_namespace: str,
    fleet: dict[str, PodIds],
) -> None:
    # Opted-in pods exist in the cluster (the fleet in kube_namespace), just not in this namespace.
    quiet = deploy_fleet(kube_api, quiet_namespace, {SPARED: 2})
    for extra in SELECTORS:
        with pytest.raises(PlanRefused, match="has opted in to the Chaos Monkey") as refused:
            PodKill().plan(monkey_request(kube_cluster, quiet_namespace, **extra))
        print(f"\nrefused as expected: {refused.value}")
    assert live_pods(kube_api, quiet_namespace) == quiet
    assert live_pods(kube_api, kube_namespace) == fleet


# ----------------------------------------------------------------------------- the CLI, as a user runs it


SCENARIO = """kind: Scenario
version: 1
metadata:
  title: e2e chaos monkey on Kubernetes
  owner: e2e
  expected_severity: P3
  hypothesis: Any opted-in pod can die; its Deployment replaces it.
target:
  kubernetes: {{}}    # kubeconfig from KUBECONFIG, as `eval "$(scripts/kube-cluster.sh env)"` sets it
faults:
  - name: monkey
    kind: kubernetes.pod-kill
    selector: {{random: true, namespace: {namespace}}}
    params: {{grace_period: 1s, recovery_timeout: 2m}}
    start: 0s
    duration: 5s
gameday:
  mode: automated
  max_duration: 5m
  check_interval: 1s
"""


def chaosrunner(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_chaosrunner(*args, env=env, timeout=300)


def journal_events(state: Path) -> list[dict[str, Any]]:
    (journal,) = state.glob("runs/*/journal.jsonl")
    return [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]


def test_plan_and_run_a_monkey_scenario_from_the_command_line(
    kube_cluster: KubeCluster,
    kube_api: KubeApi,
    kube_namespace: str,
    fleet: dict[str, PodIds],
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "monkey.yaml"
    scenario.write_text(SCENARIO.format(namespace=kube_namespace))
    state = tmp_path / "state"
    env = {**os.environ, **kube_cluster.env(), "CHAOSRUNNER_STATE_DIR": str(state)}

    # `plan` is the offline dry run: it shows the random selector and touches nothing
    # (it does not ask the cluster, so it cannot name the victim yet).
    planned = chaosrunner("plan", str(scenario), env=env)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "kubernetes.pod-kill" in planned.stdout
    assert "random=True" in planned.stdout and f"namespace={kube_namespace}" in planned.stdout
    assert f"{MONKEY_LABEL}" in planned.stdout  # `random: true` alone means "the opted-in pods"
    assert live_pods(kube_api, kube_namespace) == fleet

    ran = chaosrunner("run", "--plain", str(scenario), env=env)
    output = ran.stdout + ran.stderr
    print(f"\n{output}")
    assert ran.returncode == 0, output
    # The console names the planned targets: exactly one, an opted-in pod of the namespace.
    (planned_line,) = [line for line in output.splitlines() if "planned monkey" in line]
    targets = planned_line.rsplit(" -> ", 1)[1].split(", ")
    assert len(targets) == 1, planned_line
    namespace, victim = targets[0].split("/")
    assert namespace == kube_namespace and victim in fleet[OPTED_IN], planned_line
    # The journal agrees: that pod, and only that pod, was killed.
    (injected,) = [event for event in journal_events(state) if event["type"] == "fault_injected"]
    outcomes = injected["revert_record"]["outcomes"]
    assert [(o["name"], o["outcome"]) for o in outcomes] == [(victim, "killed")]
    after = wait_settled(kube_api, kube_namespace, REPLICAS)
    assert after[SPARED] == fleet[SPARED]
    assert set(fleet[OPTED_IN]) - set(after[OPTED_IN]) == {victim}
    print(f"CLI monkey victim: {victim}")
