"""Which alert rules monitoring had loaded when the run began: the ``alert_rules`` event.

Detection coverage asks of every run "which of *all* the alerts fired?",
not only "did the alerts the scenario expects fire?": an alert nobody
declared that fires with the fault is noise (or an undeclared detector), and
one that never fires in any run is untested. So at preflight the runner
journals every alerting rule Prometheus reports, with the monitoring layer
the scenario gives it (the same ``layer_of`` the watcher's ``alert`` events
use; ``monitoring`` for a rule the scenario does not list).

Reading the rules is advisory: a Prometheus that cannot list them yields the
event with ``source: "unavailable"`` and the error, and the run goes on - the
abort monitor, not this, decides whether monitoring is too blind to run.
"""

from __future__ import annotations

from typing import Any

from chaosrunner.errors import ChaosrunnerError
from chaosrunner.observe.metrics import AlertRule, MetricsSource
from chaosrunner.scenario.models import Scenario

UNLISTED_LAYER = "monitoring"
"""The layer of a rule the scenario's detection signals do not name (as gameday.measure says)."""


def rule_fields(rule: AlertRule, scenario: Scenario) -> dict[str, Any]:
    return {
        "name": rule.name,
        "group": rule.group,
        "file": rule.file,
        "expr": rule.expr,
        "for_seconds": rule.for_seconds,
        "labels": dict(rule.labels),
        "layer": scenario.detection.layer_of(rule.name) or UNLISTED_LAYER,
    }


def alert_rules_fields(scenario: Scenario, metrics: MetricsSource | None) -> dict[str, Any]:
    """The ``alert_rules`` event's fields: never raises for monitoring's sake."""
    if metrics is None:
        return {"rules": [], "source": "unavailable", "error": "no Prometheus configured"}
    read = getattr(metrics, "alert_rules", None)
    if read is None:  # a MetricsSource from before rules were asked for
        return {"rules": [], "source": "unavailable", "error": "this metrics source cannot list alert rules"}
    try:
        rules = read()
    except ChaosrunnerError as error:
        return {"rules": [], "source": "unavailable", "error": str(error)}
    return {"rules": [rule_fields(rule, scenario) for rule in rules], "source": "prometheus", "error": None}
