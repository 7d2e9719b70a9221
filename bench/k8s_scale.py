"""Benchmark: the Kubernetes faults at scale - 100 fake nodes, 5,000 pods (issue 17).

Against the test cluster (scripts/kube-cluster.sh start). The fake-node helper
(tests/support/kube_fake_nodes.py) runs as its own process, so its CPU and
memory are not chaosrunner's; it registers the nodes and marks the pods bound
to them Running. On them:

- namespace ``main``: Deployments web/api/worker/cache, a StatefulSet ``db``
  (pods in parallel), a DaemonSet ``agent`` (one pod per node), every pod
  labelled ``scale=bench``; PodDisruptionBudgets on web, api and db;
- namespace ``side``: a Deployment ``batch`` with its own budget.

Then, each in a fresh ``python`` process so that the peak RSS measured
(VmHWM, read as it exits: see ``PEAK_AT_EXIT``) is chaosrunner's own for that step:

1. ``select``: PodKill.plan with ``labels: {scale: bench}`` and a 20 % blast
   radius over every pod of ``main`` (target: < 1 s);
2. ``kill``: pod-kill of 1,000 of them (grace 0): every deletion issued and
   every killed pod confirmed gone (its uid absent from the API) - the
   record's ``gone_seconds`` (target: < 5 s);
3. ``drain``: kubernetes.node-drain of 10 nodes (plan, inject - cordon, then
   evictions through the PodDisruptionBudgets - and revert);
4. ``sweep``: ``chaosrunner recover --kubernetes --run R`` over 5,000 pods
   labelled as a network partition of run R labels them (run id +
   ``chaosrunner.io/partition``), in a private state folder.

Each step's peak RSS has a target of 200 MB. A table of figures vs targets is
printed at the end; exit status 1 when a target is missed. The namespaces and
the fake nodes are removed at the end, whatever happens.

    eval "$(scripts/kube-cluster.sh env)"
    python bench/k8s_scale.py [--nodes 100] [--pods 5000] [--kill 1000] [--drain 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from chaosrunner.faults.base import BlastRadius, FaultRequest
from chaosrunner.faults.connections import Connections, KubernetesConnection
from chaosrunner.faults.kubernetes import ownership
from chaosrunner.faults.kubernetes.api import KubeApi, NotFound
from chaosrunner.faults.kubernetes.client import open_api
from chaosrunner.faults.kubernetes.target import resolve
from tests.support import kube_scale_workloads as workloads
from tests.support.kube_fake_nodes import OWNER_LABEL

REPO = Path(__file__).resolve().parents[1]
SELECT_TARGET_S = 1.0
GONE_TARGET_S = 5.0
RSS_TARGET_MB = 200.0
SCALE_LABEL = {"scale": "bench"}
SIDE_PODS = 300
STATEFUL_PODS = 200


# ----------------------------------------------------------------------------- children


def _connection(args: argparse.Namespace, namespaces: list[str]) -> KubernetesConnection:
    return KubernetesConnection(
        kubeconfig=Path(args.kubeconfig), namespace=namespaces[0], allowed_namespaces=namespaces
    )


def child_select(args: argparse.Namespace) -> dict[str, Any]:
    from chaosrunner.faults.kubernetes.pods import PodKill, PodKillParams
    from chaosrunner.faults.kubernetes.selection import PodSelector

    request = FaultRequest(
        run_id=f"bench-{uuid.uuid4().hex[:6]}",
        name="select-20pct",
        params=PodKillParams(measure_recovery=False),
        selector=PodSelector(labels=SCALE_LABEL),
        blast_radius=BlastRadius(mode="percent", percent=20),
        connections=Connections(kubernetes=_connection(args, [args.main])),
    )
    # The first plan in a process also imports the kubernetes client and opens the connection (a
    # run pays that once); the second is the selection itself. Both are reported.
    started = time.monotonic()
    PodKill().plan(request)
    cold = time.monotonic() - started
    started = time.monotonic()
    plan = PodKill().plan(request)
    seconds = time.monotonic() - started
    record = plan.revert_record
    return {
        "seconds": round(seconds, 3),
        "cold_seconds": round(cold, 3),
        "candidates": len(record.get("candidates") or [])
        if isinstance(record.get("candidates"), list)
        else record.get("candidates"),
        "targets": len(plan.targets),
        "nodes_hit": record.get("nodes_hit"),
    }


def child_kill(args: argparse.Namespace) -> dict[str, Any]:
    from chaosrunner.faults.kubernetes.pods import PodKill, PodKillParams
    from chaosrunner.faults.kubernetes.selection import PodSelector

    request = FaultRequest(
        run_id=f"bench-{uuid.uuid4().hex[:6]}",
        name="kill-1000",
        params=PodKillParams(grace_period=timedelta(0), concurrency=args.concurrency, measure_recovery=False),
        selector=PodSelector(labels=SCALE_LABEL),
        blast_radius=BlastRadius(mode="count", count=args.kill),
        connections=Connections(kubernetes=_connection(args, [args.main])),
    )
    fault = PodKill()
    started = time.monotonic()
    plan = fault.plan(request)
    planned = time.monotonic() - started
    cpu_before = _own_cpu()
    record = fault.inject(plan)
    inject_cpu = _own_cpu() - cpu_before
    killed = [outcome for outcome in record["outcomes"] if outcome["outcome"] == "killed"]
    result = {
        "plan_seconds": round(planned, 3),
        "targets": len(plan.targets),
        "killed": len(killed),
        "deletion_seconds": record["deletion_seconds"],
        "gone_seconds": record.get("gone_seconds"),
        "not_gone": len(record.get("not_gone") or []),
        "gone_measured_by": "the record's gone_seconds",
        "inject_cpu_seconds": round(inject_cpu, 3),
    }
    if "gone_seconds" not in record:
        # A pod-kill that does not confirm its pods gone yet: measure it here, from the record's
        # first DELETE (approximately: inject's start), by listing until no killed uid is left.
        result["gone_seconds"] = round(_own_gone(args, killed, started + planned), 3)
        result["gone_measured_by"] = "the bench (listing until the uids are absent)"
    return result


def _own_cpu() -> float:
    """CPU seconds (user + system, every thread) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _own_gone(args: argparse.Namespace, killed: list[dict[str, Any]], started: float) -> float:
    api = open_api(resolve(_connection(args, [args.main])))
    try:
        pending = {outcome["uid"] for outcome in killed}
        while pending:
            present = {pod["metadata"]["uid"] for pod in api.list("pods", args.main, labels="scale=bench")}
            pending &= present
            if pending:
                time.sleep(0.05)
        return time.monotonic() - started
    finally:
        api.close()


def child_drain(args: argparse.Namespace) -> dict[str, Any]:
    from chaosrunner.faults.kubernetes.nodes import DrainParams, NodeDrain
    from chaosrunner.faults.kubernetes.selection import NodeSelector

    request = FaultRequest(
        run_id=f"bench-{uuid.uuid4().hex[:6]}",
        name="drain-10",
        params=DrainParams(eviction_timeout=timedelta(minutes=3), concurrency=args.drain_concurrency),
        selector=NodeSelector(labels={OWNER_LABEL: args.prefix}),
        blast_radius=BlastRadius(mode="count", count=args.drain),
        connections=Connections(kubernetes=_connection(args, [args.main, args.side])),
    )
    # No watchdog process: it is a separate process whose memory is not this one's, and the
    # revert runs right here.
    fault = NodeDrain(watchdogs=False)
    started = time.monotonic()
    plan = fault.plan(request)
    planned = time.monotonic()
    record = fault.inject(plan)
    injected = time.monotonic()
    fault.revert(record)
    reverted = time.monotonic()
    outcomes: dict[str, int] = {}
    for outcome in record.get("outcomes") or []:
        outcomes[outcome["outcome"]] = outcomes.get(outcome["outcome"], 0) + 1
    return {
        "plan_seconds": round(planned - started, 3),
        "inject_seconds": round(injected - planned, 3),
        "revert_seconds": round(reverted - injected, 3),
        "nodes": len(record.get("cordoned") or []),
        "outcomes": outcomes,
        "left_alone": len(record.get("left_alone") or []),
        "refused_budgets": sorted(record.get("refused") or {}),
        # How long the budgets held evictions back: each pod's "took" counts its retries.
        "held_back_by_budgets": sum(1 for o in record.get("outcomes") or [] if "held_by" in o),
        "longest_waits": [
            f"{o['namespace']}/{o['name']} {o.get('took', 0):.1f}s"
            for o in sorted(record.get("outcomes") or [], key=lambda o: -o.get("took", 0))[:5]
        ],
    }


CHILDREN = {"select": child_select, "kill": child_kill, "drain": child_drain}


PEAK_MARK = "PEAK_RSS_KB"
PEAK_AT_EXIT = f"""
import atexit, sys
def _peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("{PEAK_MARK} " + line.split()[1] + "\\n")
atexit.register(_peak)
"""
"""Run first in every measured process: its peak RSS on stderr as it exits.

VmHWM, the high-water mark of the process's own memory since its exec, not
``wait4``'s ``ru_maxrss``: Linux carries the parent's high-water mark into a
child it forks (or vforks) across the exec, so every child of this parent -
which holds 5,000 pods' JSON while waiting for them - would show the
parent's peak instead of its own.
"""


def report_peak() -> None:
    exec(PEAK_AT_EXIT, {})


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str, float, float]:
    """Run a process; (exit code, stdout, stderr, wall seconds, its own peak RSS in MB)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=REPO, env=env)
        process.wait()
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        peaks = [line.split()[1] for line in stderr.splitlines() if line.startswith(PEAK_MARK + " ")]
        if not peaks:
            raise RuntimeError(f"{argv[:4]} did not report its peak RSS:\n{stderr[-2000:]}")
        return process.returncode, out.read().decode(errors="replace"), stderr, wall, int(peaks[-1]) / 1024.0


def measure(step: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        step,
        "--kubeconfig",
        args.kubeconfig,
        "--prefix",
        args.prefix,
        "--main",
        args.main,
        "--side",
        args.side,
        "--kill",
        str(args.kill),
        "--drain",
        str(args.drain),
        "--concurrency",
        str(args.concurrency),
        "--drain-concurrency",
        str(args.drain_concurrency),
        *(["--profile", args.profile] if args.profile else []),
    ]
    code, stdout, stderr, _, rss = run_child(argv)
    if code != 0:
        raise RuntimeError(f"step {step} failed ({code}):\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), rss


CLUSTER_PROCESSES = {
    "kube-apiserver": "apiserver",
    "etcd": "etcd",
    "kube-controller": "controller-manager",
    "kube-scheduler": "scheduler",
    "kubelet": "kubelet",
}
"""/proc comm (cut at 15 characters) -> the name in the figures."""


def cluster_cpu(helper: subprocess.Popen[str] | None) -> dict[str, float]:
    """CPU seconds used so far by each process of the test cluster and by the fake-node helper.

    Read around a step, the difference says where the machine's two cores went while
    chaosrunner waited on the API server: the figures above are the rig's as much as ours.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            name = CLUSTER_PROCESSES.get(comm)
            if name is None and not (helper is not None and int(entry.name) == helper.pid):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime and stime are fields 14 and 15 of stat; after the ")" they are the 12th and 13th.
        used[name or "fake-node helper"] = (
            used.get(name or "fake-node helper", 0.0) + (int(fields[11]) + int(fields[12])) / ticks
        )
    return used


def cpu_during(before: dict[str, float], after: dict[str, float]) -> str:
    spent = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    return ", ".join(
        f"{name} {seconds:.1f}" for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
    )


def measure_with_cpu(
    step: str, args: argparse.Namespace, helper: subprocess.Popen[str]
) -> tuple[dict[str, Any], float]:
    """``measure``, printing the result and the CPU each cluster process used while the step ran."""
    cpu_before, wall_before = cluster_cpu(helper), time.monotonic()
    result, rss = measure(step, args)
    print(f"{step}: {result} peak RSS {rss:.0f} MB", flush=True)
    own = result.get("inject_cpu_seconds")
    print(
        f"  CPU seconds while the {step}'s child ran ({time.monotonic() - wall_before:.1f}s wall, 2 cores): "
        f"{cpu_during(cpu_before, cluster_cpu(helper))}"
        + ("" if own is None else f", chaosrunner's inject {own:.1f}"),
        flush=True,
    )
    return result, rss


# ----------------------------------------------------------------------------- set-up


HELPER_NICENESS = 10
"""The fake-node helper plays a hundred kubelets, which on a real cluster run on a hundred other
machines; here it shares two cores with the API server, and at its default priority its status
writes for 1,000 replacement pods took CPU from the very requests being measured. Niced, it still
does all of its work (every pod is marked Running, as the step after the kill checks), only
after the control plane's."""


def start_helper(args: argparse.Namespace) -> subprocess.Popen[str]:
    helper = subprocess.Popen(
        [
            "nice",
            "-n",
            str(HELPER_NICENESS),
            sys.executable,
            "-m",
            "tests.support.kube_fake_nodes",
            "--kubeconfig",
            args.kubeconfig,
            "--nodes",
            str(args.nodes),
            "--prefix",
            args.prefix,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert helper.stdout is not None
    line = helper.stdout.readline().strip()
    if line != f"ready {args.nodes} nodes":
        raise RuntimeError(f"the fake-node helper did not start (said {line!r})")
    return helper


def stop_helper(helper: subprocess.Popen[str], api: KubeApi, prefix: str) -> None:
    if helper.poll() is None:
        helper.send_signal(signal.SIGTERM)
        try:
            helper.wait(timeout=300)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
    # Whatever the helper managed: no fake node of ours stays registered.
    for node in api.list("nodes", labels=f"{OWNER_LABEL}={prefix}"):
        with contextlib.suppress(NotFound):
            api.delete("nodes", node["metadata"]["name"])


def create_workloads(api: KubeApi, args: argparse.Namespace) -> dict[str, int]:
    """The workloads; returns the pods expected per namespace."""
    in_deployments = args.pods - SIDE_PODS - STATEFUL_PODS - args.nodes
    names = ["web", "api", "worker", "cache"]
    sizes = [in_deployments // len(names)] * len(names)
    sizes[0] += in_deployments - sum(sizes)
    main_objects = [
        workloads.deployment(name, size, {**SCALE_LABEL, "app": name}, args.prefix)
        for name, size in zip(names, sizes, strict=True)
    ]
    main_objects += [
        workloads.statefulset("db", STATEFUL_PODS, {**SCALE_LABEL, "app": "db"}, args.prefix),
        workloads.daemonset("agent", {**SCALE_LABEL, "app": "agent"}, args.prefix),
        workloads.pdb("web", {**SCALE_LABEL, "app": "web"}, max_unavailable="5%"),
        workloads.pdb("api", {**SCALE_LABEL, "app": "api"}, max_unavailable=20),
        workloads.pdb("db", {**SCALE_LABEL, "app": "db"}, min_available=STATEFUL_PODS - 5),
    ]
    workloads.apply(api, args.main, main_objects)
    workloads.apply(
        api,
        args.side,
        [
            workloads.deployment("batch", SIDE_PODS, {"app": "batch"}, args.prefix),
            workloads.pdb("batch", {"app": "batch"}, max_unavailable=10),
        ],
    )
    return {args.main: args.pods - SIDE_PODS, args.side: SIDE_PODS}


def wait_running(api: KubeApi, expected: dict[str, int], timeout: float, what: str) -> float:
    started = time.monotonic()
    last_report = started
    while True:
        counts = {
            namespace: len(api.list("pods", namespace, fields="status.phase=Running"))
            for namespace in expected
        }
        if all(counts[namespace] >= wanted for namespace, wanted in expected.items()):
            return time.monotonic() - started
        now = time.monotonic()
        if now - started > timeout:
            raise RuntimeError(f"{what}: only {counts} of {expected} pods Running after {timeout:g}s")
        if now - last_report >= 15:
            print(f"  {what}: {sum(counts.values())}/{sum(expected.values())} Running", flush=True)
            last_report = now
        time.sleep(2)


def label_for_sweep(api: KubeApi, namespace: str, run_id: str) -> int:
    """Mark every pod of ``namespace`` as a partition of ``run_id`` would (run label + partition label)."""
    pods = api.list("pods", namespace)
    labels = {ownership.RUN_ID: ownership.label_value(run_id), ownership.PARTITION: "isolated"}

    def mark(pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(NotFound):
            api.patch("pods", meta["name"], {"metadata": {"labels": labels}}, meta["namespace"])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(mark, pods))
    return len(pods)


def sweep(args: argparse.Namespace, run_id: str, state_dir: str) -> tuple[dict[str, Any], float]:
    env = {**os.environ, "CHAOSRUNNER_STATE_DIR": state_dir}
    argv = [
        sys.executable,
        "-c",
        PEAK_AT_EXIT + "sys.argv[0] = 'chaosrunner'\nfrom chaosrunner.cli import main\nmain()\n",
        "recover",
        "--kubernetes",
        "--run",
        run_id,
        "--kubeconfig",
        args.kubeconfig,
        "--json",
    ]
    code, stdout, stderr, wall, rss = run_child(argv, env)
    if code != 0:
        raise RuntimeError(f"recover --kubernetes failed ({code}):\n{stderr[-3000:]}\n{stdout[-1000:]}")
    reports = json.loads(stdout)["kubernetes"]
    restored = sum(len(report["restored"]) for report in reports)
    failed = {key: value for report in reports for key, value in report["failed"].items()}
    return {"seconds": round(wall, 3), "restored": restored, "failed": failed}, rss


# ----------------------------------------------------------------------------- steps


def step_select(args: argparse.Namespace) -> list[tuple[str, str, str, bool]]:
    figures: list[tuple[str, str, str, bool]] = []
    result, rss = measure("select", args)
    print(f"select: {result} peak RSS {rss:.0f} MB", flush=True)
    figures.append(
        (
            f"selection over {result['candidates']} pods (20 %)",
            f"{result['seconds']:.3f} s",
            f"< {SELECT_TARGET_S:g} s",
            result["seconds"] < SELECT_TARGET_S,
        )
    )
    figures.append(
        ("  first plan in a process (client import)", f"{result['cold_seconds']:.3f} s", "(figure)", True)
    )
    figures.append(("  peak RSS (select)", f"{rss:.0f} MB", f"< {RSS_TARGET_MB:g} MB", rss < RSS_TARGET_MB))
    return figures


def step_kill(
    args: argparse.Namespace, api: KubeApi, helper: subprocess.Popen[str], expected: dict[str, int]
) -> list[tuple[str, str, str, bool]]:
    figures: list[tuple[str, str, str, bool]] = []
    result, rss = measure_with_cpu("kill", args, helper)
    gone = result["gone_seconds"]
    complete = result["killed"] == args.kill and not result["not_gone"]
    figures.append(
        (
            f"pod-kill of {args.kill} (concurrency {args.concurrency}): deletions issued",
            f"{result['deletion_seconds']:.3f} s",
            "",
            True,
        )
    )
    figures.append(
        (
            f"pod-kill of {args.kill}: all confirmed gone",
            "-" if gone is None else f"{gone:.3f} s",
            f"< {GONE_TARGET_S:g} s",
            complete and gone is not None and gone < GONE_TARGET_S,
        )
    )
    figures.append(("  peak RSS (pod-kill)", f"{rss:.0f} MB", f"< {RSS_TARGET_MB:g} MB", rss < RSS_TARGET_MB))
    took = wait_running(api, expected, 900, "after the kill")
    print(f"all pods Running again {took:.1f}s after the kill's child ended", flush=True)
    return figures


def step_drain(
    args: argparse.Namespace, api: KubeApi, helper: subprocess.Popen[str], expected: dict[str, int]
) -> list[tuple[str, str, str, bool]]:
    figures: list[tuple[str, str, str, bool]] = []
    result, rss = measure_with_cpu("drain", args, helper)
    figures.append(
        (
            f"drain of {result['nodes']} nodes ({result['outcomes']})",
            f"{result['inject_seconds']:.3f} s",
            "(figure)",
            True,
        )
    )
    figures.append(
        (
            "  drain plan / revert",
            f"{result['plan_seconds']:.3f} / {result['revert_seconds']:.3f} s",
            "(figure)",
            True,
        )
    )
    figures.append(("  peak RSS (drain)", f"{rss:.0f} MB", f"< {RSS_TARGET_MB:g} MB", rss < RSS_TARGET_MB))
    took = wait_running(api, expected, 900, "after the drain")
    print(f"all pods Running again {took:.1f}s after the drain's child ended", flush=True)
    return figures


def step_sweep(args: argparse.Namespace, api: KubeApi) -> list[tuple[str, str, str, bool]]:
    figures: list[tuple[str, str, str, bool]] = []
    run_id = f"bench-sweep-{uuid.uuid4().hex[:6]}"
    marked = label_for_sweep(api, args.main, run_id) + label_for_sweep(api, args.side, run_id)
    print(f"{marked} pods labelled for the sweep", flush=True)
    with tempfile.TemporaryDirectory() as state_dir:
        result, rss = sweep(args, run_id, state_dir)
    left = len(api.list("pods", None, labels=ownership.changed_selector(run_id)))
    print(f"sweep: {result | {'failed': len(result['failed'])}} left labelled {left}; peak RSS {rss:.0f} MB")
    figures.append(
        (
            f"recover --kubernetes over {marked} pods",
            f"{result['seconds']:.3f} s",
            "(figure)",
            left == 0 and not result["failed"],
        )
    )
    figures.append(("  peak RSS (sweep)", f"{rss:.0f} MB", f"< {RSS_TARGET_MB:g} MB", rss < RSS_TARGET_MB))
    return figures


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""))
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--kill", type=int, default=1000)
    parser.add_argument("--drain", type=int, default=10)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="pod-kill's concurrency (64 was fastest here; 32: 0.5-1 s slower)",
    )
    parser.add_argument("--drain-concurrency", type=int, default=16, help="node-drain's concurrency")
    parser.add_argument(
        "--steps",
        default="select,kill,drain,sweep",
        help="the steps to run, in this order, comma-separated; one may repeat (kill,kill)",
    )
    parser.add_argument("--profile", default="", help="folder for each step's cProfile stats (STEP.prof)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=f"scale{uuid.uuid4().hex[:4]}", help=argparse.SUPPRESS)
    parser.add_argument("--main", default="", help=argparse.SUPPRESS)
    parser.add_argument("--side", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.kubeconfig:
        parser.error('no kubeconfig: run eval "$(scripts/kube-cluster.sh env)" first')
    unknown = set(args.steps.split(",")) - {"select", "kill", "drain", "sweep"}
    if unknown:
        parser.error(f"--steps: no step {', '.join(sorted(unknown))} (select, kill, drain, sweep)")
    if args.child:
        report_peak()
        if not args.profile:
            print(json.dumps(CHILDREN[args.child](args)))
            return 0
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(CHILDREN[args.child], args)
        profiler.dump_stats(str(Path(args.profile) / f"{args.child}.prof"))
        print(json.dumps(result))
        return 0

    args.main = f"cr-scale-{args.prefix}-main"
    args.side = f"cr-scale-{args.prefix}-side"
    api = open_api(resolve(KubernetesConnection(kubeconfig=Path(args.kubeconfig))))
    figures: list[tuple[str, str, str, bool]] = []
    helper: subprocess.Popen[str] | None = None
    try:
        started = time.monotonic()
        helper = start_helper(args)
        print(f"{args.nodes} fake nodes Ready after {time.monotonic() - started:.1f}s", flush=True)
        for namespace in (args.main, args.side):
            api.create("namespaces", {"metadata": {"name": namespace}})
        started = time.monotonic()
        expected = create_workloads(api, args)
        took = wait_running(api, expected, 1800, "start-up")
        print(f"{sum(expected.values())} pods Running after {took:.1f}s", flush=True)

        steps = {
            "select": lambda: step_select(args),
            "kill": lambda: step_kill(args, api, helper, expected),
            "drain": lambda: step_drain(args, api, helper, expected),
            "sweep": lambda: step_sweep(args, api),
        }
        for step in args.steps.split(","):
            figures += steps[step]()
    finally:
        for namespace in (args.main, args.side):
            with contextlib.suppress(NotFound):
                api.delete("namespaces", namespace)
        if helper is not None:
            stop_helper(helper, api, args.prefix)
        api.close()

    print()
    print(f"load average at the end: {' '.join(f'{load:.1f}' for load in os.getloadavg())} (2 cores)")
    print(f"{'figure':<52} {'value':>18}  {'target':<10} verdict")
    for name, value, target, ok in figures:
        print(f"{name:<52} {value:>18}  {target:<10} {'OK' if ok else 'MISSED'}")
    return 0 if all(ok for *_, ok in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
