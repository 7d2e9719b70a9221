"""Reading Slack and Mattermost exports into plain messages, and refusing broken ones by name."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from chaosrunner.errors import UsageError
from chaosrunner.gameday.chat.exports import ChatExport, detect_format, read_export
from tests.unit.chat_export_factory import (
    CHANNEL,
    FIRST_UPDATE,
    SEVERITY_TEXT,
    at,
    write_mattermost_export,
    write_slack_export,
)


def by_text(export: ChatExport, text: str) -> list:
    return [message for message in export.messages if message.text == text]


@pytest.mark.parametrize("zipped", [False, True])
def test_a_slack_export_becomes_messages_with_names_threads_edits_and_bots(
    tmp_path: Path, zipped: bool
) -> None:
    path = write_slack_export(tmp_path / "slack", zipped=zipped)
    assert detect_format(path) == "slack"
    export = read_export(path, f"#{CHANNEL}")
    assert export.format == "slack" and export.channel == CHANNEL
    assert export.system_skipped == 1  # bob joined
    assert [message.at for message in export.messages] == sorted(message.at for message in export.messages)
    (edited,) = by_text(export, SEVERITY_TEXT)
    assert edited.edited and edited.author == "bob" and edited.at == at(60)
    (root,) = by_text(export, "I'm IC")
    (reply,) = by_text(export, FIRST_UPDATE)  # <@U2> reads as @bob
    assert reply.reply and not root.reply and reply.thread == root.thread is not None
    assert reply.mentions == ("bob",)
    assert [message.bot for message in export.messages if message.text == "sev P3"].count(True) == 1
    assert {message.author for message in export.messages} >= {"alice", "bob", "unknown user U999"}


def test_slack_reads_only_the_days_asked_for(tmp_path: Path) -> None:
    path = write_slack_export(tmp_path / "slack")
    every = read_export(path, CHANNEL)
    some = read_export(path, CHANNEL, days=(date(2026, 11, 27), date(2026, 11, 27)))
    assert len(every.messages) == len(some.messages) + 1  # the 26th's file was not read


def test_a_mattermost_export_becomes_messages_with_replies_edits_and_bots(tmp_path: Path) -> None:
    path = write_mattermost_export(tmp_path / "export.jsonl")
    assert detect_format(path) == "mattermost"
    export = read_export(path, "Incident: checkout")  # the display name finds the channel too
    assert export.format == "mattermost" and export.channel == CHANNEL
    assert export.system_skipped == 1
    assert not any(message.text == "sev P3" and message.at == at(120) for message in export.messages)
    (edited,) = by_text(export, SEVERITY_TEXT)
    assert edited.edited and edited.author == "bob"
    (root,) = by_text(export, "I'm IC")
    (reply,) = by_text(export, FIRST_UPDATE)
    assert reply.reply and reply.thread == root.thread is not None and reply.at == at(100)
    assert reply.mentions == ("bob",)
    assert any(message.bot for message in export.messages)
    assert any(message.author == "unknown user ghost" for message in export.messages)


def test_a_slack_export_without_users_json_is_refused_by_name(tmp_path: Path) -> None:
    path = write_slack_export(tmp_path / "slack")
    (path / "users.json").unlink()
    with pytest.raises(UsageError, match=r"users\.json: missing"):
        read_export(path, CHANNEL)


def test_malformed_slack_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = write_slack_export(tmp_path / "slack")
    day = path / CHANNEL / "2026-11-27.json"
    day.write_text('[\n {"type": "message",\n  "text": }\n]')
    with pytest.raises(UsageError, match=r"2026-11-27\.json:3:\d+: not valid JSON"):
        read_export(path, CHANNEL)


def test_a_slack_message_with_a_bad_timestamp_names_the_message_and_field(tmp_path: Path) -> None:
    path = write_slack_export(tmp_path / "slack")
    (path / CHANNEL / "2026-11-27.json").write_text(
        json.dumps([{"type": "message", "user": "U1", "text": "x"}])
    )
    with pytest.raises(UsageError, match=r'2026-11-27\.json: message 0: field "ts"'):
        read_export(path, CHANNEL)


def test_an_unknown_channel_is_refused_listing_the_known_ones(tmp_path: Path) -> None:
    slack = write_slack_export(tmp_path / "slack")
    with pytest.raises(UsageError, match=r"channels\.json: no channel 'ops'.*incident-checkout, random"):
        read_export(slack, "ops")
    mattermost = write_mattermost_export(tmp_path / "export.jsonl")
    with pytest.raises(UsageError, match=r"no channel 'ops'"):
        read_export(mattermost, "ops")


def test_malformed_mattermost_lines_are_named_by_line(tmp_path: Path) -> None:
    path = write_mattermost_export(tmp_path / "export.jsonl")
    lines = path.read_text().splitlines()
    lines[6] = '{"type": "post", "post": {'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"export\.jsonl:7:\d+: not valid JSON"):
        read_export(path, CHANNEL)
    path.write_text("\n".join(lines[1:6]) + "\n")
    with pytest.raises(UsageError, match=r"export\.jsonl:1: .*starts with a \"version\" line"):
        read_export(path, CHANNEL)


def test_a_mattermost_post_without_a_time_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    lines = [
        {"type": "version", "version": 1},
        {"type": "post", "post": {"channel": CHANNEL, "user": "alice", "message": "sev P1"}},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(UsageError, match=r'export\.jsonl:2: post: field "create_at"'):
        read_export(path, CHANNEL)
