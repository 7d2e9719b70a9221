"""Finished runs written straight into a state folder, as the runner leaves them (for the results store).

A journal with run_started (the scenario's copy), an injected and reverted
in-process flag, a responder's detection mark and run_finished: enough for the
offline debrief to measure TTD and render the report JSON, without a service.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chaosrunner.engine.journal import Journal, JournalEvent, format_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.private_files import private_dir
from chaosrunner.scenario.loader import scenario_from_data
from tests.unit.scenario_factory import BASE


def write_finished_run(
    state: Path,
    run_id: str,
    title: str,
    started: datetime,
    *,
    detected_after: float = 31.0,
    finished: bool = True,
) -> RunDir:
    """A run of ``title`` in ``state`` (its own folder, whatever $CHAOSRUNNER_STATE_DIR says)."""
    run = RunDir(private_dir(state / "runs" / run_id))
    document: dict[str, Any] = copy.deepcopy(BASE)
    document["metadata"]["title"] = title
    document["abort_conditions"] = document["abort_conditions"][:1]  # the journal's copy is resolved
    scenario = scenario_from_data(document, source="t")
    journal = Journal(run.journal_path)

    def write(event_type: str, when: datetime, **fields: object) -> None:
        journal.write(JournalEvent(type=event_type, time=format_time(when), offset=0.0, **fields))

    write(
        "run_started",
        started,
        run_id=run_id,
        scenario_title=title,
        scenario_file=f"scenarios/{title.lower().replace(' ', '-')}.yaml",
        scenario=scenario.model_dump(mode="json", by_alias=True),
        mode="gameday",
    )
    flag = {"fault": "flag", "kind": "inprocess.flag"}
    write("fault_injected", started + timedelta(seconds=1), **flag, revert_record={"flag": "x"})
    detected = started + timedelta(seconds=1 + detected_after)
    write("responder", detected, event="detected", at=format_time(detected), by="alice", via="synthetic")
    if finished:
        write("fault_reverted", started + timedelta(seconds=50), **flag, attempts=1, by="runner")
        write("run_finished", started + timedelta(seconds=60), status="completed", exit_code=0, detail="ok")
    return run
