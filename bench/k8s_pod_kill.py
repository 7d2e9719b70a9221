"""Benchmark: a kubernetes.pod-kill that selects 100 pods finishes its deletions within 3 s.

Against the test cluster (scripts/kube-cluster.sh start): a namespace with a
Deployment of 100 pause pods (the smallest pod there is: about 1 MiB each),
then one pod-kill with ``blast_radius: all`` through the fault's own plan and
inject, deletions on a bounded thread pool (``concurrency``, default 10).
The figure is the record's ``deletion_seconds``: from the first DELETE sent
to the last one answered. With ``--recovery`` it also waits until the
Deployment is fully available again and prints that time.

    eval "$(scripts/kube-cluster.sh env)"
    python bench/k8s_pod_kill.py [--pods 100] [--concurrency 10] [--recovery]

Exit status 1 when the deletions took longer than the 3 s target. The
namespace is deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.connections import Connections, KubernetesConnection
from chaosrunner.faults.kubernetes.client import open_api
from chaosrunner.faults.kubernetes.pods import PodKill, PodKillParams
from chaosrunner.faults.kubernetes.selection import PodSelector
from chaosrunner.faults.kubernetes.target import resolve

TARGET_SECONDS = 3.0
PAUSE_IMAGE = "k8s.gcr.io/pause:3.2"


def deployment(replicas: int) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE_IMAGE,
                            "imagePullPolicy": "Never",
                            "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
                        }
                    ],
                },
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--recovery", action="store_true", help="also time the recovery")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait once the pods run")
    args = parser.parse_args()

    namespace = f"cr-bench-{uuid.uuid4().hex[:6]}"
    connection = KubernetesConnection(namespace=namespace, allowed_namespaces=[namespace])
    api = open_api(resolve(connection))
    api.create("namespaces", {"metadata": {"name": namespace}})
    try:
        started = time.monotonic()
        api.create("deployments", deployment(args.pods), namespace)
        while True:
            running = api.list("pods", namespace, labels="app=bench", fields="status.phase=Running")
            if len(running) >= args.pods:
                break
            if time.monotonic() - started > 600:
                print(f"only {len(running)} of {args.pods} pods running after 10 minutes", file=sys.stderr)
                return 2
            time.sleep(1)
        print(f"{args.pods} pods running after {time.monotonic() - started:.1f}s")
        # The kubelet is still busy with the start-up storm for a while: let it settle, so the
        # figure times the kill, not the cluster's own churn.
        time.sleep(args.settle)

        params = PodKillParams(
            grace_period=timedelta(0),
            concurrency=args.concurrency,
            measure_recovery=args.recovery,
            recovery_timeout=timedelta(minutes=10),
        )
        request = FaultRequest(
            run_id=f"bench-{uuid.uuid4().hex[:6]}",
            name="kill-all",
            params=params,
            selector=PodSelector(labels={"app": "bench"}),
            blast_radius=BlastRadius(mode="all"),
            connections=Connections(kubernetes=connection),
        )
        fault = PodKill()
        plan = fault.plan(request)
        record = fault.inject(plan)
        killed = sum(1 for outcome in record["outcomes"] if outcome["outcome"] == "killed")
        seconds = record["deletion_seconds"]
        verdict = "OK" if seconds <= TARGET_SECONDS and killed == args.pods else "TOO SLOW"
        print(
            f"pod-kill: {killed}/{len(plan.targets)} pods deleted in {seconds:.3f}s "
            f"(concurrency {args.concurrency}; target <= {TARGET_SECONDS:g}s) {verdict}"
        )
        took = sorted(outcome.get("took", 0.0) for outcome in record["outcomes"])
        if took:
            print(f"per request: median {took[len(took) // 2]:.3f}s, max {took[-1]:.3f}s")
        for recovery in record.get("recovery", []):
            print(f"recovery: {recovery['owner']} fully available again after {recovery['seconds']}s")
        return 0 if verdict == "OK" else 1
    finally:
        api.delete("namespaces", namespace)
        api.close()


if __name__ == "__main__":
    sys.exit(main())
