"""Running one scheduled scenario for real: automated mode, report, outcome.

The daemon's production executor. A scheduled run is an ordinary run - the
same runner, journal, aborts and reverts - in automated mode (faults keep
their scheduled durations; nobody is there to mitigate), followed by its
report. A run that is refused (kill switch, unhealthy steady state, an
unreachable Prometheus) is an outcome too: staging wants to alert on it.

When the scenario names a Slack or Mattermost destination whose secret is
set, the channel hears the run as it hears any automated run: started,
aborted and why, finished and how, where the report is (``RunChat``; the
daemon's own webhooks are separate and unchanged). Posting happens off the
runner's threads, so it never holds a revert; it is flushed (bounded) after
the report, before the daemon records the outcome.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.engine.runner import Runner, RunOptions
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.scenario.models import Mode, Scenario
from chaosrunner.schedule.daemon import RunOutcome
from chaosrunner.schedule.models import ResolvedEntry

if TYPE_CHECKING:
    from chaosrunner.gameday.chat.run_chat import RunChat


def run_scheduled(entry: ResolvedEntry, scenario: Scenario, path: Path) -> RunOutcome:
    from chaosrunner.observe.prometheus import PrometheusHTTP
    from chaosrunner.observe.pushgateway import ChaosWindowPublisher

    target = scenario.target
    metrics = PrometheusHTTP(target.prometheus) if target.prometheus else None
    publisher = (
        ChaosWindowPublisher(target.pushgateway, scenario.metadata.title) if target.pushgateway else None
    )
    runner = Runner(
        scenario, str(path), metrics, RunOptions(mode=Mode.AUTOMATED), [publisher] if publisher else []
    )
    chat = open_chat(runner)
    try:
        result = runner.run()
    except ChaosrunnerError as error:
        close_chat(chat, None)
        run_id = runner.run_dir.run_id if runner.run_dir else None
        return RunOutcome(run_id, "refused", error.exit_code, str(error))
    finally:
        if publisher is not None:
            publisher.close()
    report = None
    written = None
    try:
        from chaosrunner.report.writer import write_run_report

        written = write_run_report(result.run_id, metrics=metrics)
        report = str(written.main)
    except (ChaosrunnerError, OSError) as error:
        report = f"not written: {error}"
    problem = record_in_results(result.run_id, written.files.get("json") if written is not None else None)
    if problem is not None:  # the daemon's history keeps it beside where the report went
        report = f"{report}; {problem}"
    elif scenario.target.pushgateway:
        push_coverage(scenario.target.pushgateway, scenario.metadata.title)
    close_chat(chat, written)
    return RunOutcome(
        result.run_id, result.status.value, result.exit_code, result.detail, result.signal, report
    )


def record_in_results(run_id: str, report_json: Path | None) -> str | None:
    """The run's report JSON into the results store; a failure is a warning line, never the outcome."""
    from chaosrunner.redaction import redact_text
    from chaosrunner.results.record import record_finished_run

    try:
        record_finished_run(run_id, report_json)
    except Exception as error:  # the run happened whatever the store says
        return redact_text(f"warning: results store: {type(error).__name__}: {error}")
    return None


def push_coverage(pushgateway: str, title: str) -> None:
    """The scenario's detection coverage over every stored run, as gauges (best effort, like the
    chaos window: monitoring of the monitoring never changes the run's outcome)."""
    from chaosrunner.results.store import open_store
    from chaosrunner.schedule.coverage_gauges import push_scenario_coverage
    from chaosrunner.statedir import state_dir

    with contextlib.suppress(Exception), open_store(state_dir()) as store:
        push_scenario_coverage(pushgateway, title, store.documents([title]))


def open_chat(runner: Runner) -> RunChat | None:
    """The run's chat, attached as a listener, when the scenario posts somewhere (None otherwise)."""
    settings = runner.scenario.chat
    if settings.slack is None and settings.mattermost is None:
        return None  # slack_sdk is not even imported
    from chaosrunner.gameday.chat.run_chat import RunChat

    chat = RunChat.for_runner(runner)
    if chat is not None:
        runner.listeners.append(chat)
    return chat


def close_chat(chat: RunChat | None, written: Any) -> None:
    """Where the report is (``written``: the ``WrittenReport``, None when there is none), then a
    bounded flush: a chat service that is down delays the daemon's next slot by seconds, not more."""
    if chat is None:
        return
    if written is not None:
        chat.report_written(written.files.get("html") or written.main)
    else:
        chat.report_written(None)
    chat.close()


def publish_outcome(
    pushgateway: str, schedule: str
) -> Callable[[ResolvedEntry, RunOutcome, dict[str, int]], None]:
    """A daemon ``publish`` hook that pushes each entry's last outcome to a Pushgateway."""

    def publish(entry: ResolvedEntry, outcome: RunOutcome, counts: dict[str, int]) -> None:
        from chaosrunner.observe.pushgateway import push_scheduled_outcome

        with contextlib.suppress(Exception):  # monitoring is best effort; the history has the outcome
            push_scheduled_outcome(
                pushgateway, schedule, entry.name, outcome.status, outcome.exit_code, time.time(), counts
            )

    return publish
