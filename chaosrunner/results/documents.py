"""What the store indexes, read out of a report JSON document (``report.json_schema``).

The document is stored whole; these columns are copies of a few of its
fields, so that a scenario's runs or those since a date are found without
reading every document. A document lacking one of them is refused naming
the field: it was not written by ``chaosrunner report``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaosrunner.errors import UsageError
from chaosrunner.report import fmt


@dataclass(frozen=True)
class Indexed:
    run_id: str
    scenario_title: str
    scenario_key: str  # the slug of the title: what history groups runs by
    started_at: datetime  # when the run started (the report's generation time for a run that never did)
    outcome: str  # the run's status: completed | aborted | deviated | failed | refused | unfinished
    report_schema_version: int


def _field(document: dict[str, Any], path: str, source: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise UsageError(f"{source}: field {path}: missing (not a chaosrunner report JSON document)")
        value = value[part]
    return value


def _text(document: dict[str, Any], path: str, source: str) -> str:
    value = _field(document, path, source)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{source}: field {path}: expected a non-empty string, got {value!r}")
    return value


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def indexed(document: dict[str, Any], source: str = "report document") -> Indexed:
    """The indexed columns of ``document``; a UsageError naming ``source`` and the field when one is wrong."""
    if not isinstance(document, dict):
        raise UsageError(f"{source}: expected a JSON object, got {type(document).__name__}")
    title = _text(document, "scenario.title", source)
    started = _field(document, "run.started", source) or _field(document, "generated_at", source)
    try:
        started_at = parse_time(str(started))
    except ValueError:
        raise UsageError(f"{source}: field run.started: not an ISO 8601 time: {started!r}") from None
    version = _field(document, "schema_version", source)
    if not isinstance(version, int):
        raise UsageError(f"{source}: field schema_version: expected an integer, got {version!r}")
    return Indexed(
        run_id=_text(document, "run.id", source),
        scenario_title=title,
        scenario_key=fmt.slug(title),
        started_at=started_at,
        outcome=_text(document, "run.status", source),
        report_schema_version=version,
    )
