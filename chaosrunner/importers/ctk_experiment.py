"""A Chaos Toolkit experiment -> a scenario document (data plus the comments that explain it).

The walk follows the experiment's own order, because the order is its
timing: Chaos Toolkit runs the method's activities one after the other,
sleeping its ``pauses`` before and after each, with ``background`` ones
overlapping the next. Each action that maps becomes a fault starting where
that activity ran; it lasts until the method's end, when Chaos Toolkit would
have checked the steady-state hypothesis again and run the rollbacks. Ours
always revert, so rollbacks that undo a fault are absorbed by its revert (a
``process`` rollback becomes a command fault's revert argv).

Everything that does not map is collected, never dropped quietly: without
``skip_unsupported`` the import is refused with one located problem per
activity (``method[3]: "create-pod-chaos": python chaosk8s.crd.actions.
create_custom_object: ...``); with it, the scenario lists them at the top.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from chaosrunner.errors import ScenarioError
from chaosrunner.importers import ctk_activities as acts
from chaosrunner.importers.ctk_activities import FaultDraft, Unsupported, function_of, provider_text
from chaosrunner.importers.ctk_source import Experiment, read_experiment
from chaosrunner.importers.ctk_tolerance import (
    ToleranceUnsupported,
    abort_bounds,
    http_expectations,
    query_bounds,
)
from chaosrunner.scenario.yaml_source import Path as DataPath

DEFAULT_PROMETHEUS = "http://localhost:9090"
"""chaosprometheus' own default when the experiment sets no prometheus_base_url."""
MIN_HOLD = 10.0
"""A fault whose activity ends the method still holds this long, so it is in place when observed."""
RUN_MARGIN = 120.0
MAX_HTTP_TIMEOUT = 60.0
OBSERVING_CONTROLS = (
    "chaostracing",
    "chaosotel",
    "chaosreliably",
    "chaoscloud",
    "logging",
    "chaosaddons.controls.synchronous",
)
"""Controls that only observe or report a run: nothing to carry over."""


@dataclass(frozen=True)
class Refusal:
    """An activity (or secret, or control) we cannot carry over, with its place."""

    path: DataPath
    place: str
    name: str
    provider: str
    reason: str

    def __str__(self) -> str:
        return f'{self.place} "{self.name}": {self.provider}: {self.reason}'


@dataclass
class Imported:
    """The scenario as data, the comments that go with it, and what was left out or changed."""

    source: str
    title: str
    metadata: dict[str, Any]
    target: dict[str, Any]
    steady_state: list[tuple[str, dict[str, Any]]]  # (comment, check)
    faults: list[FaultDraft]
    abort_conditions: list[tuple[str, dict[str, Any]]]
    gameday: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # behaviour differences worth reading
    review: list[str] = field(default_factory=list)  # values we derived: a person should confirm them
    skipped: list[Refusal] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"kind": "Scenario", "version": 1, "metadata": self.metadata}
        if self.target:
            document["target"] = self.target
        if self.steady_state:
            document["steady_state"] = [check for _, check in self.steady_state]
        document["faults"] = [draft.as_entry() for draft in self.faults]
        if self.abort_conditions:
            document["abort_conditions"] = [condition for _, condition in self.abort_conditions]
        document["gameday"] = self.gameday
        return document


def slug(text: str, fallback: str = "activity") -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", str(text).lower()).strip("-_")
    return (name or fallback)[:60]


class _Names:
    """Unique names per section (our names are identifiers; CTK's are free text)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, text: str, fallback: str) -> str:
        base = slug(text, fallback)
        name, counter = base, 2
        while name in self.used:
            name, counter = f"{base}-{counter}", counter + 1
        self.used.add(name)
        return name


class _Importer:
    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.data = experiment.data
        self.refusals: list[Refusal] = []
        self.notes: list[str] = []
        self.review: list[str] = []
        self.steady: list[tuple[str, dict[str, Any]]] = []
        self.aborts: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[FaultDraft] = []
        self.check_names, self.fault_names, self.abort_names = _Names(), _Names(), _Names()
        self.proxies: dict[str, acts.ToxiProxy] = {}
        self.uses_prometheus = False
        self.defined: dict[str, tuple[dict[str, Any], DataPath]] = {}

    # -- helpers --------------------------------------------------------------------------

    def refuse(self, path: DataPath, activity: dict[str, Any], reason: str) -> None:
        place = "".join(
            f"[{part}]" if isinstance(part, int) else (f".{part}" if i else part)
            for i, part in enumerate(path)
        )
        name = str(activity.get("name") or activity.get("ref") or "?")
        self.refusals.append(Refusal(path, place, name, provider_text(activity), reason))

    def arguments(self, activity: dict[str, Any]) -> dict[str, Any]:
        provider = activity.get("provider") or {}
        arguments = self.experiment.substitute(provider.get("arguments") or {})
        return arguments if isinstance(arguments, dict) else {}

    def resolve(self, activity: Any, path: DataPath) -> tuple[dict[str, Any], DataPath] | None:
        if not isinstance(activity, dict):
            self.refuse(path, {"name": "?"}, "an activity must be a mapping")
            return None
        if "ref" in activity and "provider" not in activity:
            found = self.defined.get(str(activity["ref"]))
            if found is None:
                self.refuse(path, activity, f"ref {activity['ref']!r} names no activity defined earlier")
                return None
            return {**found[0], **{k: v for k, v in activity.items() if k in ("pauses", "background")}}, path
        if activity.get("name"):
            self.defined.setdefault(str(activity["name"]), (activity, path))
        return activity, path

    # -- probes -> checks -----------------------------------------------------------------

    def prometheus_query(self, activity: dict[str, Any]) -> str:
        arguments = self.arguments(activity)
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise Unsupported("a Prometheus query probe needs a query")
        if arguments.get("when"):
            self.notes.append(
                f"probe {activity.get('name')!r}: its `when` ({arguments['when']}) is dropped; we query now"
            )
        self.uses_prometheus = True
        return query

    def steady_checks(self, activity: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        provider = activity.get("provider") or {}
        tolerance = self.experiment.substitute(activity.get("tolerance"))
        name = str(activity.get("name", "probe"))
        if function_of(activity) == acts.PROMETHEUS_QUERY:
            query = self.prometheus_query(activity)
            try:
                bounds = query_bounds(tolerance)
            except ToleranceUnsupported as exc:
                raise Unsupported(str(exc)) from None
            return [
                (
                    f"probe {name!r} (chaosprometheus query)",
                    {
                        "name": self.check_names.take(name + suffix, "probe"),
                        "expr": query,
                        "comparator": comparator.value,
                        "threshold": threshold,
                    },
                )
                for suffix, comparator, threshold in bounds
            ]
        if provider.get("type") == "http":
            return [(f"probe {name!r} (http)", self.http_check(name, provider, tolerance))]
        raise Unsupported("no steady-state check here runs this (we check PromQL queries and HTTP answers)")

    def http_check(self, name: str, provider: dict[str, Any], tolerance: Any) -> dict[str, Any]:
        provider = self.experiment.substitute(provider)
        url = provider.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise Unsupported(f"url {url!r} is not an http(s) URL")
        if "${" in url:
            raise Unsupported(
                "the URL holds a secret or an unknown ${name}; we never write secrets into a scenario"
            )
        try:
            expectations = http_expectations(tolerance)
        except ToleranceUnsupported as exc:
            raise Unsupported(str(exc)) from None
        if isinstance(provider.get("expected_status"), int):
            expectations["expect_status"] = [provider["expected_status"]]
        http: dict[str, Any] = {"url": url, "method": str(provider.get("method", "GET")).upper()}
        headers, header_env = {}, {}
        for header, value in (provider.get("headers") or {}).items():
            secret = self.experiment.secret_named(str(value)) if isinstance(value, str) else None
            if secret is not None:
                header_env[str(header)] = secret.variable
            elif isinstance(value, str) and "${" in value:
                raise Unsupported(f"header {header} mixes a secret with text; use a whole ${{secret}} value")
            else:
                headers[str(header)] = str(value)
        body = provider.get("arguments")
        if isinstance(body, dict) and body:
            if any(h.lower() == "content-type" and "json" in v.lower() for h, v in headers.items()):
                body = json.dumps(body, separators=(",", ":"))
            else:
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
                body = urlencode({k: str(v) for k, v in body.items()})
        if headers:
            http["headers"] = headers
        if header_env:
            http["header_env"] = header_env
        if isinstance(body, str) and body:
            http["body"] = body
        timeout = provider.get("timeout")
        if isinstance(timeout, list) and timeout:
            timeout = sum(float(part) for part in timeout)
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            if timeout > MAX_HTTP_TIMEOUT:
                self.notes.append(
                    f"probe {name!r}: timeout {timeout:g}s shortened to {MAX_HTTP_TIMEOUT:g}s, our limit"
                )
            http["timeout"] = acts.seconds_text(min(max(float(timeout), 0.1), MAX_HTTP_TIMEOUT))
        if provider.get("verify_tls") is False:
            self.notes.append(f"probe {name!r}: verify_tls false is dropped; our HTTP checks verify TLS")
        http.update(expectations)
        return {"name": self.check_names.take(name, "http-check"), "http": http}

    # -- sections -------------------------------------------------------------------------

    def hypothesis(self) -> None:
        section = self.data.get("steady-state-hypothesis") or {}
        probes = section.get("probes") or [] if isinstance(section, dict) else []
        for index, raw in enumerate(probes):
            resolved = self.resolve(raw, ("steady-state-hypothesis", "probes", index))
            if resolved is None:
                continue
            activity, path = resolved
            try:
                self.steady.extend(self.steady_checks(activity))
            except Unsupported as exc:
                self.refuse(path, activity, str(exc))
            if (activity.get("pauses") or {}) and index == 0:
                self.notes.append(
                    "pauses inside the steady-state hypothesis are dropped (checks run back to back)"
                )

    def method(self) -> float:
        """Walk the method in order; return when it ends (seconds after the first activity)."""
        cursor = 0.0
        for index, raw in enumerate(self.data.get("method") or []):
            resolved = self.resolve(raw, ("method", index))
            if resolved is None:
                continue
            activity, path = resolved
            pauses = self.experiment.substitute(activity.get("pauses") or {})
            cursor += _pause(pauses.get("before"))
            if activity.get("type") == "probe" or (activity.get("type") is None and "tolerance" in activity):
                self.method_probe(activity)
            else:
                draft = self.action(activity, path)
                if draft is not None:
                    draft.start = cursor
                    self.faults.append(draft)
            cursor += _pause(pauses.get("after"))
        return cursor

    def method_probe(self, activity: dict[str, Any]) -> None:
        # CTK records a method probe's value and judges nothing by it: it changes nothing to leave out.
        self.notes.append(
            f"method probe {activity.get('name')!r} ({provider_text(activity)}) is not carried over: "
            "Chaos Toolkit only records its value; our journal records abort conditions the whole run"
        )

    def action(self, activity: dict[str, Any], path: DataPath) -> FaultDraft | None:
        name = self.fault_names.take(str(activity.get("name", "action")), "fault")
        provider = activity.get("provider") or {}
        module, func = function_of(activity)
        try:
            if provider.get("type") == "process":
                return acts.command_fault(
                    name, {**activity, "provider": self.experiment.substitute(provider)}
                )
            mapper = acts.KUBERNETES_ACTIONS.get((module, func))
            if mapper is not None:
                return mapper(name, self.arguments(activity))
            if module == "chaostoxi.proxy.actions" and func == "create_proxy":
                proxy_name, proxy = acts.toxiproxy_proxy(self.arguments(activity))
                self.proxies[proxy_name] = proxy
                self.fault_names.used.discard(name)
                self.notes.append(
                    f"{path[0]}[{path[1]}] create_proxy {proxy_name!r}: our fault proxy is started by each "
                    f"toxic's fault, listening on {proxy.listen} and relaying to {proxy.upstream}"
                )
                return None
            if module == "chaostoxi.toxic.actions":
                return acts.toxic(name, func, self.arguments(activity), self.proxies)
            raise Unsupported("no fault kind here does this (see docs/import-chaostoolkit.md)")
        except Unsupported as exc:
            self.fault_names.used.discard(name)
            self.refuse(path, activity, str(exc))
            return None

    def rollbacks(self) -> None:
        for index, raw in enumerate(self.data.get("rollbacks") or []):
            resolved = self.resolve(raw, ("rollbacks", index))
            if resolved is None:
                continue
            activity, path = resolved
            provider = activity.get("provider") or {}
            module, func = function_of(activity)
            if provider.get("type") == "process":
                waiting = next((draft for draft in self.faults if draft.awaits_revert), None)
                if waiting is None:
                    self.refuse(
                        path, activity, "a process rollback with no process action to be the revert of"
                    )
                    continue
                try:
                    waiting.params["revert"] = acts.argv_of(self.experiment.substitute(provider))
                except Unsupported as exc:
                    self.refuse(path, activity, str(exc))
                    continue
                waiting.awaits_revert = False
                waiting.comment += f"; its revert is rollback {activity.get('name')!r}"
            elif func in acts.ROLLBACKS_OUR_REVERT_DOES.get(module, set()):
                undone = [draft.name for draft in self.faults if func in draft.undoes]
                self.notes.append(
                    f"rollback {activity.get('name')!r} ({func}) is what our revert does"
                    + (f" for {', '.join(undone)}" if undone else " (nothing here left it to undo)")
                )
            else:
                self.refuse(path, activity, "a rollback we cannot run (our faults revert themselves)")

    def controls(self, controls: Any, path: DataPath) -> None:
        for index, control in enumerate(controls or []):
            where = (*path, index)
            if not isinstance(control, dict):
                continue
            provider = control.get("provider") or {}
            module = str(provider.get("module", ""))
            described = {"name": control.get("name", "control"), "provider": provider}
            if module == acts.SAFEGUARDS:
                self.safeguards(control, where)
            elif "interactive" in module or "prompt" in module:
                self.notes.append(
                    f"control {control.get('name')!r} ({module}) asks before each activity; we do not. "
                    "For a person's go before anything is injected: gameday.mode gameday with "
                    "run_sheet.go_no_go true (docs/run-sheet.md)"
                )
            elif module.startswith(OBSERVING_CONTROLS):
                self.notes.append(f"control {control.get('name')!r} ({module}) only observes a run: left out")
            else:
                self.refuse(
                    where,
                    {**described, "provider": {"type": "python", "module": module, "func": "*"}},
                    "a control we do not run",
                )

    def safeguards(self, control: dict[str, Any], path: DataPath) -> None:
        arguments = (control.get("provider") or {}).get("arguments") or {}
        for index, raw in enumerate(arguments.get("probes") or []):
            probe_path = (*path, "provider", "arguments", "probes", index)
            resolved = self.resolve(raw, probe_path)
            if resolved is None:
                continue
            probe, _ = resolved
            name = str(probe.get("name", "safeguard"))
            try:
                if function_of(probe) != acts.PROMETHEUS_QUERY:
                    raise Unsupported("a safeguard must be a Prometheus query to become an abort condition")
                query = self.prometheus_query(probe)
                bounds = abort_bounds(self.experiment.substitute(probe.get("tolerance")))
            except (Unsupported, ToleranceUnsupported) as exc:
                self.refuse(probe_path, probe, str(exc))
                continue
            for suffix, comparator, threshold in bounds:
                self.aborts.append(
                    (
                        f"safeguard {name!r}: aborts when its tolerance no longer holds",
                        {
                            "name": self.abort_names.take(name + suffix, "safeguard"),
                            "expr": query,
                            "comparator": comparator.value,
                            "threshold": threshold,
                            "for": "0s",
                            "description": f"Chaos Toolkit safeguard {name!r}",
                        },
                    )
                )

    def secrets(self) -> None:
        for path, description in self.experiment.vault_secrets:
            self.refusals.append(
                Refusal(
                    path,
                    ".".join(str(p) for p in path),
                    path[-1] if isinstance(path[-1], str) else "?",
                    "vault",
                    f"{description}: we read secrets from environment variables only",
                )
            )

    # -- assembling -----------------------------------------------------------------------

    def run(self, skip_unsupported: bool) -> Imported:
        self.secrets()
        self.hypothesis()
        end = self.method()
        self.rollbacks()
        self.controls(self.data.get("controls"), ("controls",))
        for index, activity in enumerate(self.data.get("method") or []):
            if isinstance(activity, dict) and activity.get("controls"):
                self.controls(activity["controls"], ("method", index, "controls"))
        if self.refusals and not skip_unsupported:
            raise ScenarioError(
                [
                    self.experiment.problem(r.path, f'"{r.name}": {r.provider}: {r.reason}')
                    for r in self.refusals
                ]
            )
        if not self.faults:
            raise ScenarioError(
                [
                    self.experiment.problem(
                        ("method",), "nothing in the method maps to a fault: no scenario to write"
                    )
                ]
            )
        for draft in self.faults:
            draft.duration = max(end - draft.start, MIN_HOLD)
        return Imported(
            source=self.experiment.file,
            title=str(self.data["title"]),
            metadata=self.metadata(),
            target=self.target(),
            steady_state=self.steady,
            faults=self.faults,
            abort_conditions=self.aborts,
            gameday=self.gameday(),
            notes=self.notes + self.runtime_notes(),
            review=self.review,
            skipped=self.refusals,
        )

    def metadata(self) -> dict[str, Any]:
        section = self.data.get("steady-state-hypothesis") or {}
        stated = str(section.get("title", "")).strip() if isinstance(section, dict) else ""
        title = str(self.data["title"]).strip()
        if stated and stated.lower() not in ("n/a", "na", "none", "-"):
            hypothesis = stated
        else:
            hypothesis = f"The system stays in its steady state while this runs: {title}"
        self.review.append(f"hypothesis: from the steady-state hypothesis' title ({hypothesis!r})")
        self.review.append("owner: Chaos Toolkit has none; name the team accountable for this scenario")
        self.review.append("expected_severity: P3 assumed; set what a well-run response should declare")
        tags = [str(tag) for tag in self.data.get("tags") or [] if isinstance(tag, str | int)]
        return {
            "title": title,
            "description": str(self.data.get("description", "")).strip(),
            "owner": "unassigned",
            "tags": [*tags, "chaostoolkit-import"],
            "expected_severity": "P3",
            "hypothesis": hypothesis,
        }

    def target(self) -> dict[str, Any]:
        target: dict[str, Any] = {"production": False}
        if self.uses_prometheus:
            url = self.experiment.configuration.get("prometheus_base_url")
            if not isinstance(url, str) or not url:
                url = DEFAULT_PROMETHEUS
                self.review.append(
                    f"target.prometheus: the experiment sets no prometheus_base_url; {url} assumed"
                )
            target["prometheus"] = url.rstrip("/")
        namespaces = sorted({draft.namespace for draft in self.faults if draft.namespace})
        if any(draft.kind.startswith("kubernetes.") for draft in self.faults):
            target["kubernetes"] = {"namespace": namespaces[0] if namespaces else "default"}
            if namespaces:
                target["kubernetes"]["allowed_namespaces"] = namespaces
                self.review.append(
                    f"target.kubernetes.allowed_namespaces: {', '.join(namespaces)} (the namespaces the "
                    "experiment touches); faults elsewhere are refused"
                )
        return target

    def gameday(self) -> dict[str, Any]:
        latest = max(draft.start + draft.duration for draft in self.faults)
        max_duration = max(300, math.ceil((latest + RUN_MARGIN) / 60.0) * 60)
        return {"mode": "automated", "max_duration": acts.seconds_text(float(max_duration))}

    def runtime_notes(self) -> list[str]:
        runtime = self.data.get("runtime") or {}
        notes = []
        strategy = (runtime.get("rollbacks") or {}).get("strategy") if isinstance(runtime, dict) else None
        if strategy:
            notes.append(f"runtime.rollbacks.strategy {strategy!r} does not apply: we always revert")
        hypothesis = (runtime.get("hypothesis") or {}).get("strategy") if isinstance(runtime, dict) else None
        if hypothesis:
            notes.append(
                f"runtime.hypothesis.strategy {hypothesis!r} does not apply: steady state is checked before "
                "injecting and after reverting; abort conditions are watched the whole time"
            )
        used_secrets = {s.group for s in self.experiment.secrets.values()}
        if used_secrets:
            notes.append(
                "secrets ("
                + ", ".join(sorted(used_secrets))
                + ") stay in the environment: "
                + ", ".join(f"{s.key} -> ${s.variable}" for s in self.experiment.secrets.values())
                + " (Kubernetes credentials come from KUBECONFIG, not from secrets)"
            )
        for key, variable in self.experiment.config_from_env.items():
            notes.append(f"configuration {key!r} was read from ${variable} at import time (not at run time)")
        return notes


def _pause(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return max(float(value), 0.0)


def import_experiment(
    path: Path, *, skip_unsupported: bool = False, environ: Mapping[str, str] | None = None
) -> Imported:
    """Read and map an experiment; ``ScenarioError`` (exit 2) naming every activity that does not map."""
    return _Importer(read_experiment(path, environ)).run(skip_unsupported)


def import_experiment_data(experiment: Experiment, *, skip_unsupported: bool = True) -> Imported:
    """The same mapping from an already-read experiment (a journal's copy)."""
    return _Importer(experiment).run(skip_unsupported)


ImportFunction = Callable[..., Imported]
