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

import importlib
import keyword
import os
import sys
from pathlib import Path
from typing import Any

import click

from chaosrunner import __version__
from chaosrunner.errors import ChaosrunnerError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module in chaosrunner.cli, what `chaosrunner --help` says about it)
    "validate": ("scenario_commands", "Check scenario, abort-condition and schedule files."),
    "plan": ("scenario_commands", "Dry run: timeline, abort conditions, safety checks."),
    "faults": ("scenario_commands", "The fault catalog with every param documented."),
    "schema": ("scenario_commands", "The JSON Schema of scenario files, for editors."),
    "run": ("run_commands", "Run a scenario: inject, watch, always revert."),
    "runs": ("run_commands", "List runs and their status."),
    "recover": ("run_commands", "Revert what dead runs left behind (--kubernetes too)."),
    "abort": ("run_commands", "Stop one run, or all of them (the kill switch)."),
    "toxic": ("run_commands", "List a live run's fault proxies, or switch a toxic on or off."),
    "mark": ("gameday_commands", "Record what the team did during a gameday."),
    "score": ("gameday_commands", "TTD, TTM, TTR and the team's score for a run."),
    "go": ("gameday_commands", "Go or no-go for a gameday waiting on its run sheet."),
    "import": ("import_commands", "Bring Chaos Toolkit experiments and run journals over."),
    "import-chat": ("gameday_commands", "Score what the team wrote: marks from a Slack/Mattermost export."),
    "report": ("report_commands", "Write a run's debrief report (HTML, Markdown, JSON)."),
    "export-promtool": ("promtool_commands", "A run's detection as a promtool rule test, for CI."),
    "history": ("report_commands", "TTD, TTM and score across runs of a scenario."),
    "coverage": ("coverage_commands", "Which failures the alerts catch, how fast, and which are noise."),
    "results": ("results_commands", "The results store: where it is; `sync` this machine's runs into it."),
    "serve": ("serve_commands", "Browse past runs and their reports in the console."),
    "demo": ("demo_commands", "Play a whole gameday on the embedded sandbox."),
    "schedule": ("schedule_commands", "Scheduled chaos: daemon, next runs, CronJob export."),
}
"""Commands load on use: `chaosrunner --help` imports none of their modules (start-up time)."""


class ChaosrunnerGroup(click.Group):
    """Loads commands lazily, and maps our exceptions to messages and exit codes, once, at the top."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"chaosrunner.cli.{entry[0]}")
        attribute = cmd_name.replace("-", "_")  # import-chat: import_chat
        if keyword.iskeyword(attribute):  # import: import_
            attribute += "_"
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

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


def main() -> None:
    try:
        cli.main(prog_name="chaosrunner")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
