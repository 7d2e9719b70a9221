"""``chaosrunner export-promtool``: a run's detection as a promtool rule test, for CI."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export-promtool")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write [default: promtool-<RUN_ID>.yml in the working folder].",
)
@click.option(
    "--rule-file",
    "rule_files",
    multiple=True,
    help="A rule file the test loads (repeat) [default: the files Prometheus reported for the alerts].",
)
@click.option(
    "--alert", "alerts", multiple=True, help="Test this alert (repeat) [default: every alert that fired]."
)
@click.option(
    "--max-series",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Refuse more input series.",
)
@click.option(
    "--max-samples",
    type=click.IntRange(min=1),
    default=500_000,
    show_default=True,
    help="Refuse more input samples.",
)
def export_promtool(
    run_id: str,
    output: Path | None,
    rule_files: tuple[str, ...],
    alerts: tuple[str, ...],
    max_series: int,
    max_samples: int,
) -> None:
    """Write a promtool rule test from a run: the samples its rules read, the alerts that fired and when.

    `promtool test rules FILE` passes on it with the team's rule files, so the detection this run
    proved stays proven in CI.
    """
    from chaosrunner.report.promtool.export import export_run, write_export

    export = export_run(
        run_id, rule_files=rule_files, alerts=alerts, max_series=max_series, max_samples=max_samples
    )
    path = write_export(export, output or Path(f"promtool-{run_id}.yml"))
    for note in export.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"{path}  alerts: {', '.join(export.alerts)}; {export.series} series, {export.samples} samples"
    )
