"""Commands that run experiments and look after them: run, runs, recover, abort."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from chaosrunner.cli.output import echo_json, echo_table


@click.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["automated", "gameday"]), help="Override the scenario's mode.")
@click.option("--allow-production", is_flag=True, help="Allow a target marked production.")
@click.option("--plain", is_flag=True, help="Plain event lines even on a terminal.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON at the end.")
@click.option(
    "--port", default=0, show_default=True, help="Responder endpoint port in gameday mode (0: any)."
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve the console and the responder endpoint on this address (e.g. 0.0.0.0:8765 for the "
    "room's network) instead of 127.0.0.1:--port. Every request needs a run token; put TLS in front.",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The origin your TLS proxy serves the console under (https://gameday.example.net): "
    "accepted as Host and Origin, and the printed links use it.",
)
@click.option(
    "--linger",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Gameday: keep the console serving this long after the report is written (e.g. 10m).",
)
def run(
    scenario: Path,
    mode: str | None,
    allow_production: bool,
    plain: bool,
    as_json: bool,
    port: int,
    listen: str | None,
    public_url: str | None,
    linger: str,
) -> None:
    """Run a scenario: inject, watch abort conditions, always revert.

    In gameday mode faults stay until the team mitigates. The facilitator
    console, the team's and the observers' links are printed at start; mark
    what the team does there, with `chaosrunner mark`, or by POSTing to the
    responder endpoint. An automated run serves the page read-only (the
    observer's link). Exit code 0 when the hypothesis held, 1 when the run
    aborted or the system deviated, 2 for bad input, 3 when a service could
    not be reached or the endpoint's port is in use.
    """
    from chaosrunner.cli.console import make_console
    from chaosrunner.engine.runner import Runner, RunOptions
    from chaosrunner.gameday.endpoint import LOOPBACK, parse_listen
    from chaosrunner.gameday.server.guards import PublicUrl
    from chaosrunner.gameday.session import GamedaySession
    from chaosrunner.observe.prometheus import PrometheusHTTP
    from chaosrunner.observe.pushgateway import ChaosWindowPublisher
    from chaosrunner.scenario.loader import load_scenario
    from chaosrunner.scenario.models import Mode

    if listen is not None and port:
        raise click.UsageError("give --listen HOST:PORT or --port, not both")
    linger_seconds = parse_linger(linger)
    host, port = parse_listen(listen) if listen is not None else (LOOPBACK, port)
    public = PublicUrl.parse(public_url) if public_url is not None else None
    document = load_scenario(scenario)
    target = document.target
    metrics = PrometheusHTTP(target.prometheus) if target.prometheus else None
    options = RunOptions(allow_production=allow_production, mode=Mode(mode) if mode else None)
    runner = Runner(document, str(scenario), metrics, options)
    # First, before anything is shown or created: a port in use ends the command here.
    gameday = GamedaySession(runner, metrics, endpoint_port=port, endpoint_host=host, public_url=public)
    console = make_console(runner, force_plain=plain or as_json)
    publisher = (
        ChaosWindowPublisher(target.pushgateway, document.metadata.title) if target.pushgateway else None
    )
    listeners: list[Any] = [] if as_json else [console]
    runner.listeners.extend(
        [*listeners, gameday, show_links_once(gameday), *([publisher] if publisher else [])]
    )

    def report_then_linger(report_file: Path | None, outcome: Any) -> None:
        gameday.report_written(report_file, outcome)
        gameday.linger(linger_seconds)

    try:
        try:
            result = runner.run()
        finally:
            # Each in its own guard: a console or listener that fails to close must not
            # skip the others, the summary, the report or the Pushgateway clean-up.
            guarded("the gameday watcher", gameday.end_of_run)
            guarded("the console", console.close)
            if publisher is not None:
                guarded("the Pushgateway clean-up", publisher.close)
        finish_run(
            result, runner.mode is Mode.GAMEDAY, metrics, as_json=as_json, on_report=report_then_linger
        )
    finally:
        # The run's server outlives the run: the pages get the report, then bye.
        guarded("the gameday session", gameday.close)


def parse_linger(text: str) -> float:
    from chaosrunner.durations import parse_duration

    if text.strip() == "0":
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--linger") from None


def show_links_once(gameday: Any) -> Any:
    """A listener: print the console's three links on the runner's terminal once, when the server serves.

    The tokens are in the links' fragments (``#token=``), which browsers never send anywhere; the
    journal gets the address alone.
    """

    def show(event: dict[str, Any]) -> None:
        server = gameday.server
        if event["type"] != "responder_endpoint" or server is None:
            return
        tokens = server.tokens
        if server.read_only:
            click.echo(f"console (read-only, automated run): {server.link(tokens.observer)}", err=True)
            return
        click.echo(f"facilitator console: {server.link(tokens.facilitator)}", err=True)
        click.echo(f"team link (incident commander, responders): {server.link(tokens.team)}", err=True)
        click.echo(f"observer link (watch only): {server.link(tokens.observer)}", err=True)
        click.echo(
            f"responder token for `chaosrunner mark --url` (the facilitator's): {server.token_file}",
            err=True,
        )

    return show


def guarded(what: str, step: Any, *args: Any) -> Any:
    """Run one end-of-run step; a failure is a one-line warning and the next step still runs."""
    try:
        return step(*args)
    except Exception as error:
        click.echo(f"warning: {what} failed: {type(error).__name__}: {error}", err=True)
        return None


def finish_run(
    result: Any, gameday_mode: bool, metrics: Any, *, as_json: bool, on_report: Any = None
) -> None:
    """The end of every run: the result, the summary (gameday), the report, the exit code.

    ``on_report`` is told where the HTML report is (None when it was not written) and the gameday's
    debrief (None for an automated run, or when it could not be made), before the exit.
    """
    if as_json:
        echo_json(
            {
                "run_id": result.run_id,
                "status": result.status.value,
                "detail": result.detail,
                "exit_code": result.exit_code,
                "journal": str(result.journal_path),
            }
        )
    outcome = None
    if not as_json:
        click.echo(f"\n{result.status.value}: {result.detail}")
        click.echo(f"journal: {result.journal_path}")
        if gameday_mode:
            click.echo()
            outcome = guarded("the gameday summary", summarise, result.run_id, metrics)
    elif gameday_mode and on_report is not None:  # no summary on stdout, but the channel hears the score
        outcome = guarded("the gameday debrief", debrief_quietly, result.run_id, metrics)
    written = guarded("the report", write_report_at_end, outcome or result.run_id, metrics, as_json)
    report_file: Path | None = written.files.get("html") if written is not None else None
    guarded("the results store", record_in_results, result.run_id, written, as_json)
    if on_report is not None:
        guarded("the console's report", on_report, report_file, outcome)
    raise SystemExit(result.exit_code)


def summarise(run_id: str, metrics: Any) -> Any:
    from chaosrunner.cli.gameday_commands import print_summary
    from chaosrunner.gameday.debrief import debrief

    outcome = debrief(run_id, metrics)
    print_summary(outcome)
    return outcome


def debrief_quietly(run_id: str, metrics: Any) -> Any:
    from chaosrunner.gameday.debrief import debrief

    return debrief(run_id, metrics)


def write_report_at_end(run: Any, metrics: Any, to_stderr: bool) -> Any:
    """Every run ends with its debrief report; a report that fails never changes the exit code.

    Returns the ``WrittenReport`` (None when it was not written)."""
    from chaosrunner.errors import ChaosrunnerError
    from chaosrunner.report.writer import write_run_report

    try:
        written = write_run_report(run, metrics=metrics)
    except (ChaosrunnerError, OSError) as error:
        click.echo(f"report: not written ({error}); try `chaosrunner report RUN_ID`", err=True)
        return None
    # With --json, stdout is the JSON document alone: where the report is goes to stderr.
    click.echo(f"report: {written.main}", err=to_stderr)
    return written


def record_in_results(run_id: str, written: Any, to_stderr: bool) -> None:
    """The run's report JSON beside its journal and into the results store (a failure is a warning)."""
    from chaosrunner.results.record import record_finished_run

    recorded = record_finished_run(run_id, written.files.get("json") if written is not None else None)
    click.echo(f"results: {'stored' if recorded.new else 'updated'} in {recorded.where}", err=to_stderr)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def runs(as_json: bool) -> None:
    """List runs in the state folder with their status."""
    from chaosrunner.engine.runs import list_runs

    summaries = list_runs()
    if as_json:
        echo_json([summary.__dict__ for summary in summaries])
        return
    if not summaries:
        click.echo("no runs yet")
        return
    rows = [("RUN", "STATUS", "STARTED", "SCENARIO", "DETAIL")]
    for summary in summaries:
        status = summary.status + (f" ({summary.unreverted} unreverted)" if summary.unreverted else "")
        rows.append((summary.run_id, status, summary.started[:19], summary.title, summary.detail))
    echo_table(rows, indent=0)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--kubernetes", is_flag=True, help="Also sweep what runs left in a cluster, by label.")
@click.option("--run", "run_id", help="With --kubernetes: sweep this run only (its journal may be lost).")
@click.option(
    "--all-runs", is_flag=True, help="With --kubernetes: every run labelled in the cluster, not only ours."
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), help="kubeconfig file.")
@click.option("--context", help="kubeconfig context.")
@click.option("--in-cluster", is_flag=True, help="Use the pod's service account.")
def recover(
    as_json: bool,
    kubernetes: bool,
    run_id: str | None,
    all_runs: bool,
    kubeconfig: Path | None,
    context: str | None,
    in_cluster: bool,
) -> None:
    """Revert faults left behind by runs whose process died. Never touches a live run.

    With --kubernetes it also sweeps the cluster by the labels chaosrunner puts
    on everything it creates or changes - even after the journal was lost.
    """
    from chaosrunner.engine.recovery import recover_all, recover_kubernetes

    outcomes = recover_all()
    sweeps: list[Any] = []
    if kubernetes:
        from chaosrunner.faults.connections import KubernetesConnection

        connection = KubernetesConnection(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster)
        sweeps = recover_kubernetes(connection, run_id, every_run=all_runs)
    elif run_id or all_runs:
        raise click.UsageError("--run and --all-runs go with --kubernetes")
    failed = any(outcome.failed for outcome in outcomes) or any(report.failed for report in sweeps)
    if as_json:
        echo_json(
            {
                "runs": [outcome.__dict__ for outcome in outcomes],
                "kubernetes": [report.as_dict() for report in sweeps],
            }
        )
        if failed:
            raise SystemExit(1)
        return
    if not outcomes and not any(not report.nothing_found() for report in sweeps):
        click.echo("nothing to recover: no dead run left a fault behind")
    for outcome in outcomes:
        for fault in outcome.reverted:
            click.echo(f"{outcome.run_id}: reverted {fault}")
        for fault, error in outcome.failed.items():
            click.echo(f"{outcome.run_id}: FAILED to revert {fault}: {error}", err=True)
        if outcome.monitoring_error:
            click.echo(f"{outcome.run_id}: {outcome.monitoring_error}", err=True)
    for report in sweeps:
        for verb, items in (
            ("stopped", report.stopped),
            ("deleted", report.deleted),
            ("restored", report.restored),
        ):
            for item in items:
                click.echo(f"{report.run_id or 'cluster'}: {verb} {item}")
        for item, error in report.failed.items():
            click.echo(f"{report.run_id or 'cluster'}: FAILED {item}: {error}", err=True)
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("run_id", required=False)
@click.option(
    "--all", "all_runs", is_flag=True, help="Engage the global kill switch: every run stops and reverts."
)
@click.option("--release", is_flag=True, help="Release the global kill switch.")
@click.option("--reason", default="", help="Why (recorded in the journal).")
def abort(run_id: str | None, all_runs: bool, release: bool, reason: str) -> None:
    """Stop one run (RUN_ID), or every run on this machine (--all).

    --all engages the machine-wide kill switch (/run/chaosrunner, or
    $CHAOSRUNNER_KILL_SWITCH_DIR), which every run obeys whoever started it;
    where that folder is missing or not writable, it engages your own switch
    and says so. --release removes your own switch and the machine-wide one
    when you engaged it (or are root). See docs/kill-switch.md.
    """
    from chaosrunner.engine import killswitch
    from chaosrunner.engine.rundir import RunDir

    if sum(bool(choice) for choice in (run_id, all_runs, release)) != 1:
        raise click.UsageError("give exactly one of RUN_ID, --all or --release")
    if release:
        released = killswitch.release()
        if released:
            click.echo("kill switch released")
        if released.refused:
            click.echo(f"error: {released.refused}", err=True)
            raise SystemExit(3)
        if not released:
            click.echo("the kill switch was not engaged")
        return
    if all_runs:
        engagement = killswitch.engage(reason)
        if engagement.note and not engagement.machine_wide:
            click.echo(f"warning: {engagement.note}", err=True)
        scope = (
            "every run on this machine reverts"
            if engagement.machine_wide
            else "the runs sharing your state folder revert"
        )
        click.echo(
            f"kill switch engaged ({engagement.path}"
            + (f"; {engagement.note}" if engagement.machine_wide and engagement.note else "")
            + f"): {scope} within one check interval; "
            "new runs refuse to start until `chaosrunner abort --release`"
        )
        return
    assert run_id is not None
    target = RunDir.find(run_id)
    if not target.is_live():
        click.echo(
            f"run {run_id} is not live (see `chaosrunner runs`; `chaosrunner recover` reverts dead runs)"
        )
        raise SystemExit(1)
    target.request_abort(f"aborted by operator{': ' + reason if reason else ''}")
    click.echo(f"abort requested: run {run_id} reverts within one check interval")


@click.command()
@click.argument("run_id")
@click.argument("fault", required=False)
@click.argument("state", type=click.Choice(["on", "off"]), required=False)
@click.option("--toxic", "toxic_name", help="Which toxic, when a proxy has more than one.")
@click.option("--by", default="", help="Who switched it (default: $USER; journaled).")
@click.option("--json", "as_json", is_flag=True, help="Print the proxies as JSON.")
def toxic(
    run_id: str, fault: str | None, state: str | None, toxic_name: str | None, by: str, as_json: bool
) -> None:
    """List a live run's fault proxies, or switch a fault's toxic on or off.

    \b
    chaosrunner toxic RUN                 # every live proxy and its toxics
    chaosrunner toxic RUN slow-db off     # the team's fix, or the fault? find out
    chaosrunner toxic RUN slow-db on
    """
    import getpass

    from chaosrunner.engine.toxic_switch import live_proxies, switch_toxic

    if fault is not None and state is None:
        raise click.UsageError("say `on` or `off` after the fault name")
    if fault is not None and state is not None:
        proxies = switch_toxic(run_id, fault, state == "on", toxic=toxic_name, by=by or getpass.getuser())
    else:
        proxies = live_proxies(run_id)
    rows: list[dict[str, Any]] = [
        {
            "fault": proxy.fault,
            "address": proxy.address,
            "toxic": item.name,
            "type": item.type,
            "enabled": item.enabled,
        }
        for proxy in proxies
        for item in proxy.toxics.toxics
    ]
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo(f"run {run_id} has no live fault proxy on this host")
    else:
        echo_table(
            [("FAULT", "PROXY", "TOXIC", "STATE")]
            + [
                (row["fault"], row["address"], f"{row['toxic']} ({row['type']})", _on_off(row["enabled"]))
                for row in rows
            ]
        )


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"
