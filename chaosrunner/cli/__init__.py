"""The command line: parse, call one function, print. Nothing else.

This is the only layer that prints, and the one place errors become exit
codes: every ``ChaosrunnerError`` is caught here, shown on stderr without a
traceback, and turned into its ``exit_code`` (0 ok, 1 run failed or aborted,
2 bad input, 3 environment problem).

Start-up cost is a feature: command modules import nothing heavy at module
scope (no pydantic, docker, kubernetes, psycopg or matplotlib), so
``chaosrunner --help`` stays fast. See bench/startup.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from chaosrunner import __version__
from chaosrunner.cli import (
    demo_commands,
    gameday_commands,
    report_commands,
    run_commands,
    scenario_commands,
    schedule_commands,
)
from chaosrunner.errors import ChaosrunnerError


class ChaosrunnerGroup(click.Group):
    """Maps our exceptions to messages and exit codes, once, at the top."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ChaosrunnerError as error:
            click.echo(error.show(), err=True)
            ctx.exit(error.exit_code)


@click.group(cls=ChaosrunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chaosrunner")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CHAOSRUNNER_STATE_DIR",
    help="Where run journals and the kill switch live [default: ~/.local/state/chaosrunner].",
)
def cli(state_dir: Path | None) -> None:
    """Gameday and chaos-engineering orchestrator.

    Injects real faults under Prometheus abort conditions, times how long the
    team takes to detect and mitigate, always reverts, and scores the response.
    """
    if state_dir is not None:  # every process of a run (holders, recover) must agree on it
        os.environ["CHAOSRUNNER_STATE_DIR"] = str(state_dir)


scenario_commands.register(cli)
run_commands.register(cli)
gameday_commands.register(cli)
report_commands.register(cli)
demo_commands.register(cli)
schedule_commands.register(cli)


def main() -> None:
    try:
        cli.main(prog_name="chaosrunner")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
