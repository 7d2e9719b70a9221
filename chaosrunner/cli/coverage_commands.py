"""`chaosrunner coverage`: which failures the alerts catch, how fast, which alerts are noise.

Reads finished runs' report documents from the results store (SQLite in the
state folder, or PostgreSQL when CHAOSRUNNER_RESULTS_DSN names one) and maps
scenarios against every alert rule seen (report.coverage). Parse, call, print.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from chaosrunner.cli.output import echo_json, echo_table


def stored_documents(scenarios: Sequence[str] | None, since: datetime | None) -> Iterator[dict[str, Any]]:
    """The store's report documents (oldest first), of the named scenarios, since a time."""
    from chaosrunner.results.store import open_store
    from chaosrunner.statedir import state_dir

    with open_store(state_dir()) as store:
        yield from store.documents(scenarios or None, since)


@click.command()
@click.option("--scenario", "scenarios", multiple=True, metavar="TITLE", help="Only this scenario (repeat).")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    help="Only runs started at or after this UTC date/time.",
)
@click.option("--json", "as_json", is_flag=True, help="Print rows, alerts and scenarios as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page here.",
)
def coverage(
    scenarios: tuple[str, ...], since: datetime | None, as_json: bool, html_path: Path | None
) -> None:
    """Detection coverage across stored runs: scenarios x alert rules (docs/coverage.md)."""
    from chaosrunner.private_files import write_private
    from chaosrunner.report.coverage import coverage as build_coverage
    from chaosrunner.report.coverage_render import html_page, text_lines
    from chaosrunner.terminal_escapes import strip_terminal_escapes

    found = build_coverage(
        stored_documents(list(scenarios) or None, since.replace(tzinfo=UTC) if since else None)
    )
    if html_path is not None:
        write_private(html_path, html_page(found))
    if as_json:
        echo_json(found.as_json())
        return
    if not found.runs:
        click.echo("no stored runs with detection data" + (" for those scenarios" if scenarios else ""))
    else:
        echo_table(
            [tuple(strip_terminal_escapes(cell) for cell in row) for row in text_lines(found)], indent=0
        )
    if html_path is not None:
        click.echo(f"wrote {html_path}")
