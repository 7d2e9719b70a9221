"""`chaosrunner demo`: the whole product on one machine, in about two minutes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click


@click.command()
@click.option(
    "--interactive", is_flag=True, help="You play the facilitator and the responder, in the console page."
)
@click.option("--down", is_flag=True, help="Stop the sandbox's processes and remove its monitoring config.")
@click.option(
    "--up", "up_only", is_flag=True, help="Start the sandbox and leave it running, without a gameday."
)
@click.option("--plain", is_flag=True, help="Plain event lines even on a terminal.")
@click.option(
    "--linger",
    default="0s",
    metavar="DURATION",
    help="Keep the console up this long after the debrief (interactive on a terminal: until Enter).",
)
def demo(interactive: bool, down: bool, up_only: bool, plain: bool, linger: str) -> None:
    """Run a gameday on the embedded sandbox: a checkout service whose database
    connection pool gets exhausted, monitored in three layers, with a scripted
    responder (or you, with --interactive), then the debrief."""
    from chaosrunner.cli.console import make_console
    from chaosrunner.cli.gameday_commands import print_summary
    from chaosrunner.cli.run_commands import parse_linger
    from chaosrunner.demo.play import interactive_instructions, play
    from chaosrunner.demo.sandbox import Sandbox

    linger_seconds = parse_linger(linger)
    sandbox = Sandbox()
    if down:
        stopped = sandbox.down()
        click.echo("sandbox stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return
    click.echo("starting the sandbox (PostgreSQL, Prometheus, Alertmanager, checkout service, traffic)...")
    steps: list[str] = []
    sandbox.up(log=steps)
    for step in steps:
        click.echo(f"  {step}")
    if up_only:
        click.echo(
            f"sandbox is up: http://127.0.0.1:18080/checkout, Prometheus {sandbox.rig.prometheus}; "
            "stop it with `chaosrunner demo --down`"
        )
        return
    consoles: list[Any] = []

    def listeners(runner: Any) -> list[Any]:
        consoles.append(make_console(runner, force_plain=plain or interactive))
        return consoles

    def started(runner: Any, links: Any) -> None:
        if interactive:
            click.echo(interactive_instructions(runner.run_dir.run_id, sandbox, links))
            if links is not None:
                open_in_browser(links.facilitator, runner.run_dir.path)
        elif links is not None:  # the scripted team plays; a person may watch (the observer link cannot post)
            click.echo(f"watch it live in a browser: {links.observer}")

    def after_report() -> None:
        if interactive and sys.stdin.isatty():
            click.echo("\nThe debrief is in the console page. Press Enter to stop the console.")
            sys.stdin.readline()
        elif linger_seconds:
            click.echo(f"\nThe debrief is in the console page for {linger_seconds:g}s more.")
            time.sleep(linger_seconds)

    try:
        run = play(sandbox, listeners, interactive=interactive, on_started=started, after_report=after_report)
    finally:
        for console in consoles:
            console.close()
    click.echo()
    print_summary(run.debrief)
    click.echo(f"\njournal: {run.result.journal_path}")
    if run.report is not None:
        click.echo(f"report:  {run.report}")
    if run.stored:
        click.echo(f"results: {run.stored}")
    raise SystemExit(run.result.exit_code)


def open_in_browser(link: str, run_folder: Path) -> None:
    """Open the console where a desktop browser exists; never a text browser in this terminal.

    The link carries the facilitator's token, and a browser's command line is
    visible to every user of the machine: the browser is given a private file
    in the run folder (0600, in a 0700 folder) that sends it on to the link.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return  # a server or an SSH session: the link is printed above
    import json
    import webbrowser

    from chaosrunner.private_files import write_private

    page = run_folder / "open-console.html"
    target = json.dumps(link).replace("<", "\\u003c")  # a JavaScript string, inert inside <script>
    write_private(page, f"<!DOCTYPE html><script>location.replace({target})</script>\n")
    try:
        webbrowser.open(page.as_uri(), new=2)
    except webbrowser.Error:
        return
