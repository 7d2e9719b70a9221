"""`chaosrunner schedule`: unattended chaos runs for staging."""

from __future__ import annotations

from pathlib import Path

import click

from chaosrunner.cli.output import echo_json, echo_table


@click.group()
def schedule() -> None:
    """Scheduled chaos: run a schedule as a daemon, list upcoming runs, export CronJobs."""


SCHEDULE_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@schedule.command("next")
@SCHEDULE_FILE
@click.option("--count", default=10, show_default=True, help="How many upcoming runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def next_runs(file: Path, count: int, as_json: bool) -> None:
    """List the upcoming runs, after windows, blackout dates and jitter."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from chaosrunner.schedule.loader import load_schedule
    from chaosrunner.schedule.timing import upcoming

    loaded = load_schedule(file)
    entries = {entry.name: entry for entry in loaded.entries}
    occurrences = upcoming(loaded.entries, datetime.now(UTC), count)
    if as_json:
        echo_json(
            [
                {"entry": o.entry, "start": o.start.isoformat(), "slot": o.slot.isoformat()}
                for o in occurrences
            ]
        )
        return
    rows = [("START (LOCAL)", "START (UTC)", "ENTRY", "SCENARIO")]
    for occurrence in occurrences:
        entry = entries[occurrence.entry]
        local = occurrence.start.astimezone(ZoneInfo(entry.timezone))
        rows.append(
            (
                f"{local:%a %Y-%m-%d %H:%M:%S} {entry.timezone}",
                f"{occurrence.start:%Y-%m-%d %H:%M:%S}",
                entry.name,
                loaded.scenarios[entry.name].metadata.title,
            )
        )
    echo_table(rows, indent=0)
    if not occurrences:
        click.echo("no run within a year: check the windows and blackout dates")


@schedule.command("run")
@SCHEDULE_FILE
def run_daemon(file: Path) -> None:
    """Run the schedule as a long-lived daemon (SIGTERM reverts the current run and exits)."""
    from datetime import UTC, datetime

    from chaosrunner.schedule.daemon import ScheduleDaemon
    from chaosrunner.schedule.execute import publish_outcome, run_scheduled
    from chaosrunner.schedule.loader import load_schedule

    loaded = load_schedule(file)

    def log(line: str) -> None:
        click.echo(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {line}")

    pushgateway = loaded.schedule.pushgateway
    daemon = ScheduleDaemon(
        loaded,
        run_scheduled,
        log=log,
        publish=publish_outcome(pushgateway, loaded.name) if pushgateway else None,
    )
    daemon.install_signal_handlers()
    log(f"schedule {loaded.name!r}: {len(loaded.entries)} entries; history in {daemon.history.path}")
    daemon.run_forever()
    log("stopped")


@schedule.command("export")
@SCHEDULE_FILE
@click.option(
    "--kubernetes", "kubernetes", is_flag=True, required=True, help="Export as Kubernetes CronJobs."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write manifests.yaml here (default: stdout).",
)
@click.option("--namespace", default="chaosrunner", show_default=True, help="Namespace of the CronJobs.")
@click.option(
    "--image", default="chaosrunner:latest", show_default=True, help="Image with chaosrunner installed."
)
@click.option(
    "--kubernetes-version", default="1.27", show_default=True, help="Target cluster version (API versions)."
)
@click.option(
    "--reports-claim", help="PersistentVolumeClaim for reports (default: an emptyDir; summary in the log)."
)
@click.option(
    "--allow-approximation", is_flag=True, help="Export entries whose windows/jitter/limits a CronJob lacks."
)
def export_schedule(
    file: Path,
    kubernetes: bool,
    out: Path | None,
    namespace: str,
    image: str,
    kubernetes_version: str,
    reports_claim: str | None,
    allow_approximation: bool,
) -> None:
    """Write the schedule as CronJobs, a ServiceAccount with least-privilege Roles, a ConfigMap and a Secret.

    Secrets the scenarios name by environment variable are read from this
    environment into the Secret, so the file is written 0600. A secret
    written into a scenario (a password in a URL) is refused.
    """
    from chaosrunner.schedule.kubernetes_export import export, parse_version, to_yaml, write_manifests
    from chaosrunner.schedule.loader import load_schedule

    result = export(
        load_schedule(file),
        namespace=namespace,
        image=image,
        kubernetes_version=parse_version(kubernetes_version),
        reports_claim=reports_claim,
        allow_approximation=allow_approximation,
    )
    text = to_yaml(result)
    if out is None:
        click.echo(text)
    else:
        write_manifests(out / "manifests.yaml", text)
        click.echo(f"wrote {len(result.manifests)} manifests to {out / 'manifests.yaml'}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
