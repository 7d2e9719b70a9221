"""import-chat: what the team wrote in the channel, scored - from Slack's export and Mattermost's.

A finished gameday whose team declared severity, named an IC and posted
status updates only in the chat fails those three criteria from the journal
alone, and passes them once the channel's export is imported; the marks keep
the messages' real times and authors, stay out of the journal, and the
report shows them as imported and quotes them.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chaosrunner.cli import cli
from chaosrunner.engine.journal import FILE_NAME, format_time
from chaosrunner.engine.rundir import RunDir
from chaosrunner.gameday.chat.imported import FILE_NAME as IMPORT_FILE
from chaosrunner.gameday.debrief import debrief
from chaosrunner.gameday.responder import Mark
from chaosrunner.gameday.scoring import Verdict
from chaosrunner.report.model import build_report
from chaosrunner.report.timeline import TEAM
from tests.unit.chat_export_factory import (
    CHANNEL,
    FIRST_UPDATE,
    SECOND_UPDATE,
    SEVERITY_TEXT,
    at,
    finished_run,
    write_mattermost_export,
    write_slack_export,
)

COMMUNICATION = ("severity_declared", "incident_commander", "status_updates")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunDir:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    return finished_run(tmp_path)


def import_chat(*args: str) -> Result:
    return CliRunner().invoke(cli, ["import-chat", *args])


def verdicts(run: RunDir) -> dict[str, Verdict]:
    return {finding.criterion: finding.verdict for finding in debrief(run, offline=True).score.findings}


EXPORTS: dict[str, Callable[[Path], Path]] = {
    "slack": lambda tmp: write_slack_export(tmp / "slack-export", zipped=True),
    "mattermost": lambda tmp: write_mattermost_export(tmp / "mattermost.jsonl"),
}
SOURCES = {"slack": "slack-export", "mattermost": "mattermost-export"}
UNKNOWN = {"slack": "unknown user U999", "mattermost": "unknown user ghost"}


@pytest.mark.parametrize("platform", ["slack", "mattermost"])
def test_importing_the_channel_turns_the_communication_criteria_from_failed_to_passed(
    run: RunDir, tmp_path: Path, platform: str
) -> None:
    assert {name: verdicts(run)[name] for name in COMMUNICATION} == dict.fromkeys(
        COMMUNICATION, Verdict.FAILED
    )
    journal = (run.path / FILE_NAME).read_bytes()

    result = import_chat(run.run_id, str(EXPORTS[platform](tmp_path)), "--channel", CHANNEL)

    assert result.exit_code == 0, result.output
    assert f"#{CHANNEL} ({platform} export)" in result.output
    assert f"{at(0).isoformat()} - {at(420).isoformat()}" in result.output
    assert "imported 4 mark(s): ic 1, severity 1, status 2" in result.output
    outside = {"slack": 3, "mattermost": 2}[platform]  # Slack's also reads the day before's file (time zones)
    assert f"{outside} outside the run; 1 from bots; 1 system messages; 1 no mark recognised" in result.output
    for name in COMMUNICATION:
        assert f"{name}: failed -> passed" in result.output
    after = verdicts(run)
    assert {name: after[name] for name in COMMUNICATION} == dict.fromkeys(COMMUNICATION, Verdict.PASSED)

    marks = debrief(run, offline=True).measurement.marks
    imported = [mark for mark in marks if mark.source == SOURCES[platform]]
    assert [(mark.mark, mark.at, mark.by, mark.value) for mark in imported] == [
        (Mark.SEVERITY, at(60), "bob", "P1"),  # the edited text; not the bot's P3, nor P3/P2 outside the run
        (Mark.IC, at(70), "alice", "alice"),
        (Mark.STATUS, at(100), "alice", FIRST_UPDATE),  # the thread's reply
        (Mark.STATUS, at(330), UNKNOWN[platform], SECOND_UPDATE),
    ]
    assert [mark.mark for mark in marks if mark.source is None] == [Mark.MITIGATED]  # the live one, kept
    assert (run.path / FILE_NAME).read_bytes() == journal  # kept apart: the journal is what happened live


def test_the_store_is_private_and_a_new_import_replaces_it(run: RunDir, tmp_path: Path) -> None:
    assert import_chat(run.run_id, str(EXPORTS["slack"](tmp_path)), "--channel", CHANNEL).exit_code == 0
    store = run.path / IMPORT_FILE
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    rows = [json.loads(line) for line in store.read_text().splitlines()]
    assert rows[0] == {
        "event": "severity",
        "at": format_time(at(60)),
        "by": "bob",
        "value": "P1",
        "source": "slack-export",
        "quote": SEVERITY_TEXT,
        "channel": CHANNEL,
    }
    assert import_chat(run.run_id, str(EXPORTS["mattermost"](tmp_path)), "--channel", CHANNEL).exit_code == 0
    sources = {json.loads(line)["source"] for line in store.read_text().splitlines()}
    assert sources == {"mattermost-export"}
    assert [path.name for path in run.path.iterdir() if path.name.startswith(".")] == []  # no temporary left


def test_the_report_shows_imported_rows_as_imported_and_quotes_the_messages(
    run: RunDir, tmp_path: Path
) -> None:
    assert import_chat(run.run_id, str(EXPORTS["slack"](tmp_path)), "--channel", CHANNEL).exit_code == 0
    report = build_report(debrief(run, offline=True), None)
    team = [row for row in report.timeline if row.source == TEAM]
    severity = next(row for row in team if row.kind == "severity")
    assert severity.at == at(60) and severity.who == "bob"
    assert severity.what == (
        f'[imported from Slack #{CHANNEL}] declared severity P1 - wrote "{SEVERITY_TEXT}"'
    )
    assert next(row for row in team if row.kind == "mitigated").what == "marked the incident mitigated"
    findings = {finding.criterion: finding for finding in report.score.findings}
    assert any(
        f'bob wrote (imported from Slack): "{SEVERITY_TEXT}"' in line
        for line in findings["severity_declared"].evidence
    )
    assert any(
        'alice wrote (imported from Slack): "I\'m IC"' in line
        for line in findings["incident_commander"].evidence
    )
    assert any(FIRST_UPDATE in line for line in findings["status_updates"].evidence)


def test_a_message_repeating_a_live_mark_is_not_counted_twice(run: RunDir, tmp_path: Path) -> None:
    run.journal().append(
        "responder", event="severity", at=format_time(at(61)), by="bob", value="P1", source="slack"
    )
    result = import_chat(run.run_id, str(EXPORTS["mattermost"](tmp_path)), "--channel", CHANNEL)
    assert result.exit_code == 0, result.output
    assert "1 already marked live" in result.output
    assert "imported 3 mark(s): ic 1, status 2" in result.output


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda export: (export / "users.json").unlink(), "users.json: missing"),
        (lambda export: (export / "channels.json").write_text("[{"), "channels.json:1:3: not valid JSON"),
    ],
)
def test_a_broken_export_exits_2_and_writes_nothing(
    run: RunDir, tmp_path: Path, spoil: Callable[[Path], None], message: str
) -> None:
    export = write_slack_export(tmp_path / "slack-export")
    spoil(export)
    result = import_chat(run.run_id, str(export), "--channel", CHANNEL)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
    assert not (run.path / IMPORT_FILE).exists()


def test_an_unknown_channel_exits_2_naming_the_known_ones(run: RunDir, tmp_path: Path) -> None:
    result = import_chat(run.run_id, str(EXPORTS["slack"](tmp_path)), "--channel", "war-room")
    assert result.exit_code == 2
    assert "no channel 'war-room' in this export; it has: incident-checkout, random" in result.output
    assert not (run.path / IMPORT_FILE).exists()


def test_a_run_that_has_not_finished_has_no_window_to_import_into(run: RunDir, tmp_path: Path) -> None:
    journal = run.path / FILE_NAME
    journal.write_text(
        "".join(line + "\n" for line in journal.read_text().splitlines() if "run_finished" not in line)
    )
    result = import_chat(run.run_id, str(EXPORTS["mattermost"](tmp_path)), "--channel", CHANNEL)
    assert result.exit_code == 2 and "has not finished" in result.output
