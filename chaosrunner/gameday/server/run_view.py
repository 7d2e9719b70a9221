"""The run view: what ``GET /api/run`` tells a page about the run it shows.

A pure function of the scenario, the run and who asks. It names what people
need to follow the gameday - the hypothesis, the faults, every abort
condition against its threshold, the targets - and never the connection
settings (database DSNs, service URLs that may carry credentials): the page
has no use for them, and an observer link is shared with a whole room.

The run sheet's injects are the facilitator's script: a responder who could
read "at +5 min: customers report failed payments" ahead of time would not be
tested by it, so the team and observers get ``[]`` (fired injects reach them
through the stream, as journal events).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chaosrunner.gameday.server.token import Capability
from chaosrunner.scenario.models import Scenario


def seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def run_view(scenario: Scenario, run_id: str, mode: str, capability: Capability) -> dict[str, Any]:
    metadata, gameday = scenario.metadata, scenario.gameday
    mitigation = scenario.mitigation
    return {
        "run_id": run_id,
        "mode": mode,
        "capability": capability.label,
        "title": metadata.title,
        "description": metadata.description,
        "hypothesis": metadata.hypothesis,
        "expected_severity": metadata.expected_severity.value,
        "owner": metadata.owner,
        "max_duration_s": seconds(gameday.max_duration),
        "ttd_target_s": seconds(gameday.ttd_target),
        "ttm_target_s": seconds(gameday.ttm_target),
        "status_update_every_s": seconds(gameday.status_update_every),
        "faults": [
            {"name": fault.name, "kind": fault.kind, "start_s": seconds(fault.start)}
            for fault in scenario.faults
        ],
        "abort_conditions": [
            {
                "name": condition.name,
                "expr": condition.expr,
                "comparator": condition.comparator.value,
                "threshold": condition.threshold,
                "for_s": seconds(condition.for_),
            }
            for condition in scenario.abort_conditions
        ],
        "steady_state": [
            {
                "name": check.name,
                "expr": check.expr,
                "comparator": check.comparator.value,
                "threshold": check.threshold,
            }
            for check in scenario.steady_state
        ],
        "mitigation": (
            None
            if mitigation is None
            else {
                "sli": mitigation.sli,
                "comparator": mitigation.comparator.value,
                "objective": mitigation.objective,
            }
        ),
        "detection": {
            "synthetic": list(scenario.detection.synthetic),
            "real_user": list(scenario.detection.real_user),
            "infrastructure": list(scenario.detection.infrastructure),
        },
        "run_sheet": run_sheet_view(scenario, capability),
    }


def run_sheet_view(scenario: Scenario, capability: Capability) -> dict[str, Any]:
    sheet = getattr(scenario, "run_sheet", None)  # older scenario models have none
    if sheet is None:
        return {"prerequisites": [], "go_no_go": False, "injects": []}
    injects = sheet.injects if capability is Capability.FACILITATOR else []
    return {
        "prerequisites": list(sheet.prerequisites),
        "go_no_go": bool(sheet.go_no_go),
        "injects": [
            {
                "name": inject.name,
                "at_s": seconds(inject.at),
                "unless": inject.unless,
                "audience": inject.audience,
                "text": inject.text,
            }
            for inject in injects
        ],
    }
