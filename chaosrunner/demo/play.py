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

from chaosrunner.demo.responder import ScriptedResponder
from chaosrunner.demo.sandbox import ROLE, SCENARIO, Sandbox
from chaosrunner.engine.runner import Runner, RunOptions, RunResult
from chaosrunner.gameday.debrief import Debrief, debrief
from chaosrunner.gameday.session import GamedaySession
from chaosrunner.report.writer import write_run_report
from chaosrunner.scenario.loader import load_scenario

Listener = Any


@dataclass
class DemoRun:
    result: RunResult
    debrief: Debrief
    responder_log: list[str] = field(default_factory=list)
    report: Path | None = None


def interactive_instructions(run_id: str, sandbox: Sandbox) -> str:
    dsn = sandbox.monitoring_dsn()
    who = f"SELECT pid, application_name, state FROM pg_stat_activity WHERE usename = '{ROLE}'"
    end = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE usename = '{ROLE}' AND application_name <> 'checkout'"
    )
    return "\n".join(
        [
            "You are on call. Checkout is about to fail. Play the responder from another terminal:",
            f"  chaosrunner mark {run_id} detected --via infrastructure --by you",
            f"  chaosrunner mark {run_id} severity P1",
            f"  chaosrunner mark {run_id} ic you",
            f'  chaosrunner mark {run_id} status "checkout failing for N% of users; hypothesis: ...; '
            '@someone is ...; next update in 20s"',
            "Find who holds the checkout role's connections, and end them (a production change):",
            f'  psql "{dsn}" -c "{who}"',
            f'  psql "{dsn}" -c "{end}"',
            f'  chaosrunner mark {run_id} change "terminated the hogging connections" --by someone',
            f"  chaosrunner mark {run_id} mitigated",
            f'  chaosrunner mark {run_id} cause "..."',
            "The run ends when the success rate is back within its objective for 10s (or at 2m30s).",
        ]
    )


def play(
    sandbox: Sandbox,
    make_listeners: Callable[[Runner], list[Listener]],
    *,
    interactive: bool = False,
    on_started: Callable[[Runner], None] | None = None,
) -> DemoRun:
    """Run the demo scenario on a sandbox that is up; returns the result and the debrief.

    ``make_listeners`` gets the runner before it starts (a console needs it);
    ``on_started`` is called once the run has its id.
    """
    from chaosrunner.observe.prometheus import PrometheusHTTP

    os.environ.update(sandbox.fault_env())  # the holder reads the DSN from the environment it inherits
    scenario = load_scenario(SCENARIO)
    metrics = PrometheusHTTP(sandbox.rig.prometheus)
    runner = Runner(scenario, str(SCENARIO), metrics, RunOptions())
    session = GamedaySession(runner, metrics)
    responder: ScriptedResponder | None = None

    def start_team(event: dict[str, Any]) -> None:
        nonlocal responder
        if event["type"] != "run_started" or runner.run_dir is None:
            return
        if on_started is not None:
            on_started(runner)
        if not interactive:
            responder = ScriptedResponder(runner.run_dir, metrics, sandbox.monitoring_dsn(), ROLE)
            responder.start()

    runner.listeners.extend([*make_listeners(runner), session, start_team])
    try:
        result = runner.run()
    finally:
        session.close()
        if responder is not None:
            responder.close()
    outcome = debrief(result.run_id, metrics)
    report = write_run_report(outcome, metrics=metrics).main
    return DemoRun(result, outcome, responder.log if responder else [], report)
