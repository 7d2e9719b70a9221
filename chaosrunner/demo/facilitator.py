"""The demo's scripted facilitator: ticks the run sheet's checklist and says go.

A facilitated gameday waits after preflight for the facilitator's go (the
scenario's ``run_sheet``). In the scripted demo nobody is at the console, so
this stands in: once the run is waiting, it ticks every prerequisite and
says go - through ``gameday.run_sheet``, the same path as the console page and
``chaosrunner go``, so the journal and the debrief read as for people. With
``demo --interactive`` the person does it in the page instead.
"""

from __future__ import annotations

import threading

from chaosrunner.engine.journal import JournalTail
from chaosrunner.engine.rundir import RunDir
from chaosrunner.errors import ChaosrunnerError
from chaosrunner.gameday.run_sheet import record_checklist, record_decision

NAME = "sam"
POLL = 0.2


class ScriptedFacilitator:
    def __init__(self, run: RunDir, prerequisites: list[str]) -> None:
        self.run = run
        self.prerequisites = prerequisites
        self.stop = threading.Event()
        self.log: list[str] = []
        self._thread = threading.Thread(target=self._play, name="scripted-facilitator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)

    def _play(self) -> None:
        tail = JournalTail(self.run.journal_path)
        while not self.stop.wait(POLL):
            events = tail.read_new()
            if any(event.type == "run_finished" for event in events):
                return
            if any(event.type == "phase" and event["phase"] == "awaiting_go" for event in events):
                break
        else:
            return
        try:
            for item in range(len(self.prerequisites)):
                record_checklist(self.run, item, True, by=NAME)
            record_decision(self.run, "go", by=NAME, reason="checklist complete")
            self.log.append(f"{NAME}: ticked {len(self.prerequisites)} prerequisite(s), go")
        except ChaosrunnerError as error:  # the run ended or someone else decided first
            self.log.append(f"{NAME}: {error}")
