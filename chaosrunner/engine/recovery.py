"""``chaosrunner recover``: revert what dead runs left behind.

A run is dead when nobody holds its lock (see engine.rundir). Its journal says
which faults were injecting or injected and never reverted, with their revert
records (written before each side effect). Recovery replays those records
through the same idempotent ``revert`` the runner uses, journals what it did,
and marks the run finished. A live run is never touched, so recover is safe to
run at any time, from cron or by hand, as often as you like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaosrunner.engine.injection import retry_revert
from chaosrunner.engine.journal import JournalEvent
from chaosrunner.engine.rundir import RunDir, all_runs
from chaosrunner.errors import UsageError
from chaosrunner.faults.registry import registry


@dataclass
class Leftover:
    fault: str
    kind: str
    revert_record: dict


@dataclass
class RecoveryOutcome:
    run_id: str
    reverted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    monitoring_error: str | None = None  # the chaos window could not be cleared


def leftovers(events: list[JournalEvent]) -> list[Leftover]:
    """Faults whose last word in the journal is not 'reverted'.

    ``fault_still_in_flight`` reopens a fault: its planned record was reverted
    while inject was still running, so the fault may have landed afterwards.
    """
    open_faults: dict[str, Leftover] = {}
    for event in events:
        name = str(event.get("fault"))
        if event.type in ("fault_injecting", "fault_injected", "fault_still_in_flight"):
            open_faults[name] = Leftover(name, event["kind"], dict(event["revert_record"]))
        elif event.type == "fault_reverted":
            open_faults.pop(name, None)
    return list(open_faults.values())


def finished(events: list[JournalEvent]) -> bool:
    return any(event.type == "run_finished" for event in events)


def needs_recovery(run: RunDir) -> bool:
    events = run.events()
    return bool(leftovers(events)) and not run.is_live()


def recover_run(run: RunDir) -> RecoveryOutcome:
    outcome = RecoveryOutcome(run.run_id)
    if run.is_live():
        return outcome
    events = run.events()
    pending = leftovers(events)
    if not pending and finished(events):
        return outcome
    journal = run.journal()
    for leftover in pending:
        fault_class = registry.get(leftover.kind)
        if fault_class is None:
            outcome.failed[leftover.fault] = f"fault kind {leftover.kind!r} is not installed here"
            continue
        journal.append("fault_reverting", fault=leftover.fault, kind=leftover.kind)
        try:
            attempts = retry_revert(fault_class(), leftover.revert_record)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            outcome.failed[leftover.fault] = error
            journal.append(
                "fault_revert_failed", fault=leftover.fault, kind=leftover.kind, error=error, attempts=0
            )
            continue
        outcome.reverted.append(leftover.fault)
        journal.append(
            "fault_reverted", fault=leftover.fault, kind=leftover.kind, attempts=attempts, by="recover"
        )
    if not finished(events) and not outcome.failed:
        journal.append(
            "run_finished",
            status="aborted",
            exit_code=1,
            detail="the runner died; chaosrunner recover reverted its faults",
        )
    if pending and not outcome.failed:
        outcome.monitoring_error = _clear_chaos_window(run.run_id, events)
    return outcome


def _clear_chaos_window(run_id: str, events: list[JournalEvent]) -> str | None:
    """Nothing is injected any more: delete the run's Pushgateway group, which a run
    keeps while a fault is STILL INJECTED. Returns why it could not, or None."""
    started = next((event for event in events if event.type == "run_started"), None)
    scenario = started.get("scenario") if started is not None else None
    target = scenario.get("target") if isinstance(scenario, dict) else None
    url = target.get("pushgateway") if isinstance(target, dict) else None
    if not url:
        return None
    from chaosrunner.observe.pushgateway import clear_chaos_window

    try:
        clear_chaos_window(str(url), run_id)
    except Exception as exc:  # monitoring is best effort; the faults are reverted
        return f"the Pushgateway group of run {run_id} was not deleted: {type(exc).__name__}: {exc}"
    return None


def recover_all() -> list[RecoveryOutcome]:
    """Recover every dead run that left faults behind; live runs are skipped."""
    return [recover_run(run) for run in all_runs() if needs_recovery(run)]


def recover_kubernetes(connection: Any, run_id: str | None = None, *, every_run: bool = False) -> list[Any]:
    """Sweep what runs left in a cluster, by label, even when their journals are gone.

    ``run_id``: that run only. Otherwise the runs this machine knows whose
    runner is dead, or - with ``every_run`` - every run labelled in the cluster
    (for a journal lost with its machine). A run live on this machine is never
    swept; a run live on *another* machine cannot be seen from here, which is
    why sweeping everything is an explicit choice.
    """
    from chaosrunner.faults.kubernetes.sweep import runs_in_cluster, sweep

    local = {run.run_id: run for run in all_runs()}
    if run_id is not None:
        if run_id in local and local[run_id].is_live():
            raise UsageError(
                f"run {run_id} is live on this machine: abort it instead (`chaosrunner abort {run_id}`)"
            )
        return [sweep(connection, run_id)]
    in_cluster = runs_in_cluster(connection)
    wanted = sorted(
        found
        for found in in_cluster
        if (found in local and not local[found].is_live()) or (every_run and found not in local)
    )
    return [sweep(connection, found) for found in wanted]
