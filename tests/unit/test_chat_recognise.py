"""Recognising marks in what people wrote: what counts, and - as much - what does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaosrunner.gameday.chat.exports import ChatMessage
from chaosrunner.gameday.chat.recognise import MAX_VALUE, Recognised, recognise
from chaosrunner.gameday.responder import Mark, Via

FULL_UPDATE = (
    "checkout failing for 40% of users; hypothesis: db pool exhausted; "
    "@bob is checking the db; next update in 5m"
)


def said(text: str, *, mentions: tuple[str, ...] = (), bot: bool = False) -> Recognised | None:
    return recognise(
        ChatMessage(datetime(2026, 11, 27, 14, tzinfo=UTC), "carol", text, bot=bot, mentions=mentions)
    )


@pytest.mark.parametrize(
    ("text", "mark", "value"),
    [
        ("/gameday sev p2", Mark.SEVERITY, "P2"),
        ("/gameday ic @bob", Mark.IC, "bob"),
        ("/gameday status errors at 20%", Mark.STATUS, "errors at 20%"),
        ("/gameday mitigated", Mark.MITIGATED, ""),
        ("sev P1", Mark.SEVERITY, "P1"),
        ("sev1", Mark.SEVERITY, "P1"),
        ("Severity: P2", Mark.SEVERITY, "P2"),
        ("ok, this is a P1", Mark.SEVERITY, "P1"),
        ("I'm IC", Mark.IC, "carol"),
        ("I\u2019ll be the incident commander", Mark.IC, "carol"),
        ("IC: @bob", Mark.IC, "bob"),
        ("@bob is IC from now", Mark.IC, "bob"),
        ("Status update: still digging", Mark.STATUS, "Status update: still digging"),
        (
            ":rotating_light: *Status update* checkout down",
            Mark.STATUS,
            ":rotating_light: *Status update* checkout down",
        ),
        (FULL_UPDATE, Mark.STATUS, FULL_UPDATE),
        ("mitigated", Mark.MITIGATED, ""),
        ("rolled back - user impact is over", Mark.MITIGATED, ""),
        ("root cause: a batch job leaked connections", Mark.CAUSE, "a batch job leaked connections"),
        ("escalating to the database team", Mark.ESCALATED, ""),
    ],
)
def test_marks_people_make_in_chat(text: str, mark: Mark, value: str) -> None:
    assert said(text) == Recognised(mark, value)


def test_a_typed_detected_command_keeps_its_layer() -> None:
    assert said("/gameday detected via synthetic") == Recognised(Mark.DETECTED, "", Via.SYNTHETIC)


def test_a_mentioned_display_name_with_a_space_is_the_ic() -> None:
    assert said("IC: @Alice Smith, thanks", mentions=("Alice Smith",)) == Recognised(Mark.IC, "Alice Smith")
    assert said("@Alice Smith is the IC", mentions=("Alice Smith",)) == Recognised(Mark.IC, "Alice Smith")


@pytest.mark.parametrize(
    "text",
    [
        "is this a P1?",
        "this is not a P1",
        "this is a 1 in a million failure",
        "sev P1 if it spreads",
        "who is IC?",
        "I'm not IC",
        "not mitigated yet",
        "once mitigated we dig in",
        "is it mitigated?",
        "partially mitigated",
        "mitigated yet?",
        "root cause: unknown",
        "root cause is not clear",
        "root cause: the pool?",
        "should we be escalating to the db team?",
        "we're seeing errors",  # too vague to be a detection
        "detected",
        "looks like errors on checkout",
        "/gameday help",
        "/gameday status",  # alone: a question about the run
        "/gameday bogus",
        "",
    ],
)
def test_questions_negations_and_vague_words_make_no_mark(text: str) -> None:
    assert said(text) is None


def test_a_bot_never_makes_a_mark() -> None:
    assert said("sev P1", bot=True) is None


def test_a_long_status_update_is_bounded() -> None:
    found = said("Status update: " + "x" * 5000)
    assert found is not None and len(found.value) == MAX_VALUE and found.value.endswith("...")
