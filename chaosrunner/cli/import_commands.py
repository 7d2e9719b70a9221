"""`chaosrunner import`: Chaos Toolkit experiments and run journals (docs/import-chaostoolkit.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group(name="import")
def import_() -> None:
    """Bring Chaos Toolkit experiments and run journals over."""


@import_.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scenario here [default: stdout].",
)
@click.option(
    "--skip-unsupported",
    is_flag=True,
    help="Import what maps; list what was left out at the top of the file.",
)
def ctk(file: Path, out: Path | None, skip_unsupported: bool) -> None:
    """A Chaos Toolkit experiment (JSON or YAML) -> a commented scenario that validates."""
    from chaosrunner.importers.ctk_experiment import import_experiment
    from chaosrunner.importers.scenario_text import render_scenario
    from chaosrunner.importers.validation import validate_text
    from chaosrunner.private_files import write_private

    imported = import_experiment(file, skip_unsupported=skip_unsupported)
    text = render_scenario(imported)
    scenario = validate_text(text, out.name if out else "imported.yaml")
    if out is None:
        click.echo(text, nl=False)
    else:
        write_private(out, text)
        click.echo(
            f"wrote {out}: {len(scenario.faults)} fault(s), {len(imported.steady_state)} steady-state "
            f"check(s), {len(imported.abort_conditions)} abort condition(s)",
            err=True,
        )
    for refusal in imported.skipped:
        click.echo(f"left out: {refusal}", err=True)
    if imported.review:
        click.echo(
            f"review: {'; '.join(item.split(':', 1)[0] for item in imported.review)} (see the file's top)",
            err=True,
        )
    sys.stdout.flush()


@import_.command(name="ctk-journal")
@click.argument("journal", type=click.Path(dir_okay=False, path_type=Path))
def ctk_journal(journal: Path) -> None:
    """A Chaos Toolkit run journal (journal.json) -> a run in our history, with a report."""
    from chaosrunner.cli.run_commands import guarded, record_in_results
    from chaosrunner.importers.ctk_journal import import_journal

    run = import_journal(journal)
    click.echo(
        f"imported run {run.run_id}: {run.title} - {run.status}, "
        f"started {run.started[:19].replace('T', ' ')}; "
        f"{run.activities} activities, {run.checks} steady-state probe results"
    )
    click.echo(f"report: chaosrunner report {run.run_id} --offline")
    # Into the store too, which `coverage` and other machines' `history` read.
    guarded("the results store", record_in_results, run.run_id, None, False)
