"""One Chaos Toolkit activity -> what it becomes here, or why it cannot.

Each supported provider maps to one of our pieces:

- ``chaosk8s`` pod termination, node drain and cordon, deny-all network
  policies and deployment scaling -> ``kubernetes.*`` faults with selectors
  and a blast radius (``qty``/``rand``/``all``/``mode``);
- ``chaostoxi`` toxics -> ``proxy.*`` faults (the proxy's addresses from the
  experiment's ``create_proxy``);
- ``process`` actions -> ``command.run`` faults (an argv, never a shell);
- ``chaosprometheus`` query probes and ``http`` probes -> checks (built by
  the experiment module, which knows whether a probe is steady state or a
  safeguard).

Anything else raises ``Unsupported``: the experiment module refuses it with
the activity's name, provider and place.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from chaosrunner.durations import format_duration

COMMAND_KIND = "command.run"
"""The command fault's registered kind (contract with its author: /tmp/briefs/contract18.md)."""

DEFAULT_COMMAND_DEADLINE = 30.0
PROMETHEUS_QUERY = ("chaosprometheus.probes", "query")
SAFEGUARDS = "chaosaddons.controls.safeguards"


class Unsupported(Exception):
    """An activity (or part of one) with no faithful equivalent; the message says why."""


@dataclass
class FaultDraft:
    """A fault on its way into the scenario: timings are filled in from the method's order."""

    name: str
    kind: str
    params: dict[str, Any]
    selector: dict[str, Any] | None = None
    blast_radius: dict[str, Any] | None = None
    namespace: str | None = None
    comment: str = ""
    start: float = 0.0
    duration: float = 0.0
    undoes: tuple[str, ...] = ()  # rollback functions our revert already does
    awaits_revert: bool = False  # a command fault that may take a process rollback as its revert
    notes: list[str] = field(default_factory=list)

    def as_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.selector:
            entry["selector"] = self.selector
        entry["params"] = self.params
        if self.blast_radius:
            entry["blast_radius"] = self.blast_radius
        entry["start"] = seconds_text(self.start)
        entry["duration"] = seconds_text(self.duration)
        return entry


def seconds_text(seconds: float) -> str:
    return format_duration(round(seconds, 3))


def provider_text(activity: dict[str, Any]) -> str:
    """``python chaosk8s.pod.actions.terminate_pods``, ``process stress-ng``, ``http GET URL``."""
    provider = activity.get("provider") or {}
    kind = provider.get("type", "?")
    if kind == "python":
        return f"python {provider.get('module', '?')}.{provider.get('func', '?')}"
    if kind == "process":
        return f"process {provider.get('path', '?')}"
    if kind == "http":
        return f"http {str(provider.get('method', 'GET')).upper()} {provider.get('url', '?')}"
    return str(kind)


def function_of(activity: dict[str, Any]) -> tuple[str, str]:
    provider = activity.get("provider") or {}
    if provider.get("type") != "python":
        return "", ""
    return str(provider.get("module", "")), str(provider.get("func", ""))


# --- Kubernetes (chaosk8s) -------------------------------------------------------------


def _blast_radius_of_pods(arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """CTK's qty/rand/all/mode as our blast radius, and how the choice differs."""
    if arguments.get("all"):
        return {"mode": "all"}, "all matching pods"
    qty = arguments.get("qty", 1)
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
        raise Unsupported(f"qty {qty!r} is not a positive whole number")
    if arguments.get("mode") == "percentage":
        return {"mode": "percent", "percent": min(qty, 100)}, f"{qty}% of the matching pods"
    order = "at random" if arguments.get("rand") else "(Chaos Toolkit takes them in alphabetical order)"
    radius: dict[str, Any] = {"mode": "one"} if qty == 1 else {"mode": "count", "count": qty}
    return {**radius, "maximum": qty}, f"{qty} matching pod(s) {order}"


def _name_glob(pattern: str) -> str:
    """A name_pattern regex as our name glob, when it is a plain name or prefix/suffix with ``.*``."""
    core = pattern.removeprefix("^").removesuffix("$")
    glob = core.replace(".*", "*")
    if re.search(r"[\\\[\](){}+?|^$.]", glob):
        raise Unsupported(f"name_pattern {pattern!r} is a regular expression our name globs cannot express")
    return glob


def _pod_selector(arguments: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    selector: dict[str, Any] = {}
    if arguments.get("label_selector"):
        selector["label_selector"] = str(arguments["label_selector"])
    if arguments.get("name_pattern"):
        selector["name"] = _name_glob(str(arguments["name_pattern"]))
    namespace = str(arguments.get("ns") or "default")
    selector["namespace"] = namespace
    if len(selector) == 1:
        raise Unsupported(
            "no label_selector or name_pattern: it would choose among every pod in the namespace"
        )
    return selector, namespace


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unsupported(f"{what} {value!r} is not a number of seconds")
    return float(value)


def terminate_pods(name: str, arguments: dict[str, Any]) -> FaultDraft:
    selector, namespace = _pod_selector(arguments)
    radius, chosen = _blast_radius_of_pods(arguments)
    params: dict[str, Any] = {"mode": "delete"}
    grace = arguments.get("grace_period", -1)
    if grace is not None and _seconds(grace, "grace_period") >= 0:
        params["grace_period"] = seconds_text(float(grace))
    return FaultDraft(
        name,
        "kubernetes.pod-kill",
        params,
        selector,
        radius,
        namespace,
        comment=f"terminate_pods: {chosen}; we also time how long the owners take to recover",
    )


def drain_nodes(name: str, arguments: dict[str, Any]) -> FaultDraft:
    selector = _node_selector(arguments)
    params: dict[str, Any] = {}
    if "timeout" in arguments:
        params["eviction_timeout"] = seconds_text(_seconds(arguments["timeout"], "timeout"))
    count = arguments.get("count")
    radius = (
        {"mode": "count", "count": count, "maximum": count}
        if isinstance(count, int) and count > 0
        else {
            "mode": "one",
            "maximum": 1,
        }
    )
    notes = []
    if arguments.get("delete_pods_with_local_storage"):
        notes.append("delete_pods_with_local_storage: our drain evicts such pods too (the eviction API)")
    if arguments.get("pod_label_selector") or arguments.get("pod_namespace"):
        raise Unsupported("pod_label_selector/pod_namespace: we drain every evictable pod of the node")
    draft = FaultDraft(
        name,
        "kubernetes.node-drain",
        params,
        selector,
        radius,
        comment="drain_nodes: cordon and evict (PodDisruptionBudgets honoured); revert uncordons",
        undoes=("uncordon_node",),
    )
    draft.notes.extend(notes)
    return draft


def cordon_node(name: str, arguments: dict[str, Any]) -> FaultDraft:
    return FaultDraft(
        name,
        "kubernetes.node-cordon",
        {},
        _node_selector(arguments),
        {"mode": "one", "maximum": 1},
        comment="cordon_node: revert uncordons",
        undoes=("uncordon_node",),
    )


def _node_selector(arguments: dict[str, Any]) -> dict[str, Any]:
    if arguments.get("name"):
        return {"name": str(arguments["name"])}
    if arguments.get("label_selector"):
        return {"label_selector": str(arguments["label_selector"])}
    raise Unsupported("no name or label_selector: it would choose among every node")


def deny_all(name: str, arguments: dict[str, Any], direction: str) -> FaultDraft:
    labels = arguments.get("label_selectors")
    if not isinstance(labels, dict) or not labels:
        raise Unsupported("label_selectors must name the pods' labels (a mapping)")
    namespace = str(arguments.get("ns") or "default")
    return FaultDraft(
        name,
        "kubernetes.network-partition",
        {"direction": direction},
        {"labels": {str(k): str(v) for k, v in labels.items()}, "namespace": namespace},
        {"mode": "all"},
        namespace,
        comment=f"deny_all_{direction}: a deny-all NetworkPolicy on the matching pods; revert deletes it",
        undoes=(f"remove_deny_all_{direction}", "remove_network_policy"),
    )


def network_policy(name: str, arguments: dict[str, Any]) -> FaultDraft:
    """create_network_policy maps only when the policy denies all (no rules) to labelled pods."""
    spec = arguments.get("spec") or {}
    inner = spec.get("spec", spec) if isinstance(spec, dict) else {}
    if not isinstance(inner, dict):
        raise Unsupported("spec is not a NetworkPolicy")
    labels = ((inner.get("podSelector") or {}).get("matchLabels")) or {}
    types = [str(kind).lower() for kind in inner.get("policyTypes") or ["Ingress"]]
    if inner.get("ingress") or inner.get("egress"):
        raise Unsupported(
            "the policy allows some traffic; only deny-all policies map (kubernetes.network-partition)"
        )
    if not labels:
        raise Unsupported("the policy selects pods without matchLabels")
    direction = "both" if {"ingress", "egress"} <= set(types) else types[0]
    draft = deny_all(name, {"label_selectors": labels, "ns": arguments.get("ns")}, direction)
    draft.comment = f"create_network_policy (deny-all {direction}): revert deletes it"
    return draft


def scale_deployment(name: str, arguments: dict[str, Any]) -> FaultDraft:
    replicas = arguments.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise Unsupported(f"replicas {replicas!r} is not a replica count")
    if not arguments.get("name"):
        raise Unsupported("no deployment name")
    namespace = str(arguments.get("ns") or "default")
    return FaultDraft(
        name,
        "kubernetes.deployment-scale",
        {"replicas": replicas},
        {"name": str(arguments["name"]), "namespace": namespace},
        {"mode": "one", "maximum": 1},
        namespace,
        comment="scale_deployment: revert restores the replica count it found (kept on the object)",
        undoes=("scale_deployment",),
    )


KUBERNETES_ACTIONS = {
    ("chaosk8s.pod.actions", "terminate_pods"): terminate_pods,
    ("chaosk8s.pod.actions", "delete_pods"): terminate_pods,
    ("chaosk8s.node.actions", "drain_nodes"): drain_nodes,
    ("chaosk8s.node.actions", "cordon_node"): cordon_node,
    ("chaosk8s.networking.actions", "deny_all_ingress"): lambda n, a: deny_all(n, a, "ingress"),
    ("chaosk8s.networking.actions", "deny_all_egress"): lambda n, a: deny_all(n, a, "egress"),
    ("chaosk8s.networking.actions", "create_network_policy"): network_policy,
    ("chaosk8s.deployment.actions", "scale_deployment"): scale_deployment,
}

ROLLBACKS_OUR_REVERT_DOES = {
    "chaosk8s.node.actions": {"uncordon_node"},
    "chaosk8s.networking.actions": {
        "remove_deny_all_ingress",
        "remove_deny_all_egress",
        "remove_network_policy",
    },
    "chaosk8s.deployment.actions": {"scale_deployment"},
    "chaostoxi.toxic.actions": {"delete_toxic", "reset"},
    "chaostoxi.proxy.actions": {"delete_proxy", "enable_proxy", "reset"},
}


# --- toxiproxy (chaostoxi) -------------------------------------------------------------


@dataclass(frozen=True)
class ToxiProxy:
    listen: str
    upstream: str


def toxiproxy_proxy(arguments: dict[str, Any]) -> tuple[str, ToxiProxy]:
    """create_proxy's name and addresses: where our fault proxy listens and what it relays to."""
    name = arguments.get("proxy_name")
    port, upstream_host, upstream_port = (
        arguments.get("listen_port"),
        arguments.get("upstream_address"),
        arguments.get("upstream_port"),
    )
    if not name or port is None or not upstream_host or upstream_port is None:
        raise Unsupported("create_proxy needs proxy_name, listen_port, upstream_address and upstream_port")
    listen_host = arguments.get("listen_host") or "127.0.0.1"
    return str(name), ToxiProxy(f"{listen_host}:{port}", f"{upstream_host}:{upstream_port}")


def toxic(name: str, func: str, arguments: dict[str, Any], proxies: dict[str, ToxiProxy]) -> FaultDraft:
    proxy_name = str(arguments.get("for_proxy") or "")
    proxy = proxies.get(proxy_name)
    if proxy is None:
        raise Unsupported(
            f"proxy {proxy_name!r} is not created by this experiment (chaostoxi create_proxy): "
            "its addresses are unknown, and our fault proxy starts with the fault"
        )
    base = {"listen": proxy.listen, "upstream": proxy.upstream}
    params: dict[str, Any]
    if func == "create_latency_toxic":
        params = {**base, "delay": _millis(arguments.get("latency"), "latency")}
        if arguments.get("jitter"):
            params["jitter"] = _millis(arguments["jitter"], "jitter")
        kind = "proxy.latency"
    elif func == "create_timeout_toxic":
        params = dict(base)
        if arguments.get("timeout"):
            params["close_after"] = _millis(arguments["timeout"], "timeout")
        kind = "proxy.timeout"
    elif func in ("create_bandwith_degradation_toxic", "create_bandwidth_degradation_toxic"):
        params = {**base, "rate": _seconds(arguments.get("rate"), "rate")}
        kind = "proxy.bandwidth"
    elif func == "create_reset_peer_toxic":
        params = dict(base)
        kind = "proxy.reset"
    else:
        raise Unsupported(f"toxic {func} has no fault proxy kind here")
    return FaultDraft(
        name,
        kind,
        params,
        comment=f"{func} on toxiproxy proxy {proxy_name!r}: our fault proxy listens where it did; "
        "point the client there as before",
        undoes=("delete_toxic", "delete_proxy", "reset", "enable_proxy"),
    )


def _millis(value: Any, what: str) -> str:
    return seconds_text(_seconds(value, what) / 1000)


# --- processes -------------------------------------------------------------------------


def argv_of(provider: dict[str, Any]) -> list[str]:
    """A process provider's path and arguments as an argv (a string is split as a shell would; none runs)."""
    path = provider.get("path")
    if not isinstance(path, str) or not path:
        raise Unsupported("a process provider needs a path")
    arguments = provider.get("arguments")
    if arguments is None or arguments == "":
        rest: list[str] = []
    elif isinstance(arguments, str):
        try:
            rest = shlex.split(arguments)
        except ValueError as exc:
            raise Unsupported(f"arguments cannot be split into words: {exc}") from None
    elif isinstance(arguments, list):
        rest = [str(item) for item in arguments]
    elif isinstance(arguments, dict):  # CTK passes --key value pairs
        rest = []
        for key, value in arguments.items():
            rest.append(f"--{key}" if len(str(key)) > 1 else f"-{key}")
            if value not in (None, "", True):
                rest.append(str(value))
    else:
        raise Unsupported(f"arguments of type {type(arguments).__name__}")
    return [path, *rest]


def command_fault(name: str, activity: dict[str, Any]) -> FaultDraft:
    provider = activity.get("provider") or {}
    background = bool(activity.get("background"))
    timeout = provider.get("timeout")
    deadline = _seconds(timeout, "timeout") if timeout is not None else DEFAULT_COMMAND_DEADLINE
    params: dict[str, Any] = {"inject": argv_of(provider), "background": background}
    params["deadline"] = seconds_text(deadline)
    if isinstance(provider.get("env"), dict) and provider["env"]:
        params["env"] = {str(k): str(v) for k, v in provider["env"].items()}
    how = (
        "runs for the fault's duration, stopped on revert"
        if background
        else "must exit 0 within the deadline"
    )
    return FaultDraft(
        name,
        COMMAND_KIND,
        params,
        comment=f"process action ({how})",
        awaits_revert=True,
    )
