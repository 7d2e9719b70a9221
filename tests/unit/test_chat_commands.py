"""`/gameday` text -> a mark or a question (chaosrunner.gameday.chat.commands), every word and mistake."""

from __future__ import annotations

import pytest

from chaosrunner.errors import UsageError
from chaosrunner.gameday.chat.commands import (
    MAX_TEXT,
    MarkCommand,
    Query,
    parse,
    slack_mentions,
    slack_plain,
)
from chaosrunner.gameday.responder import Mark, Via

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detected", MarkCommand(Mark.DETECTED, via=Via.HUMAN)),
        ("Detected", MarkCommand(Mark.DETECTED, via=Via.HUMAN)),
        ("detected via synthetic", MarkCommand(Mark.DETECTED, via=Via.SYNTHETIC)),
        ("detected via real_user", MarkCommand(Mark.DETECTED, via=Via.REAL_USER)),
        ("detected via real-user", MarkCommand(Mark.DETECTED, via=Via.REAL_USER)),
        ("detected via Infrastructure", MarkCommand(Mark.DETECTED, via=Via.INFRASTRUCTURE)),
        ("detected via human", MarkCommand(Mark.DETECTED, via=Via.HUMAN)),
        ("detected via user_report", MarkCommand(Mark.DETECTED, via=Via.USER_REPORT)),
        ("detected  VIA   user-report ", MarkCommand(Mark.DETECTED, via=Via.USER_REPORT)),
        ("sev P1", MarkCommand(Mark.SEVERITY, "P1")),
        ("sev p2", MarkCommand(Mark.SEVERITY, "P2")),
        ("severity P3", MarkCommand(Mark.SEVERITY, "P3")),
        ("ic @Mary O'Brien (SRE)", MarkCommand(Mark.IC, "Mary O'Brien (SRE)")),  # a display name
        ("ic @maria", MarkCommand(Mark.IC, "maria")),
        ("ic @maria.lopez", MarkCommand(Mark.IC, "maria.lopez")),
        ("ic rosa", MarkCommand(Mark.IC, "rosa")),
        (
            "status checkout failing; hypothesis: pool",
            MarkCommand(Mark.STATUS, "checkout failing; hypothesis: pool"),
        ),
        ("status  two\nlines", MarkCommand(Mark.STATUS, "two lines")),
        ("change restarted the pool", MarkCommand(Mark.CHANGE, "restarted the pool")),
        ("cause a leaking client", MarkCommand(Mark.CAUSE, "a leaking client")),
        ("note vendor paged <!channel>", MarkCommand(Mark.NOTE, "vendor paged <!channel>")),
        ("mitigated", MarkCommand(Mark.MITIGATED)),
        ("ESCALATED", MarkCommand(Mark.ESCALATED)),
        ("status", Query("state")),
        ("  status  ", Query("state")),
        ("help", Query("help")),
        ("", Query("help")),
    ],
)
def test_every_command_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("detected by alice", "expected `detected` or `detected via LAYER`"),
        ("detected via", "expected `detected` or `detected via LAYER`"),
        ("detected via pager", "via 'pager': expected one of"),
        ("detected via synthetic twice", "expected `detected` or `detected via LAYER`"),
        ("sev", "sev needs P1, P2 or P3"),
        ("sev P4", "severity must be P1, P2 or P3, not 'P4'"),
        ("sev high", "severity must be P1, P2 or P3"),
        ("ic", "expected `ic @someone`"),
        ("ic <script>", "expected `ic @someone`"),
        ("change", "`change` needs text"),
        ("cause", "`cause` needs text"),
        ("note", "`note` needs text"),
        ("mitigated now", "`mitigated` takes nothing after it"),
        ("escalated to bob", "`escalated` takes nothing after it"),
        ("resolve", "unknown command 'resolve'"),
        ("note " + "x" * MAX_TEXT, "too long"),
    ],
)
def test_every_mistake_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse(text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("sev p1", "sev P1"),
        ("ic @maria", "ic maria"),
        ("detected via real-user", "detected via real_user"),
        ("mitigated", "mitigated"),
        ("note vendor paged", 'note "vendor paged"'),
        ("status " + "y" * 100, 'status "' + "y" * 77 + '..."'),
    ],
)
def test_the_confirmation_names_the_mark(text: str, shown: str) -> None:
    command = parse(text)
    assert isinstance(command, MarkCommand)
    assert command.describe() == shown


# -- Slack's markup: mentions become display names, escapes become what was typed -----------------


@pytest.mark.parametrize(
    ("sent", "names", "plain"),
    [
        ("ic <@U024BE7LH|maria>", {}, "ic @maria"),  # older clients put the name in the mention
        ("ic <@U024BE7LH>", {}, "ic @U024BE7LH"),  # newer ones do not: the id is all there is
        ("ic <@U024BE7LH>", {"U024BE7LH": "María López"}, "ic @María López"),
        ("ic <@U024BE7LH|maria>", {"U024BE7LH": "María López"}, "ic @María López"),  # the name people see
        ("note a &lt; b &amp;&amp; c &gt; d", {}, "note a < b && c > d"),
        ("note &amp;lt; stays typed", {}, "note &lt; stays typed"),  # one pass: never un-escaped twice
        ("note &lt;@U1&gt; typed by hand", {"U1": "eve"}, "note <@U1> typed by hand"),  # data, not a mention
        ("note vendor paged <!channel>", {}, "note vendor paged <!channel>"),  # stays literal: never a ping
        (
            "note see <#C0123|ops> and <https://x.example/a|the dash>",
            {},
            "note see #ops and the dash (https://x.example/a)",
        ),
        ("note <https://x.example/a>", {}, "note https://x.example/a"),
    ],
)
def test_slack_text_is_made_plain(sent: str, names: dict[str, str], plain: str) -> None:
    assert slack_plain(sent, names) == plain


def test_mentions_are_found_in_order_once_and_only_in_slacks_own_markup() -> None:
    text = "note <@U2> asked <@W1|bob> and <@U2> again; &lt;@U9&gt; was typed"
    assert slack_mentions(text) == ["U2", "W1"]


@pytest.mark.parametrize(
    ("sent", "names", "expected"),
    [
        ("ic <@U7|rosa>", {}, MarkCommand(Mark.IC, "rosa")),
        ("ic <@U7>", {"U7": "Rosa Díaz (SRE)"}, MarkCommand(Mark.IC, "Rosa Díaz (SRE)")),
        ("note pinged <@U7>", {"U7": "Rosa"}, MarkCommand(Mark.NOTE, "pinged @Rosa")),
    ],
)
def test_a_mention_reaches_the_mark_as_the_display_name(
    sent: str, names: dict[str, str], expected: MarkCommand
) -> None:
    assert parse(slack_plain(sent, names)) == expected


def test_a_mention_typed_by_hand_is_not_an_incident_commander() -> None:
    with pytest.raises(UsageError, match="expected `ic @someone`"):
        parse(slack_plain("ic &lt;@U1|eve&gt;", {"U1": "eve"}))
