"""The series an alert rule reads: found with a PromQL parser, with how far back each is read."""

from __future__ import annotations

import pytest

from chaosrunner.errors import UsageError
from chaosrunner.report.promtool.selectors import Selector, selectors_of


def test_selectors_under_aggregations_functions_and_binary_operators_are_all_found() -> None:
    expr = (
        'sum by (job) (rate(http_requests_total{job="api",code=~"5.."}[5m]))'
        " / on (job) group_left sum by (job) (rate(http_requests_total[5m])) > 0.05"
        ' and absent(up{job="api"}) == 0 or topk(3, queue_depth)'
    )
    assert selectors_of(expr) == [
        Selector('http_requests_total{job="api",code=~"5.."}', 300.0),
        Selector("http_requests_total{}", 300.0),
        Selector('up{job="api"}', 0.0),
        Selector("queue_depth{}", 0.0),
    ]


def test_offsets_and_subqueries_reach_further_back() -> None:
    [offset] = selectors_of("rate(errors[1m] offset 10m)")
    assert offset == Selector("errors{}", 660.0)
    [subquery] = selectors_of("max_over_time(rate(errors[1m])[10m:30s] offset 5m)")
    assert subquery == Selector("errors{}", 60.0 + 600.0 + 300.0)


def test_the_same_selector_read_twice_keeps_its_longest_lookback() -> None:
    assert selectors_of("rate(x[1m]) > rate(x[10m]) or x") == [Selector("x{}", 600.0)]


def test_label_values_are_requoted_exactly() -> None:
    [selector] = selectors_of(r'up{path="a\\b\"c",job!~"x.*"}')
    assert selector.text == r'up{path="a\\b\"c",job!~"x.*"}'


def test_an_expression_that_does_not_parse_names_the_rule() -> None:
    with pytest.raises(UsageError, match="rule HighLatency: cannot parse"):
        selectors_of("rate(x[5m]", "rule HighLatency")


def test_literals_read_no_series() -> None:
    assert selectors_of("vector(1) > 0") == []
