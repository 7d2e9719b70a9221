"""Commands for the team's side of a gameday: mark, go, score and import-chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from chaosrunner.cli.output import echo_json

MARKS = [
    "detected",
    "mitigated",
    "resolved",
    "escalated",
    "severity",
    "ic",
    "status",
    "change",
    "cause",
    "note",
]


@click.command()
@click.argument("run_id")
@click.argument("event", type=click.Choice(MARKS))
@click.argument("value", required=False)
@click.option("--by", default="", help="Who did it (default: $USER).")
@click.option(
    "--at", "at", default=None, help="When: now, ISO time, HH:MM[:SS] UTC, or -5m for late entries."
)
@click.option(
    "--via",
    type=click.Choice(["synthetic", "real_user", "infrastructure", "human", "user_report"]),
    help="With `detected`: how it was noticed.",
)
@click.option(
    "--role",
    type=click.Choice(["facilitator", "incident_commander", "responder"]),
    default=None,
    help="Your part in the gameday (journaled with the mark).",
)
@click.option(
    "--url",
    default=None,
    help="Post to a live run's responder endpoint (another machine) instead of writing its journal; "
    "the token comes from $CHAOSRUNNER_TOKEN, or from the run folder when the run is local.",
)
def mark(
    run_id: str,
    event: str,
    value: str | None,
    by: str,
    at: str | None,
    via: str | None,
    role: str | None,
    url: str | None,
) -> None:
    """Record what the team did in a run's journal (works during and after the run).

    \b
    chaosrunner mark RUN detected --via synthetic --by alice
    chaosrunner mark RUN severity P2
    chaosrunner mark RUN ic alice --role incident_commander
    chaosrunner mark RUN status "errors at 20%; hypothesis: pool exhausted; @bob on db; next update 10m"
    chaosrunner mark RUN change "restarted the pool" --by bob
    chaosrunner mark RUN mitigated --at -2m

    \b
    From another machine, while the run is live (the token is shown when it starts):
    CHAOSRUNNER_TOKEN=... chaosrunner mark --url https://gameday.example:8443 RUN detected
    """
    import getpass

    who = by or getpass.getuser()
    if url is not None:
        fields = _post_mark(
            url, run_id, {"event": event, "value": value, "by": who, "at": at, "via": via, "role": role}
        )
    else:
        from chaosrunner.gameday.marks import record

        fields = record(run_id, event, value, by=who, at=at, via=via, role=role).as_fields()
    click.echo(
        f"recorded {fields['event']}"
        + (f" {fields['value']!r}" if fields["value"] else "")
        + f" by {fields['by']} at {fields['at']}"
    )


def _post_mark(url: str, run_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    import os
    from urllib.parse import urlsplit

    from chaosrunner.gameday.server.client import events_url, post_mark
    from chaosrunner.gameday.server.token import ENV_VAR, RunToken, read_token

    target = events_url(url)
    if os.environ.get(ENV_VAR):
        token = RunToken(os.environ[ENV_VAR].strip())
    else:  # a run on this machine: its folder holds the token (and is readable by its owner only)
        from chaosrunner.engine.rundir import RunDir
        from chaosrunner.errors import UnknownRun, UsageError

        try:
            folder = RunDir.find(run_id).path
        except UnknownRun:
            raise UsageError(
                f"run {run_id} is not on this machine: set {ENV_VAR} to the token shown when it started "
                "(an environment variable, never an argument: arguments are visible to every user)"
            ) from None
        token = read_token(folder)
    host = urlsplit(target).hostname or ""
    if target.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            "warning: plain http beyond this machine sends the token in clear text; "
            "put TLS in front (docs/responder-endpoint.md)",
            err=True,
        )
    return post_mark(target, token, run_id, {k: v for k, v in fields.items() if v is not None})


@click.command()
@click.argument("run_id")
@click.option("--no-go", "no_go", is_flag=True, help="Call the gameday off: the run ends, nothing injected.")
@click.option("--reason", default="", help="Why (journaled with the decision).")
@click.option("--by", default="", help="Who decided (default: $USER).")
def go(run_id: str, no_go: bool, reason: str, by: str) -> None:
    """Go or no-go for a gameday waiting before injecting (its run sheet has go_no_go).

    \b
    chaosrunner go RUN
    chaosrunner go RUN --no-go --reason "the pager does not reach the gameday channel"
    """
    import getpass

    from chaosrunner.cli.console import safe_text
    from chaosrunner.engine.rundir import RunDir
    from chaosrunner.gameday.run_sheet import record_decision

    event = record_decision(
        RunDir.find(run_id), "no_go" if no_go else "go", by=by or getpass.getuser(), reason=reason
    )
    said = "GO" if event["decision"] == "go" else "NO-GO"
    click.echo(
        safe_text(
            f"recorded {said} by {event['by']} at {event['time']}"
            + (f": {event['reason']}" if event["reason"] else "")
        )
    )
    if event["unchecked"]:
        click.echo(safe_text("not ticked on the checklist: " + "; ".join(event["unchecked"])))


@click.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--offline", is_flag=True, help="Score from the journal alone, without querying Prometheus.")
def score(run_id: str, as_json: bool, offline: bool) -> None:
    """Measure TTD, TTM and TTR from the data and score the team's response."""
    from chaosrunner.gameday.debrief import debrief

    result = debrief(run_id, offline=offline)
    if as_json:
        echo_json(debrief_json(result))
        return
    print_summary(result)


def _seconds(value: Any) -> float | None:
    return round(value.total_seconds(), 3) if value is not None else None


def debrief_json(result: Any) -> dict[str, Any]:
    measurement = result.measurement
    return {
        "run_id": result.run_id,
        "scenario": result.scenario.metadata.title,
        "verdict": result.verdict.__dict__,
        "timings": {
            "t0": measurement.t0.isoformat() if measurement.t0 else None,
            "ttd_seconds": _seconds(measurement.ttd),
            "ttm_seconds": _seconds(measurement.ttm),
            "ttr_seconds": _seconds(measurement.ttr),
            "detected_by": measurement.detection_layer,
            "detection": measurement.detection.how,
            "mitigation": measurement.mitigation.how,
            "recovery": measurement.recovery.how,
        },
        "score": {"total": result.score.total, "grade": result.score.grade},
        "findings": [
            {**finding.__dict__, "verdict": finding.verdict.value, "evidence": list(finding.evidence)}
            for finding in result.score.findings
        ],
    }


def print_summary(result: Any) -> None:
    from chaosrunner.cli.console import safe_text
    from chaosrunner.durations import format_duration

    measurement = result.measurement
    settings = result.scenario.gameday

    def timing(value: Any, target: Any) -> str:
        if value is None:
            return "-"
        shown = format_duration(round(value.total_seconds(), 1))
        return shown + (f" (target {format_duration(target)})" if target is not None else "")

    verdict = result.verdict
    click.echo(f"{result.scenario.metadata.title} - run {result.run_id}")
    click.echo(
        f"experiment: {verdict.status}"
        + (f" ({verdict.abort_cause})" if verdict.abort_cause else "")
        + f"; hypothesis {'held' if verdict.hypothesis_held else 'did not hold'}; "
        f"blast radius {'contained' if verdict.blast_radius_contained else 'NOT contained'}"
    )
    click.echo(
        safe_text(
            f"TTD {timing(measurement.ttd, settings.ttd_target)}  detected by "
            f"{(measurement.detection_layer or '-').replace('_', ' ')}: {measurement.detection.how}"
        )
    )
    click.echo(safe_text(f"TTM {timing(measurement.ttm, settings.ttm_target)}  {measurement.mitigation.how}"))
    click.echo(f"TTR {timing(measurement.ttr, None)}  {measurement.recovery.how}")
    click.echo(f"team score {result.score.total:g}/100, grade {result.score.grade}\n")
    symbols = {"passed": "PASS", "failed": "FAIL", "not_applicable": "n/a "}
    for finding in result.score.findings:
        click.echo(  # summaries and evidence quote the team's marks: text, never terminal control
            safe_text(
                f"  {symbols[finding.verdict.value]}  {finding.title} "
                f"[{finding.points:g}/{finding.weight:g}] - {finding.summary}"
            )
        )
        for line in finding.evidence:
            click.echo(safe_text(f"          {line}"))
        if finding.action_item:
            click.echo(f"          action: {finding.action_item}")


@click.command("import-chat")
@click.argument("run_id")
@click.argument("export", type=click.Path(path_type=Path))
@click.option("--channel", required=True, help="The incident channel the team used during the run.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["slack", "mattermost"]),
    default=None,
    help="The export's kind [default: detect: a folder or zip with users.json is Slack's].",
)
@click.option("--offline", is_flag=True, help="Score from the journal alone, without querying Prometheus.")
def import_chat(run_id: str, export: Path, channel: str, export_format: str | None, offline: bool) -> None:
    """Score what the team really wrote: marks from a Slack or Mattermost export of the run's channel.

    \b
    chaosrunner import-chat RUN slack-export.zip --channel incident-checkout
    chaosrunner import-chat RUN mattermost-export.jsonl --channel incident-checkout

    Messages written between the run's start and its end are read; commands
    (`/gameday sev P1`) and plain language ("this is a P1", "I'm IC", status
    updates, "mitigated", "root cause: ...", "escalating to ...") become marks
    with their real time and author, stored beside the journal (a new import
    replaces the last one) and shown as imported in the report.
    """
    from chaosrunner.cli.console import safe_text
    from chaosrunner.engine.rundir import RunDir
    from chaosrunner.gameday.chat.imported import SKIP_REASONS
    from chaosrunner.gameday.chat.imported import import_chat as run_import
    from chaosrunner.gameday.debrief import debrief

    run = RunDir.find(run_id)
    before = debrief(run, offline=offline).score
    outcome = run_import(run, export, channel, export_format)
    after = debrief(run, offline=offline).score
    start, end = outcome.window
    click.echo(
        safe_text(
            f"read {outcome.messages} message(s) of #{outcome.channel} ({outcome.export_format} export); "
            f"the run's window: {start.isoformat()} - {end.isoformat()} (only messages inside it count)"
        )
    )
    counts = outcome.counts()
    click.echo(
        f"imported {len(outcome.marks)} mark(s)"
        + (": " + ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())) if counts else "")
    )
    skipped = [f"{outcome.skipped[reason]} {reason}" for reason in SKIP_REASONS if outcome.skipped[reason]]
    if skipped:
        click.echo("skipped: " + "; ".join(skipped))
    click.echo(
        f"team score {before.total:g}/100 (grade {before.grade}) before the import, "
        f"{after.total:g}/100 (grade {after.grade}) with it"
    )
    changed = {
        finding.criterion: (old.verdict.value, finding.verdict.value)
        for old, finding in zip(before.findings, after.findings, strict=True)
        if old.verdict is not finding.verdict
    }
    for criterion, (was, now) in changed.items():
        click.echo(f"  {criterion}: {was} -> {now}")
