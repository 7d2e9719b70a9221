"""``chaosrunner serve``: browse past runs and their debrief reports in the console page."""

from __future__ import annotations

import click


@click.command()
def serve() -> None:
    """Serve past runs read-only (being built)."""
    raise click.UsageError("chaosrunner serve is not ready yet")
