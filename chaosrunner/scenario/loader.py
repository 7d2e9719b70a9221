"""Loading scenario files: YAML with positions -> a validated ``Scenario``.

Three passes, all reporting into one problem list so an author sees every
mistake at once:

1. *resolve* what the models cannot know: each fault's kind in the registry
   (its params and selector validated by the kind's own models) and each
   ``use: NAME`` abort condition expanded from the library;
2. *validate* the document against ``Scenario``;
3. *check* rules that span fields (unique names, faults that outlive the run,
   run-sheet injects that could never fire).

Anything wrong raises ``ScenarioError`` (exit code 2); nothing else escapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from chaosrunner.errors import ScenarioError
from chaosrunner.faults.base import BlastRadiusMode
from chaosrunner.faults.registry import registry
from chaosrunner.scenario.document import read_model, read_source
from chaosrunner.scenario.http_check import HttpSteadyStateCheck
from chaosrunner.scenario.library import ConditionLibrary, UnresolvedReference, placeholders
from chaosrunner.scenario.models import (
    MARK_NAMES,
    ConditionReference,
    LibraryCondition,
    Mode,
    Scenario,
    SteadyStateCheck,
    steady_state_kind,
)
from chaosrunner.scenario.problems import ProblemList, did_you_mean
from chaosrunner.scenario.yaml_source import Path as DataPath

DOCUMENT_KINDS = ("Scenario", "AbortCondition")


def load_scenario(path: Path, library: ConditionLibrary | None = None) -> Scenario:
    return _load_scenario(path, library, read_source(path))


def scenario_from_data(data: dict[str, Any], source: str = "<journal>") -> Scenario:
    """A Scenario from already-expanded data (a journal's copy): kinds resolved, no library."""
    from chaosrunner.scenario.yaml_source import SourceMap

    problems = ProblemList(source, SourceMap())
    prepared = dict(data)
    if isinstance(prepared.get("faults"), list):
        prepared["faults"] = [
            _resolve_fault(entry, ("faults", index), problems)
            for index, entry in enumerate(prepared["faults"])
        ]
    try:
        scenario = Scenario.model_validate(prepared)
    except ValidationError as exc:
        problems.add_validation_error(exc, Scenario)
    if problems.problems:
        raise ScenarioError(problems.sorted())
    return scenario


def load_library_condition(path: Path) -> LibraryCondition:
    return read_model(path, LibraryCondition, check=_check_library_condition)


def load_document(path: Path, library: ConditionLibrary | None = None) -> Scenario | LibraryCondition:
    """Load any chaosrunner document, dispatching on its top-level ``kind``."""
    parsed = read_source(path)
    data, source_map = parsed
    kind = data.get("kind", "Scenario")
    if kind == "AbortCondition":
        return read_model(path, LibraryCondition, check=_check_library_condition, parsed=parsed)
    if kind != "Scenario":
        problems = ProblemList(str(path), source_map)
        problems.add(
            ("kind",),
            f"unknown document kind {kind!r}; expected one of: {', '.join(DOCUMENT_KINDS)}",
        )
        raise ScenarioError(problems.sorted())
    return _load_scenario(path, library, parsed)


def _load_scenario(
    path: Path, library: ConditionLibrary | None, parsed: tuple[dict[str, Any], Any]
) -> Scenario:
    library = library or ConditionLibrary.for_scenario(path)

    def prepare(data: dict[str, Any], problems: ProblemList) -> dict[str, Any]:
        data = dict(data)
        if isinstance(data.get("faults"), list):
            data["faults"] = [
                _resolve_fault(entry, ("faults", index), problems)
                for index, entry in enumerate(data["faults"])
            ]
        if isinstance(data.get("abort_conditions"), list):
            data["abort_conditions"] = [
                _resolve_condition(entry, ("abort_conditions", index), problems, library)
                for index, entry in enumerate(data["abort_conditions"])
            ]
        if isinstance(data.get("steady_state"), list):
            data["steady_state"] = [
                _resolve_steady_state(entry, ("steady_state", index), problems)
                for index, entry in enumerate(data["steady_state"])
            ]
        return data

    return read_model(path, Scenario, prepare=prepare, check=_check_scenario, parsed=parsed)


def _validate_part(
    model: type[BaseModel], value: Any, path: DataPath, problems: ProblemList
) -> BaseModel | None:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems.add_validation_error(exc, model, prefix=path)
        problems.cover(path)
        return None


def _resolve_fault(entry: Any, path: DataPath, problems: ProblemList) -> Any:
    """Replace ``params``/``selector`` with the kind's typed models."""
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
        return entry  # the model reports the missing or mistyped kind
    kind = entry["kind"]
    fault_class = registry.get(kind)
    if fault_class is None:
        hint = did_you_mean(kind, registry.kinds()) or " (list them with `chaosrunner faults`)"
        problems.add((*path, "kind"), f"unknown fault kind {kind!r}{hint}")
        problems.cover(path)
        return entry
    resolved = dict(entry)
    resolved["params"] = _validate_part(
        fault_class.Params, entry.get("params") or {}, (*path, "params"), problems
    )
    if fault_class.Selector is None:
        if entry.get("selector") is not None:
            problems.add((*path, "selector"), f"fault kind {kind!r} takes no selector")
            problems.cover((*path, "selector"))
    else:
        resolved["selector"] = _validate_part(
            fault_class.Selector, entry.get("selector") or {}, (*path, "selector"), problems
        )
    return resolved


def _resolve_steady_state(entry: Any, path: DataPath, problems: ProblemList) -> Any:
    """Validate a steady-state entry as the kind it is (``http:`` or PromQL), so a mistake is
    reported at its own key, with that kind's keys as the suggestions."""
    if not isinstance(entry, dict):
        return entry
    model = HttpSteadyStateCheck if steady_state_kind(entry) == "http" else SteadyStateCheck
    return _validate_part(model, entry, path, problems) or entry


def _resolve_condition(entry: Any, path: DataPath, problems: ProblemList, library: ConditionLibrary) -> Any:
    """Expand ``use: NAME`` into the complete condition from the library."""
    if not isinstance(entry, dict) or "use" not in entry:
        return entry
    reference = _validate_part(ConditionReference, entry, path, problems)
    if not isinstance(reference, ConditionReference):
        return entry
    try:
        return library.expand(reference)
    except UnresolvedReference as exc:
        problems.add((*path, exc.field), str(exc))
    except ScenarioError as exc:  # a broken library file: report its own located problems
        problems.problems.extend(exc.problems)
    problems.cover(path)
    return entry


def _duplicates(names: list[str]) -> list[int]:
    seen: set[str] = set()
    repeated = []
    for index, name in enumerate(names):
        if name in seen:
            repeated.append(index)
        seen.add(name)
    return repeated


def _check_scenario(scenario: Scenario, problems: ProblemList) -> None:
    for index in _duplicates([fault.name for fault in scenario.faults]):
        problems.add(("faults", index, "name"), f"duplicate fault name {scenario.faults[index].name!r}")
    for index in _duplicates([condition.name for condition in scenario.abort_conditions]):
        name = scenario.abort_conditions[index].name
        problems.add(("abort_conditions", index), f"duplicate abort condition name {name!r}")
    checks = scenario.steady_state_checks
    for index in _duplicates([check.name for check in checks]):
        problems.add(("steady_state", index, "name"), f"duplicate steady-state check {checks[index].name!r}")
    for index in _duplicates(scenario.detection.all_alerts()):
        problems.add(("detection",), f"alert {scenario.detection.all_alerts()[index]!r} is listed twice")
    settings = scenario.gameday
    limit = settings.max_duration
    for index, fault in enumerate(scenario.faults):
        if fault.start >= limit:
            problems.add(
                ("faults", index, "start"),
                "starts after the run's max_duration; it would never run",
            )
        elif fault.duration is not None and fault.start + fault.duration > limit:
            problems.add(
                ("faults", index, "duration"),
                "ends after the run's max_duration; shorten it or raise max_duration",
            )
        elif fault.duration is None and settings.mode is Mode.AUTOMATED:
            problems.add(
                ("faults", index, "duration"),
                "needs a duration in automated mode (only gameday mode holds faults until mitigation)",
            )
        if (
            getattr(fault.selector, "random", False)
            and not getattr(fault.selector, "random_spreads", False)
            and fault.blast_radius.mode is not BlastRadiusMode.ONE
        ):
            problems.add(
                ("faults", index, "blast_radius", "mode"),
                "a random (Chaos Monkey) selector picks exactly one victim: use mode one",
            )
    _check_run_sheet(scenario, problems)
    if settings.check_interval.total_seconds() < 0.1:
        problems.add(("gameday", "check_interval"), "must be at least 100ms")
    if (
        scenario.abort_conditions or scenario.steady_state or scenario.mitigation
    ) and not scenario.target.prometheus:
        problems.add(("target",), "abort conditions, steady state and mitigation need target.prometheus")


def _check_run_sheet(scenario: Scenario, problems: ProblemList) -> None:
    sheet = scenario.run_sheet
    limit = scenario.gameday.max_duration
    for index in _duplicates([inject.name for inject in sheet.injects]):
        problems.add(
            ("run_sheet", "injects", index, "name"), f"duplicate inject name {sheet.injects[index].name!r}"
        )
    for index, inject in enumerate(sheet.injects):
        if inject.unless is not None and inject.unless not in MARK_NAMES:
            problems.add(
                ("run_sheet", "injects", index, "unless"),
                f"{inject.unless!r} is not a mark; expected one of: {', '.join(MARK_NAMES)}"
                + did_you_mean(inject.unless, MARK_NAMES),
            )
        if inject.at >= limit:
            problems.add(
                ("run_sheet", "injects", index, "at"),
                "is at or after the run's max_duration; it would never fire",
            )
    if sheet.go_timeout.total_seconds() <= 0:
        problems.add(("run_sheet", "go_timeout"), "must be longer than zero")


def _check_library_condition(condition: LibraryCondition, problems: ProblemList) -> None:
    used = set(placeholders(condition.expr))
    for name in sorted(used - set(condition.params)):
        problems.add(("expr",), f"placeholder ${{{name}}} is not declared under params")
    for name in sorted(set(condition.params) - used):
        problems.add(("params", name), f"param {name!r} is not used in expr")
