"""The scenario document as typed, immutable models.

A scenario is data: what to break, what "healthy" means, when to stop, how to
tell the team noticed and fixed it, and how to score them. These models are
the single definition of that format; the JSON Schema (``chaosrunner schema``)
and the error messages are derived from them.

Two parts of the document are open-ended and resolved by the loader before
these models see them: a fault's ``params``/``selector`` (typed by the fault
kind's own models from the registry) and ``use: NAME`` abort conditions
(expanded from the library). So after loading, every ``FaultSpec`` carries its
kind's typed params and every ``AbortCondition`` is complete.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, SerializeAsAny, Tag

from chaosrunner.durations import Duration
from chaosrunner.faults.base import BlastRadius, FaultParams, FaultSelector
from chaosrunner.faults.connections import ENV_VAR_NAME, Connections
from chaosrunner.scenario.http_check import HttpSteadyStateCheck
from chaosrunner.scenario.patterns import NAME_PATTERN, URL_PATTERN

__all__ = ["NAME_PATTERN", "URL_PATTERN"]  # re-exported: problems and others import them from here


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Severity(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Comparator(StrEnum):
    """How a query's value is compared with its threshold."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def holds(self, value: float, threshold: float) -> bool:
        return _COMPARE[self](value, threshold)


_COMPARE: dict[Comparator, Callable[[float, float], bool]] = {
    Comparator.LT: operator.lt,
    Comparator.LE: operator.le,
    Comparator.GT: operator.gt,
    Comparator.GE: operator.ge,
    Comparator.EQ: operator.eq,
    Comparator.NE: operator.ne,
}


class Metadata(_Model):
    title: str = Field(min_length=1, description="what the gameday is called on the invitation")
    description: str = ""
    owner: str = Field(min_length=1, description="team or person accountable for the scenario")
    tags: list[str] = Field(default_factory=list)
    expected_severity: Severity = Field(description="the severity a well-run response declares")
    hypothesis: str = Field(min_length=1, description="what we believe stays true while the fault runs")


class Target(Connections):
    """Where the system under test lives, and how chaosrunner reaches it."""

    production: bool = Field(
        False, description="a production target refuses to run without --allow-production"
    )
    prometheus: str | None = Field(None, pattern=URL_PATTERN, description="Prometheus base URL")
    alertmanager: str | None = Field(None, pattern=URL_PATTERN, description="Alertmanager base URL")
    pushgateway: str | None = Field(
        None, pattern=URL_PATTERN, description="Pushgateway base URL: chaos windows become visible"
    )


class PromCheck(_Model):
    """A PromQL expression compared with a threshold."""

    name: str = Field(pattern=NAME_PATTERN, description="short identifier used in the journal and report")
    expr: str = Field(min_length=1, description="PromQL; must return a single value")
    comparator: Comparator
    threshold: float
    description: str = ""

    def holds(self, value: float) -> bool:
        return self.comparator.holds(value, self.threshold)

    def describe(self) -> str:
        return f"{self.expr} {self.comparator.value} {self.threshold:g}"


class SteadyStateCheck(PromCheck):
    """True while the system is healthy; checked before injecting and after reverting."""


def steady_state_kind(entry: Any) -> str:
    """Which kind of steady-state check an entry is: an ``http:`` key makes it an HTTP probe."""
    if isinstance(entry, HttpSteadyStateCheck) or (isinstance(entry, dict) and "http" in entry):
        return "http"
    return "promql"


SteadyStateEntry = Annotated[
    Annotated[SteadyStateCheck, Tag("promql")] | Annotated[HttpSteadyStateCheck, Tag("http")],
    Discriminator(steady_state_kind),
]


class AbortCondition(PromCheck):
    """Stop the experiment and revert everything when this holds for ``for``."""

    for_: Duration = Field(timedelta(0), alias="for", description="how long it must hold before aborting")
    origin: str = Field("inline", description="'inline', or the library file it came from")


class ConditionReference(_Model):
    """``use: NAME`` - an abort condition from the library, with overrides."""

    use: str = Field(min_length=1, description="name of a condition in abort_conditions/")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="rename it for this scenario")
    params: dict[str, str | int | float] = Field(
        default_factory=dict, description="values for the library condition's ${placeholders}"
    )
    threshold: float | None = None
    comparator: Comparator | None = None
    for_: Duration | None = Field(None, alias="for")


class FaultSpec(_Model):
    name: str = Field(pattern=NAME_PATTERN, description="unique within the scenario")
    kind: str = Field(description="a registered fault kind; see `chaosrunner faults`")
    selector: SerializeAsAny[FaultSelector] | None = None
    params: SerializeAsAny[FaultParams]
    start: Duration = Field(timedelta(0), description="offset from the start of injection")
    duration: Duration | None = Field(
        None, description="how long it stays injected; default: until mitigated or max_duration"
    )
    blast_radius: BlastRadius = BlastRadius()


class DetectionSignals(_Model):
    """Alert names that count as "monitoring noticed", by monitoring layer."""

    synthetic: list[str] = Field(default_factory=list, description="probes from outside")
    real_user: list[str] = Field(default_factory=list, description="what real traffic experiences")
    infrastructure: list[str] = Field(default_factory=list, description="internal metrics")

    def layer_of(self, alert_name: str) -> str | None:
        for layer in ("synthetic", "real_user", "infrastructure"):
            if alert_name in getattr(self, layer):
                return layer
        return None

    def all_alerts(self) -> list[str]:
        return [*self.synthetic, *self.real_user, *self.infrastructure]


class MitigationSignal(_Model):
    """The SLI that says users are fine again, even while the fault is active."""

    sli: str = Field(min_length=1, description="PromQL for the service level indicator")
    comparator: Comparator = Field(description="how the SLI is compared with the objective")
    objective: float
    confirm_for: Duration = Field(
        timedelta(seconds=30), description="the SLI must meet the objective this long to count"
    )

    def met(self, value: float) -> bool:
        return self.comparator.holds(value, self.objective)


class Mode(StrEnum):
    AUTOMATED = "automated"
    GAMEDAY = "gameday"


class GamedaySettings(_Model):
    mode: Mode = Field(Mode.AUTOMATED, description="gameday: faults stay until the team mitigates")
    ttd_target: Duration = Field(timedelta(minutes=5), description="target time to detect")
    ttm_target: Duration = Field(timedelta(minutes=15), description="target time to mitigate")
    status_update_every: Duration | None = Field(
        None, description="expected status-update cadence; default from the expected severity"
    )
    max_duration: Duration = Field(timedelta(minutes=30), description="abort the run after this long")
    # 250ms, not 1s: with a 1s scrape the check interval is the one delay that is
    # ours, and instant queries are cheap (4 per second per condition).
    check_interval: Duration = Field(
        timedelta(milliseconds=250), description="how often abort conditions are evaluated"
    )
    unreachable_grace: Duration = Field(
        timedelta(seconds=2), description="abort when Prometheus has not answered for this long (fail closed)"
    )
    escalation_webhook: str | None = Field(
        None, pattern=URL_PATTERN, description="POSTed (JSON, Slack-compatible 'text') when escalation is due"
    )
    steady_state_timeout: Duration = Field(
        timedelta(minutes=2), description="how long steady state may take to return after revert"
    )


MARK_NAMES = (
    "detected",
    "mitigated",
    "resolved",
    "escalated",
    "severity",
    "ic",
    "status",
    "change",
    "cause",
    "note",
)
"""The team's marks (gameday.responder.Mark); an inject's ``unless`` names one. Spelled out
here because the scenario layer sits below gameday; a unit test keeps the two lists equal."""


class Inject(_Model):
    """A timed inject or hint the facilitator gives the room during a gameday."""

    name: str = Field(pattern=NAME_PATTERN, description="unique within the run sheet")
    at: Duration = Field(description="when, after the first fault is in effect (t0)")
    unless: str | None = Field(
        None, description="a mark (detected, mitigated, ...): skipped when the team already made it"
    )
    audience: Literal["responders", "everyone"] = Field(
        "responders", description="who is shown it: the responders, or everyone including observers"
    )
    text: str = Field(min_length=1, description="what the room is told")


class RunSheet(_Model):
    """The facilitator's run sheet: prerequisites, the go/no-go gate and timed injects.

    Gameday mode only: an automated run ignores it (``chaosrunner plan`` says so)."""

    prerequisites: list[str] = Field(
        default_factory=list, description="the facilitator's checklist, shown before anything is injected"
    )
    go_no_go: bool = Field(False, description="the run waits for a go after preflight, before injecting")
    go_timeout: Duration = Field(
        timedelta(minutes=30), description="no decision this long: the run is aborted, nothing injected"
    )
    injects: list[Inject] = Field(default_factory=list, description="timed injects and hints, relative to t0")


class ScoringWeights(_Model):
    """Points per rubric criterion (see gameday scoring); the total is scaled to 100."""

    detected_by_monitoring: float = Field(15, ge=0)
    ttd_within_target: float = Field(10, ge=0)
    severity_declared: float = Field(10, ge=0)
    incident_commander: float = Field(10, ge=0)
    status_updates: float = Field(15, ge=0)
    mitigation_before_root_cause: float = Field(10, ge=0)
    ttm_within_target: float = Field(15, ge=0)
    escalation: float = Field(5, ge=0)
    single_changer: float = Field(10, ge=0)


class Scoring(_Model):
    weights: ScoringWeights = ScoringWeights()


class SlackChat(_Model):
    """A Slack app for this gameday: slash commands in, messages out. Secrets by variable name."""

    channel: str = Field(
        min_length=1, description="the channel's id (C0123...): commands from elsewhere are refused"
    )
    signing_secret_env: str | None = Field(
        None, pattern=ENV_VAR_NAME, description="variable holding the app's signing secret: enables /gameday"
    )
    bot_token_env: str | None = Field(
        None,
        pattern=ENV_VAR_NAME,
        description="variable holding a bot token (xoxb-): chat.postMessage, users",
    )
    webhook_url_env: str | None = Field(
        None, pattern=ENV_VAR_NAME, description="variable holding an incoming-webhook URL (instead of a bot)"
    )
    api_url: str = Field("https://slack.com/api/", pattern=URL_PATTERN, description="the Web API's base URL")


class MattermostChat(_Model):
    """A Mattermost slash command and incoming webhook for this gameday."""

    channel: str = Field(
        min_length=1, description="the channel's name or id: commands from elsewhere are refused"
    )
    command_token_env: str | None = Field(
        None, pattern=ENV_VAR_NAME, description="variable holding the slash command's token: enables /gameday"
    )
    webhook_url_env: str | None = Field(
        None, pattern=ENV_VAR_NAME, description="variable holding an incoming-webhook URL for messages out"
    )


class ChatSettings(_Model):
    """Chat-ops: the team runs the gameday from its channel, and the channel hears the run."""

    slack: SlackChat | None = None
    mattermost: MattermostChat | None = None


class Scenario(_Model):
    kind: Literal["Scenario"] = "Scenario"
    version: Literal[1] = 1
    metadata: Metadata
    target: Target = Target()
    steady_state_checks: list[SteadyStateEntry] = Field(
        default_factory=list,
        alias="steady_state",
        description="what healthy means: PromQL checks, and HTTP probes (entries with an http: key)",
    )
    faults: list[FaultSpec] = Field(min_length=1)
    abort_conditions: list[AbortCondition] = Field(default_factory=list)
    detection: DetectionSignals = DetectionSignals()
    mitigation: MitigationSignal | None = None
    gameday: GamedaySettings = GamedaySettings()
    scoring: Scoring = Scoring()
    run_sheet: RunSheet = RunSheet()
    chat: ChatSettings = ChatSettings()

    # The document's ``steady_state`` list holds both kinds, in the author's order
    # (``steady_state_checks``). Most readers want one kind: the report, the
    # measurement and the live view draw PromQL checks as series from Prometheus,
    # which an HTTP probe has none of; the engine probes the HTTP ones itself.
    @property
    def steady_state(self) -> list[SteadyStateCheck]:
        """The PromQL steady-state checks (the ones with a series in Prometheus)."""
        return [check for check in self.steady_state_checks if isinstance(check, SteadyStateCheck)]

    @property
    def http_checks(self) -> list[HttpSteadyStateCheck]:
        """The HTTP steady-state checks, probed by the engine itself."""
        return [check for check in self.steady_state_checks if isinstance(check, HttpSteadyStateCheck)]


class LibraryParam(_Model):
    description: str = ""
    default: str | int | float | None = None


class LibraryCondition(_Model):
    """A reusable abort condition file in ``abort_conditions/``."""

    kind: Literal["AbortCondition"]
    version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)
    params: dict[str, LibraryParam] = Field(
        default_factory=dict, description="${placeholders} in expr; no default means required"
    )
    expr: str = Field(min_length=1)
    comparator: Comparator
    threshold: float
    for_: Duration = Field(timedelta(0), alias="for")
