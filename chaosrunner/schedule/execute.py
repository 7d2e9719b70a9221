"""Running one scheduled scenario for real: automated mode, report, outcome.

The daemon's production executor. A scheduled run is an ordinary run - the
same runner, journal, aborts and reverts - in automated mode (faults keep
their scheduled durations; nobody is there to mitigate), followed by its
report. A run that is refused (kill switch, unhealthy steady state, an
unreachable Prometheus) is an outcome too: staging wants to alert on it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from chaosrunner.engine.runner import Runner, RunOptions
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.scenario.models import Mode, Scenario
from chaosrunner.schedule.daemon import RunOutcome
from chaosrunner.schedule.models import ResolvedEntry


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
    try:
        result = runner.run()
    except ChaosrunnerError as error:
        run_id = runner.run_dir.run_id if runner.run_dir else None
        return RunOutcome(run_id, "refused", error.exit_code, str(error))
    finally:
        if publisher is not None:
            publisher.close()
    report = None
    try:
        from chaosrunner.report.writer import write_run_report

        report = str(write_run_report(result.run_id, metrics=metrics).main)
    except (ChaosrunnerError, OSError) as error:
        report = f"not written: {error}"
    return RunOutcome(
        result.run_id, result.status.value, result.exit_code, result.detail, result.signal, report
    )


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
