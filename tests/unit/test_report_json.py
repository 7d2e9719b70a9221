"""report.json: versioned, documented, and the same figures as the other formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from chaosrunner.report.json_schema import SCHEMA_VERSION, ReportDocument, render_json, report_schema
from chaosrunner.report.model import build_report
from chaosrunner.report.sample import RUN_ID, sample_run

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sample_json() -> dict:
    debrief, metrics = sample_run()
    return json.loads(render_json(build_report(debrief, metrics, now=NOW)))


def test_the_document_carries_its_schema_version_and_validates() -> None:
    data = sample_json()
    assert data["schema_version"] == SCHEMA_VERSION == 1
    ReportDocument.model_validate(data)  # the model is the schema: a round trip proves the shape


def test_the_published_schema_is_the_models_schema(repo: Path) -> None:
    published = json.loads((repo / "docs" / "report.schema.json").read_text())
    assert published == report_schema(), (
        "docs/report.schema.json is stale: regenerate it with "
        "python -c 'import json; from chaosrunner.report.json_schema import report_schema; "
        "print(json.dumps(report_schema(), indent=2))' > docs/report.schema.json"
    )


def test_the_figures_are_numbers_with_their_derivation() -> None:
    data = sample_json()
    assert data["run"]["id"] == RUN_ID and data["run"]["hypothesis_held"] is True
    timings = data["timings"]
    assert timings["ttd"] == {
        "seconds": 20.0,
        "target_seconds": 60.0,
        "met": True,
        "at": "2026-11-27T14:00:30.000Z",
        "how": "alert CheckoutProbeFailing firing (synthetic)",
    }
    assert timings["ttm"]["seconds"] == 100.0 and timings["ttr"]["target_seconds"] is None
    assert data["score"] == {"total": 92.1, "grade": "A"}
    impact = {figure["key"]: figure for figure in data["impact"]}
    assert impact["failed_requests"]["value"] == 425.0 and impact["failed_requests"]["unit"] == "requests"
    assert impact["error_budget"]["value"] == 42.5
    assert [item["criterion"] for item in data["action_items"]] == ["status_updates"]
    assert all(item["owner"] == "" and item["due"] == "" for item in data["action_items"])
    series = {item["role"]: item for item in data["series"]}
    assert series["sli"]["min"] == 0.5 and series["sli"]["outside_threshold_seconds"] == 85.0
    assert {event["source"] for event in data["events"]} == {"system", "monitoring", "team", "measured"}


def test_nothing_engine_private_leaks_into_events() -> None:
    text = json.dumps(sample_json()["events"])
    assert "revert_record" not in text and "pid" not in text and "gameday-laptop" not in text
