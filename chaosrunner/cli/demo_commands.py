"""`chaosrunner demo`: the whole product on one machine, in about two minutes."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.option("--interactive", is_flag=True, help="You play the responder; the mark commands are shown.")
@click.option("--down", is_flag=True, help="Stop the sandbox's processes and remove its monitoring config.")
@click.option(
    "--up", "up_only", is_flag=True, help="Start the sandbox and leave it running, without a gameday."
)
@click.option("--plain", is_flag=True, help="Plain event lines even on a terminal.")
def demo(interactive: bool, down: bool, up_only: bool, plain: bool) -> None:
    """Run a gameday on the embedded sandbox: a checkout service whose database
    connection pool gets exhausted, monitored in three layers, with a scripted
    responder (or you, with --interactive), then the debrief."""
    from chaosrunner.cli.console import make_console
    from chaosrunner.cli.gameday_commands import print_summary
    from chaosrunner.demo.play import interactive_instructions, play
    from chaosrunner.demo.sandbox import Sandbox

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

    def started(runner: Any) -> None:
        if interactive:
            click.echo(interactive_instructions(runner.run_dir.run_id, sandbox))

    try:
        run = play(sandbox, listeners, interactive=interactive, on_started=started)
    finally:
        for console in consoles:
            console.close()
    click.echo()
    print_summary(run.debrief)
    click.echo(f"\njournal: {run.result.journal_path}")
    if run.report is not None:
        click.echo(f"report:  {run.report}")
    raise SystemExit(run.result.exit_code)
