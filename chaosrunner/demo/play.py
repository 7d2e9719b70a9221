"""One demo gameday, end to end: sandbox up, scenario run, team responds, debrief.

The same pieces as a real gameday - Runner, GamedaySession, marks, debrief -
with the scripted responder standing in for the team (or a person, in
interactive mode). The CLI supplies the console; this module prints nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.demo.facilitator import ScriptedFacilitator
from chaosrunner.demo.responder import ScriptedResponder
from chaosrunner.demo.sandbox import ROLE, SCENARIO, Sandbox
from chaosrunner.engine.runner import Runner, RunOptions, RunResult
from chaosrunner.gameday.debrief import Debrief, debrief
from chaosrunner.gameday.session import GamedaySession
from chaosrunner.report.writer import write_run_report
from chaosrunner.scenario.loader import load_scenario

Listener = Any


@dataclass(frozen=True)
class ConsoleLinks:
    """The run's console links (each carries its token in the fragment): printed, never journaled."""

    facilitator: str
    team: str
    observer: str

    @classmethod
    def of(cls, session: GamedaySession) -> ConsoleLinks | None:
        server = session.server
        if server is None or server.token_file is None:
            return None
        tokens = server.tokens
        return cls(server.link(tokens.facilitator), server.link(tokens.team), server.link(tokens.observer))


@dataclass
class DemoRun:
    result: RunResult
    debrief: Debrief
    responder_log: list[str] = field(default_factory=list)
    report: Path | None = None
    stored: str = ""
    """Where the results store keeps the run ("sqlite PATH"), or why it could not."""


def interactive_instructions(run_id: str, sandbox: Sandbox, links: ConsoleLinks | None) -> str:
    dsn = sandbox.monitoring_dsn()
    who = f"SELECT pid, application_name, state FROM pg_stat_activity WHERE usename = '{ROLE}'"
    end = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE usename = '{ROLE}' AND application_name <> 'checkout'"
    )
    console = (
        [
            "You are the facilitator and the on-call team. Open the console in a browser:",
            f"  facilitator: {links.facilitator}",
            f"  team (play the responder here, e.g. in a second window): {links.team}",
            f"  observers (watch only): {links.observer}",
            "Tick the checklist and press Go; checkout fails a moment later. Then, from the page:",
            "  detected (which monitoring layer saw it?), severity, incident commander, status updates",
            "  (what is affected, hypothesis, who does what, next update), change, mitigated, cause.",
        ]
        if links is not None
        else [f"Say go with: chaosrunner go {run_id}"]
    )
    return "\n".join(
        [
            *console,
            "Find who holds the checkout role's connections, and end them (a production change):",
            f'  psql "{dsn}" -c "{who}"',
            f'  psql "{dsn}" -c "{end}"',
            f"Or from a terminal: chaosrunner mark {run_id} detected --via infrastructure (and so on).",
            "The run ends when the success rate is back within its objective for 10s (or at 2m30s).",
        ]
    )


def play(
    sandbox: Sandbox,
    make_listeners: Callable[[Runner], list[Listener]],
    *,
    interactive: bool = False,
    on_started: Callable[[Runner, ConsoleLinks | None], None] | None = None,
    after_report: Callable[[], None] | None = None,
) -> DemoRun:
    """Run the demo scenario on a sandbox that is up; returns the result and the debrief.

    ``make_listeners`` gets the runner before it starts (a console needs it);
    ``on_started`` is called once the run has its id and its console serves;
    ``after_report`` once the pages have the report, before the console stops
    (the interactive demo waits there for the person to finish reading).
    """
    from chaosrunner.observe.prometheus import PrometheusHTTP

    os.environ.update(sandbox.fault_env())  # the holder reads the DSN from the environment it inherits
    scenario = load_scenario(SCENARIO)
    metrics = PrometheusHTTP(sandbox.rig.prometheus)
    runner = Runner(scenario, str(SCENARIO), metrics, RunOptions())
    session = GamedaySession(runner, metrics)
    responder: ScriptedResponder | None = None
    facilitator: ScriptedFacilitator | None = None

    def start_team(event: dict[str, Any]) -> None:
        nonlocal responder, facilitator
        if event["type"] != "responder_endpoint" or runner.run_dir is None:
            return  # the console serves from here: its links exist
        if on_started is not None:
            on_started(runner, ConsoleLinks.of(session))
        if not interactive:
            facilitator = ScriptedFacilitator(runner.run_dir, list(scenario.run_sheet.prerequisites))
            facilitator.start()
            responder = ScriptedResponder(runner.run_dir, metrics, sandbox.monitoring_dsn(), ROLE)
            responder.start()

    runner.listeners.extend([*make_listeners(runner), session, start_team])
    try:
        try:
            result = runner.run()
        finally:
            session.end_of_run()
            for actor in (facilitator, responder):
                if actor is not None:
                    actor.close()
        outcome = debrief(result.run_id, metrics)
        written = write_run_report(outcome, metrics=metrics)
        report = written.main
        stored = _store_result(result.run_id, written.files.get("json"))
        session.report_written(report)
        if after_report is not None:
            after_report()
    finally:
        session.close()
    log = (facilitator.log if facilitator else []) + (responder.log if responder else [])
    return DemoRun(result, outcome, log, report, stored)


def _store_result(run_id: str, report_json: Path | None) -> str:
    """The demo's run joins the results store like any run, so `chaosrunner coverage` has data at once.

    A store that cannot take it is a line in the output, never the demo's outcome."""
    from chaosrunner.errors import ChaosrunnerError
    from chaosrunner.results.record import record_finished_run

    try:
        return f"stored in {record_finished_run(run_id, report_json).where}"
    except (ChaosrunnerError, OSError) as error:
        return f"not stored ({error}); try `chaosrunner results sync`"
