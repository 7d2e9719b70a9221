"""Commands for the debrief: report and history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from chaosrunner.cli.output import echo_json, echo_table


@click.command()
@click.argument("run_id")
@click.option(
    "--format",
    "formats",
    default="html,md,json",
    show_default=True,
    help="Comma-separated formats to write: html, md, json.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into [default: reports/<date>-<scenario>-<run-id>/].",
)
@click.option("--offline", is_flag=True, help="From the journal alone, without querying Prometheus.")
def report(run_id: str, formats: str, out: Path | None, offline: bool) -> None:
    """Write the debrief report of a run: HTML, Markdown and JSON."""
    from chaosrunner.report.writer import parse_formats, write_run_report

    written = write_run_report(run_id, formats=parse_formats(formats), out=out, offline=offline)
    for name, path in written.files.items():
        if name in ("html", "md", "json"):
            click.echo(f"{name:5} {path}")
    if "json" in written.files:
        refresh_results(run_id, written)


def refresh_results(run_id: str, written: Any) -> None:
    """A finished run's store entry becomes the report just written (it may now have Prometheus data).

    A live run's report is a snapshot, not a result: the store waits for its end."""
    from chaosrunner.cli.run_commands import guarded, record_in_results
    from chaosrunner.engine.rundir import RunDir
    from chaosrunner.results.record import finished

    if finished(RunDir.find(run_id)):
        guarded("the results store", record_in_results, run_id, written, False)


@click.command()
@click.argument("scenario", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def history(scenario: str | None, as_json: bool) -> None:
    """TTD, TTM and score across the runs of a scenario (title, slug or file), or of every scenario."""
    from chaosrunner.report import fmt
    from chaosrunner.report.history import group
    from chaosrunner.results.history import merged_history
    from chaosrunner.statedir import state_dir

    # The results store's runs (every machine's) merged with this state folder's; the folder's alone
    # when the store cannot be read (a warning says why).
    merged = merged_history(scenario, state_dir())
    for warning in merged.warnings:
        click.echo(f"warning: {warning}", err=True)
    entries = merged.entries
    if as_json:
        echo_json([entry.__dict__ for entry in entries])
        return
    if not entries:
        click.echo(f"no runs of {scenario!r}" if scenario else "no runs yet")
        return

    def seconds(value: Any) -> str:
        return fmt.duration(value) if value is not None else "-"

    for key, runs in group(entries).items():
        click.echo(f"{runs[-1].scenario} ({key}): {len(runs)} run(s)")
        rows = [("RUN", "STARTED", "STATUS", "TTD", "TTM", "SCORE", "FROM")]
        for entry in runs:
            score = f"{entry.score:g} {entry.grade}" if entry.score is not None else "-"
            rows.append(
                (
                    entry.run_id,
                    entry.started[:19].replace("T", " "),
                    entry.status,
                    seconds(entry.ttd_seconds),
                    seconds(entry.ttm_seconds),
                    score,
                    entry.source,
                )
            )
        echo_table(rows)
