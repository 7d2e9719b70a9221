"""Commands that read scenario files: validate, plan, faults, schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from chaosrunner.cli.output import echo_json, echo_table

DOCUMENT_SUFFIXES = (".yaml", ".yml")

library_option = click.option(
    "--library",
    "libraries",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of abort conditions searched before any other (repeatable; "
    "also CHAOSRUNNER_LIBRARY). Then: the scenario's own abort_conditions/, "
    "./abort_conditions, the bundled library.",
)


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in DOCUMENT_SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return files


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@library_option
def validate(paths: tuple[Path, ...], as_json: bool, libraries: tuple[Path, ...]) -> None:
    """Check scenario and abort-condition files (or folders of them).

    Every mistake is reported as FILE:LINE:COLUMN: FIELD: MESSAGE on stderr;
    the exit code is 2 when any file is invalid.
    """
    from chaosrunner.errors import ScenarioError
    from chaosrunner.scenario.document import read_source
    from chaosrunner.scenario.library import ConditionLibrary
    from chaosrunner.scenario.loader import load_document
    from chaosrunner.scenario.models import Scenario
    from chaosrunner.schedule.loader import load_schedule

    results: list[dict[str, Any]] = []
    for path in _expand(paths):
        try:
            if read_source(path)[0].get("kind") == "Schedule":
                loaded = load_schedule(path)
                results.append({"file": str(path), "valid": True, "kind": "schedule", "title": loaded.name})
                if not as_json:
                    click.echo(f"ok  {path}  (schedule: {loaded.name}, {len(loaded.entries)} entries)")
                continue
            document = load_document(path, ConditionLibrary.for_scenario(path, libraries))
        except ScenarioError as error:
            results.append({"file": str(path), "valid": False, "problems": [str(p) for p in error.problems]})
            if not as_json:
                click.echo(error.show(), err=True)
            continue
        if isinstance(document, Scenario):
            kind, title = "scenario", document.metadata.title
        else:
            kind, title = "abort condition", document.name
        results.append({"file": str(path), "valid": True, "kind": kind, "title": title})
        if not as_json:
            click.echo(f"ok  {path}  ({kind}: {title})")
    invalid = sum(1 for result in results if not result["valid"])
    if as_json:
        echo_json(results)
    else:
        click.echo(f"{len(results) - invalid} valid, {invalid} invalid", err=bool(invalid))
    if not results:
        raise click.UsageError("no .yaml or .yml files found in the given folders")
    if invalid:
        raise SystemExit(2)


@click.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--allow-production", is_flag=True, help="Plan as if production targets were allowed.")
@click.option(
    "--targets",
    "with_targets",
    is_flag=True,
    help="Also ask the live systems what each fault would hit (reads only; needs them reachable).",
)
@library_option
def plan(
    scenario: Path, as_json: bool, allow_production: bool, with_targets: bool, libraries: tuple[Path, ...]
) -> None:
    """Dry run: settings, fault timeline, abort conditions and offline safety checks.

    Touches nothing. With --targets, each fault's selector is resolved against
    the live target (containers, pods, processes, the database) the way a run
    would, still touching nothing. Exit code 2 when a safety check or a
    fault's plan refuses the scenario, 3 when a target cannot be reached.
    """
    from chaosrunner.engine.plan import plan_offline
    from chaosrunner.scenario.library import ConditionLibrary
    from chaosrunner.scenario.loader import load_scenario

    loaded = load_scenario(scenario, ConditionLibrary.for_scenario(scenario, libraries))
    result = plan_offline(loaded, str(scenario), allow_production=allow_production)
    resolved = None
    if with_targets and not result.refused:
        from chaosrunner.engine.targets import resolve_targets

        resolved = resolve_targets(loaded)
    if as_json:
        payload = result.model_dump(mode="json")
        if resolved is not None:
            payload["targets"] = [_resolved_json(fault) for fault in resolved]
        echo_json(payload)
    else:
        _print_plan(result)
        if resolved is not None:
            _print_targets(resolved)
    if result.refused or any(fault.refused for fault in resolved or []):
        raise SystemExit(2)
    if any(fault.unreachable for fault in resolved or []):
        raise SystemExit(3)


def _resolved_json(fault: Any) -> dict[str, Any]:
    return {
        "fault": fault.name,
        "kind": fault.kind,
        "targets": [target.model_dump() for target in fault.targets],
        "summary": fault.summary,
        "refused": fault.refused,
        "unreachable": fault.unreachable,
        "random_pick": fault.random_pick,
    }


def _print_targets(resolved: list[Any]) -> None:
    click.echo("\nTargets (asked the live systems; nothing was touched)")
    for fault in resolved:
        if fault.refused:
            click.echo(f"  REFUSED  {fault.name}: {fault.refused}")
        elif fault.unreachable:
            click.echo(f"  UNREACHABLE  {fault.name}: {fault.unreachable}")
        else:
            pick = " (a random pick: each run picks again)" if fault.random_pick else ""
            click.echo(f"  {fault.name}: {len(fault.targets)} target(s){pick}")
            click.echo(f"      {fault.summary}")


def _print_plan(result: Any) -> None:
    from chaosrunner.scenario.library import split_origin

    click.echo(f"Plan for {result.title!r} ({result.source}) - dry run, nothing is touched\n")
    click.echo("Settings")
    settings = {key: value for key, value in result.settings.items() if key != "target"}
    echo_table([(key, str(value)) for key, value in settings.items()])
    echo_table([(f"target.{key}", str(value)) for key, value in result.settings["target"].items()])
    click.echo("\nFault timeline")
    for window in result.faults:
        click.echo(f"  {window.start:>6} -> {window.end:<8} {window.name}  [{window.kind}]")
        click.echo(f"{'':19}blast radius: {window.blast_radius}")
        if window.selector:
            click.echo(f"{'':19}selector: {_inline(window.selector)}")
        if window.params:
            click.echo(f"{'':19}params: {_inline(window.params)}")
    click.echo("\nAbort conditions (any one holding aborts the run and reverts every fault)")
    if not result.abort_conditions:
        click.echo("  none")
    for condition in result.abort_conditions:
        used, shadowed = split_origin(condition["origin"])
        rule = f"{condition['comparator']} {condition['threshold']:g} for {condition['for']}"
        click.echo(f"  {condition['name']}: {rule}")
        click.echo(f"      {condition['expr']}")
        click.echo(f"      from {'the scenario (inline)' if used == 'inline' else used}")
        for other in shadowed:  # a local file overriding another, often the shipped one: say so
            click.echo(f"      WARNING: {used} shadows {other}")
    if result.steady_state:
        click.echo("\nSteady state")
        for check in result.steady_state:
            click.echo(f"  {check['name']}: {check['rule']}")
    click.echo("\nSafety checks")
    echo_table([(check.status.value.upper().ljust(4), check.name, check.detail) for check in result.checks])
    if result.refused:
        click.echo("\nRefused: fix the FAIL checks above before running.")


def _inline(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items() if value not in (None, [], {}))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def faults(as_json: bool) -> None:
    """The fault catalog: every kind with its params, types, defaults and docs."""
    from chaosrunner.faults.catalog import catalog

    kinds = catalog()
    if as_json:
        echo_json([kind.model_dump(mode="json") for kind in kinds])
        return
    for entry in kinds:
        click.echo(f"{entry.kind}\n  {entry.summary}")
        for title, fields in (("selector", entry.selector), ("params", entry.params)):
            if fields is None:
                continue
            click.echo(f"  {title}:" + ("" if fields else " none"))
            echo_table(
                [
                    (
                        field.name,
                        field.type,
                        "required" if field.required else f"default {field.default!r}",
                        field.description,
                    )
                    for field in fields
                ],
                indent=4,
            )
        click.echo()


@click.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from chaosrunner.scenario.schema import scenario_json_schema

    echo_json(scenario_json_schema())
