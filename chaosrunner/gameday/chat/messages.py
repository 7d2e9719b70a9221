"""What the channel reads: a run's events and its debrief as chat messages (pure: data in, text out).

Two dialects, Slack's mrkdwn and Mattermost's Markdown. Our own words may be
formatted; everything people or libraries wrote - a title, an alert name, an
abort's detail, a path - is data: scrubbed of credential-shaped text, put on
one line, clipped, and escaped so it can neither ping anyone (``<!channel>``,
``@here``) nor become a link or an image. Slack needs ``&``, ``<`` and ``>``
escaped (its control characters); Mattermost renders Markdown, so its
punctuation is backslash-escaped. In both, an ``@`` in data is followed by an
invisible word joiner, so ``@channel`` in an alert's name stays text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrunner.durations import format_duration
from chaosrunner.redaction import redact_text
from chaosrunner.terminal_escapes import strip_terminal_escapes

DATA_LIMIT = 300
"""Characters of one piece of data in a message (before escaping): an abort's detail is a line, not a log."""

FIRING_STATES = frozenset({"firing", "active"})
"""Prometheus says ``firing``, Alertmanager ``active``: both mean the alert is out."""

_WORD_JOINER = "\u2060"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MATTERMOST_MARKDOWN = re.compile(r"([\\`*_~\[\](){}#<>!|])")
_SAFE_LINK = re.compile(r"https?://[A-Za-z0-9.:\[\]-]+(?:/[A-Za-z0-9._~/#=?%+-]*)?")
"""A link we may render as a link: our server's address and a URL-safe token, nothing to end it early."""


def slack_escape(text: str) -> str:
    """Slack's control characters: ``<!channel>``, ``<@U123>`` and ``<url|label>`` all need ``<``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("@", "@" + _WORD_JOINER)


def mattermost_escape(text: str) -> str:
    """Markdown's punctuation backslash-escaped (no links, images, headings or HTML); mentions broken."""
    return _MATTERMOST_MARKDOWN.sub(r"\\\1", text).replace("@", "@" + _WORD_JOINER)


@dataclass(frozen=True)
class Dialect:
    name: str
    escape: Callable[[str], str]
    bold: Callable[[str], str]  # for our own words only
    link: Callable[[str, str], str]  # (url, label) for a URL that matched _SAFE_LINK


SLACK = Dialect("slack", slack_escape, lambda words: f"*{words}*", lambda url, label: f"<{url}|{label}>")
MATTERMOST = Dialect(
    "mattermost", mattermost_escape, lambda words: f"**{words}**", lambda url, label: f"[{label}]({url})"
)


@dataclass(frozen=True)
class Message:
    kind: str  # run_started, alert_firing, escalation_due, abort, mitigated, finished, report, console_link
    # (report: the gameday's scored debrief, or an automated run's report path alone)
    text: str


def data(value: Any, dialect: Dialect, limit: int = DATA_LIMIT) -> str:
    """Outside text made safe to show: no secrets, one line, bounded, escaped."""
    text = _CONTROL.sub(" ", strip_terminal_escapes(redact_text(str(value)))).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return dialect.escape(text)


def link(url: str, label: str, dialect: Dialect) -> str:
    """Our server's link as a link; anything unexpected in it is shown as (escaped) text instead."""
    if _SAFE_LINK.fullmatch(url):
        return dialect.link(url, label)
    return f"{label}: {data(url, dialect, limit=500)}"


def run_started(
    title: str,
    hypothesis: str,
    faults: list[tuple[str, str]],
    run_id: str,
    console_link: str | None,
    d: Dialect,
    *,
    automated: bool = False,
) -> Message:
    """An automated run (the CLI's automated mode, the schedule daemon, a CronJob) says so: nobody is
    expected to respond, and the channel should not read it as a gameday to join."""
    listed = ", ".join(f"{data(name, d)} ({data(kind, d)})" for name, kind in faults) or "none"
    heading = "Automated chaos run started" if automated else "Gameday started"
    lines = [
        f":test_tube: {d.bold(heading)}: {data(title, d)} (run {data(run_id, d)})",
        f"Hypothesis: {data(hypothesis, d)}",
        f"Faults: {listed}",
    ]
    if console_link:
        lines.append(link(console_link, "Watch it live (read-only)", d))
    return Message("run_started", "\n".join(lines))


def console_link(url: str, d: Dialect) -> Message:
    """The observer link, when it is known only after the run-started message went out."""
    return Message("console_link", f":eyes: {link(url, 'Watch the gameday live (read-only)', d)}")


def alert_firing(event: Mapping[str, Any], d: Dialect) -> Message:
    layer = str(event.get("layer") or "unlisted layer").replace("_", " ")
    return Message(
        "alert_firing",
        f":rotating_light: {d.bold('Alert firing')} ({data(layer, d)}): {data(event.get('name', '?'), d)}",
    )


def escalation_due(event: Mapping[str, Any], d: Dialect) -> Message:
    return Message(
        "escalation_due", f":arrow_double_up: {d.bold('Escalation due')}: {data(event.get('detail', ''), d)}"
    )


def aborted(event: Mapping[str, Any], d: Dialect) -> Message:
    cause, detail = data(event.get("cause", "?"), d), data(event.get("detail", ""), d)
    return Message(
        "abort", f":octagonal_sign: {d.bold('Aborted')} ({cause}): {detail}. The faults are being reverted."
    )


def mitigated(event: Mapping[str, Any], d: Dialect) -> Message:
    reason = data(event.get("reason", ""), d)
    return Message(
        "mitigated", f":white_check_mark: {d.bold('Mitigated')}: {reason}. The faults are being reverted."
    )


def finished(event: Mapping[str, Any], d: Dialect) -> Message:
    status, detail = data(event.get("status", "?"), d), data(event.get("detail", ""), d)
    return Message("finished", f":checkered_flag: {d.bold('Run finished')}: {status} - {detail}")


_BY_EVENT: dict[str, tuple[str, Callable[[Mapping[str, Any], Dialect], Message]]] = {
    # the runner's event type -> the message kind and how to write it
    "alert": ("alert_firing", alert_firing),
    "escalation_due": ("escalation_due", escalation_due),
    "abort": ("abort", aborted),
    "faults_ending": ("mitigated", mitigated),
    "run_finished": ("finished", finished),
}


def kind_of(event: Mapping[str, Any]) -> str | None:
    """The kind of message ``for_event`` makes of this event, None if the channel does not hear it.
    Cheap, it renders nothing: the runner's threads call it."""
    kind = str(event.get("type"))
    if kind not in _BY_EVENT or (kind == "alert" and event.get("state") not in FIRING_STATES):
        return None
    return _BY_EVENT[kind][0]


def heard(event: Mapping[str, Any]) -> bool:
    return kind_of(event) is not None


def for_event(event: Mapping[str, Any], d: Dialect) -> Message | None:
    """The message for one of the runner's events, or None for events the channel does not hear.

    ``run_started`` is not here: it needs the scenario and the console link (``run_started``)."""
    if kind_of(event) is None:
        return None
    return _BY_EVENT[str(event["type"])][1](event, d)


@dataclass(frozen=True)
class DebriefFigures:
    """What the channel is told of the debrief: the measured times against their targets and the score."""

    ttd_seconds: float | None
    ttd_target_seconds: float
    ttm_seconds: float | None
    ttm_target_seconds: float
    score: float
    grade: str


def report(figures: DebriefFigures | None, report_path: Path | str | None, d: Dialect) -> Message:
    lines = [f":bar_chart: {d.bold('Debrief')}"]
    if figures is None:
        lines.append("The run could not be measured or scored.")
    else:
        lines.append(
            f"TTD {_timing(figures.ttd_seconds, figures.ttd_target_seconds)}, "
            f"TTM {_timing(figures.ttm_seconds, figures.ttm_target_seconds)}, "
            f"score {figures.score:g} (grade {figures.grade})"
        )
    lines.append(f"Report: {data(report_path, d, limit=500)}" if report_path else "No report was written.")
    return Message("report", "\n".join(lines))


def automated_report(report_path: Path | str | None, d: Dialect) -> Message:
    """An automated run's last word: where its report is. Not scored - nobody was responding, so
    TTD, TTM and a score would grade a team that was not there (the run's outcome went in ``finished``)."""
    where = f"Report: {data(report_path, d, limit=500)}" if report_path else "No report was written."
    return Message("report", f":page_facing_up: {d.bold('Automated chaos run report')}\n{where}")


def _timing(seconds: float | None, target: float) -> str:
    if seconds is None:
        return f"not measured (target {format_duration(target)})"
    return f"{format_duration(round(seconds, 1))} (target {format_duration(target)})"
