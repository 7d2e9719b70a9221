"""The schedule file: which scenarios run unattended, when, and within what limits.

    kind: Schedule
    name: staging-chaos
    defaults:                       # apply to every entry unless it says otherwise
      timezone: Europe/Berlin
      windows: [{days: [mon, tue, wed, thu, fri], start: "10:00", end: "16:00"}]
      blackout_dates: ["2026-12-24", "2026-12-31"]
      jitter: 5m
      max_runs_per_day: 4
      webhooks: [{url: https://hooks.example/chaos, format: slack, events: [abort, finish]}]
    entries:
      - name: checkout-pool
        scenario: ../scenarios/db-pool-exhaustion.yaml   # relative to this file
        cron: "*/30 * * * *"
        lock: checkout-db                                 # default: the scenario's target

Validated like scenarios - every mistake with file:line:column - and the
scenarios it names are loaded too, so a broken scenario fails at `schedule
next`, not at three in the morning.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from enum import StrEnum
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaosrunner.durations import Duration
from chaosrunner.scenario.models import NAME_PATTERN, URL_PATTERN

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


def _clock(value: str) -> time:
    match = _CLOCK.match(value)
    if not match:
        raise ValueError(f"expected a time of day as HH:MM (24 h), found {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


class Window(_Model):
    """Runs may start only inside a window (local time of the entry's timezone)."""

    days: list[Weekday] = Field(default_factory=lambda: list(Weekday), min_length=1)
    start: str = Field("00:00", description="HH:MM, inclusive")
    end: str = Field("24:00", description="HH:MM, exclusive; 24:00 means midnight")

    @field_validator("start")
    @classmethod
    def _start_is_a_clock(cls, value: str) -> str:
        _clock(value)
        return value

    @field_validator("end")
    @classmethod
    def _end_is_a_clock(cls, value: str) -> str:
        if value != "24:00":
            _clock(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end != "24:00" and _clock(self.end) <= _clock(self.start):
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start})")
        return self

    def minutes(self) -> tuple[int, int]:
        start = _clock(self.start)
        end = 24 * 60 if self.end == "24:00" else _clock(self.end).hour * 60 + _clock(self.end).minute
        return start.hour * 60 + start.minute, end


class WebhookFormat(StrEnum):
    JSON = "json"
    SLACK = "slack"


class WebhookEvent(StrEnum):
    START = "start"
    ABORT = "abort"
    FINISH = "finish"


class Webhook(_Model):
    url: str = Field(pattern=URL_PATTERN)
    format: WebhookFormat = WebhookFormat.JSON
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WebhookEvent), min_length=1)


class EntrySettings(_Model):
    """What defaults and entries share; an entry's own value wins."""

    timezone: str | None = Field(None, description="IANA time zone of cron and windows, e.g. Europe/Berlin")
    windows: list[Window] | None = None
    blackout_dates: list[date] | None = None
    jitter: Duration | None = Field(None, description="start up to this much after the cron time")
    max_runs_per_day: int | None = Field(None, ge=1)
    webhooks: list[Webhook] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
                ) from None
        return value


class Entry(EntrySettings):
    name: str = Field(pattern=NAME_PATTERN)
    scenario: str = Field(min_length=1, description="scenario file, relative to the schedule file")
    cron: str = Field(min_length=1, description="five-field cron expression")
    lock: str | None = Field(None, pattern=NAME_PATTERN, description="never two runs holding the same lock")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"expected a five-field cron expression such as '*/30 10-16 * * mon-fri', found {value!r}"
            )
        return value


class Schedule(_Model):
    kind: Literal["Schedule"]
    version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    defaults: EntrySettings = EntrySettings()
    pushgateway: str | None = Field(
        None, pattern=URL_PATTERN, description="where each scheduled run's outcome is pushed for alerting"
    )
    entries: list[Entry] = Field(min_length=1)


class ResolvedEntry(_Model):
    """An entry with the defaults applied: what the daemon and the exporter use."""

    name: str
    scenario: str
    cron: str
    lock: str
    timezone: str
    windows: list[Window]
    blackout_dates: list[date]
    jitter: timedelta
    max_runs_per_day: int | None
    webhooks: list[Webhook]


def resolve(entry: Entry, defaults: EntrySettings, lock: str) -> ResolvedEntry:
    def pick(name: str, fallback: Any) -> Any:
        own = getattr(entry, name)
        if own is not None:
            return own
        shared = getattr(defaults, name)
        return shared if shared is not None else fallback

    return ResolvedEntry(
        name=entry.name,
        scenario=entry.scenario,
        cron=entry.cron,
        lock=entry.lock or lock,
        timezone=pick("timezone", "UTC"),
        windows=pick("windows", [Window()]),
        blackout_dates=pick("blackout_dates", []),
        jitter=pick("jitter", timedelta(0)),
        max_runs_per_day=pick("max_runs_per_day", None),
        webhooks=pick("webhooks", []),
    )
