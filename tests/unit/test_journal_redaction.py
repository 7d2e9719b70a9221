"""Credentials in event text never reach the journal file, nor the listeners fed from it."""

from __future__ import annotations

import json
from pathlib import Path

from chaosrunner.engine.journal import Journal, read_events
from chaosrunner.redaction import REDACTED

LEAKY_ERROR = (
    "connection to server at 10.0.0.5 failed: FATAL: password authentication failed; "
    "dsn host=db user=app password='s3 cret!' dbname=shop; retried redis://:r3dis-pw@cache:6379; "
    "sent Authorization: Bearer eyJ0eXAiOiJKV1Qi.payload.sig"
)
SECRETS = ("s3 cret!", "r3dis-pw", "eyJ0eXAiOiJKV1Qi")


def test_a_libpq_password_in_an_error_is_redacted_in_the_journal_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    shown = Journal(path).append("fault_inject_failed", fault="pool", kind="x", error=LEAKY_ERROR)
    on_disk = path.read_bytes().decode()
    for secret in SECRETS:
        assert secret not in on_disk
        assert secret not in json.dumps(shown)  # what listeners (the consoles) are handed
    (event,) = read_events(path)
    assert event["error"].startswith("connection to server at 10.0.0.5 failed")
    assert f"password={REDACTED} dbname=shop" in event["error"]
    assert f"redis://:{REDACTED}@cache:6379" in event["error"]


def test_a_responder_note_from_another_terminal_is_redacted_too(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append("run_started", run_id="r", monotonic_start=0.0)
    Journal.open_existing(path).append("responder", event="note", by="dave", value=f"pasted: {LEAKY_ERROR}")
    note = list(read_events(path))[-1]
    assert all(secret not in note["value"] for secret in SECRETS)
    assert note["by"] == "dave"


def test_the_scenario_copy_and_revert_records_are_kept_verbatim(tmp_path: Path) -> None:
    """recover needs a revert record exactly; a later debrief queries Prometheus with the scenario's URL."""
    path = tmp_path / "journal.jsonl"
    scenario = {"target": {"prometheus": "http://admin:prom-pw@127.0.0.1:9090"}}
    record = {"dsn_env": "PG_DSN", "note": "password=kept-for-recover"}
    journal = Journal(path)
    journal.append("run_started", run_id="r", scenario=scenario)
    journal.append("fault_injecting", fault="pool", kind="x", revert_record=record)
    started, injecting = read_events(path)
    assert started["scenario"] == scenario
    assert injecting["revert_record"] == record
