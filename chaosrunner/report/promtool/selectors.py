"""Which series an alert rule reads: the vector selectors of its PromQL, and how far back each looks.

A promtool test only reproduces an alert if its ``input_series`` hold every
sample the rule's expression touched. Those are the series matched by the
expression's vector selectors (``http_requests_total{code=~"5.."}``), over
the run's window stretched back by what the expression reaches into the past:
a range (``[5m]``), an ``offset``, a subquery's range and offset. So we parse
the expression with a real PromQL parser (``promql-parser``; guessing at
selectors with regular expressions breaks on ``by (...)`` label lists,
strings and function names) and walk its tree.

The selector text we return has no ``offset`` and no range: it is what we
ask Prometheus for over the whole stretched window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaosrunner.errors import UsageError


@dataclass(frozen=True)
class Selector:
    """One vector selector of an expression: the text to fetch, and how far before an evaluation it reads."""

    text: str
    lookback_seconds: float


_OPERATORS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def quote(value: str) -> str:
    """A PromQL (and promtool series) double-quoted string: backslash, quote and newlines escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _matcher_text(matcher: Any) -> str:
    operator = _OPERATORS[str(matcher.op).rsplit(".", 1)[-1]]
    return f"{matcher.name}{operator}{quote(matcher.value)}"


def _selector_texts(selector: Any) -> list[str]:
    """``name{a="b"}``; a selector with ``or`` alternatives is one selector per alternative."""
    name = selector.name or ""
    groups = [selector.matchers.matchers] if selector.matchers.matchers else []
    groups += [group for group in selector.matchers.or_matchers or []]
    if not groups:
        groups = [[]]
    texts = []
    for group in groups:
        labels = ",".join(_matcher_text(matcher) for matcher in group)
        texts.append(f"{name}{{{labels}}}")
    return texts


def _seconds(delta: Any) -> float:
    return max(0.0, delta.total_seconds()) if delta is not None else 0.0


def _walk(node: Any, reach: float, found: list[Selector], where: str) -> None:
    """Collect selectors under ``node``; ``reach`` is how far back the enclosing subqueries already look."""
    import promql_parser as promql

    if isinstance(node, promql.VectorSelector):
        if node.at is not None:
            raise UsageError(
                f"{where}: the @ modifier pins data to another time; this export cannot replay it"
            )
        lookback = reach + _seconds(node.offset)
        found.extend(Selector(text, lookback) for text in _selector_texts(node))
    elif isinstance(node, promql.MatrixSelector):
        inner = node.vector_selector
        if inner.at is not None:
            raise UsageError(
                f"{where}: the @ modifier pins data to another time; this export cannot replay it"
            )
        lookback = reach + _seconds(node.range) + _seconds(inner.offset)
        found.extend(Selector(text, lookback) for text in _selector_texts(inner))
    elif isinstance(node, promql.SubqueryExpr):
        if node.at is not None:
            raise UsageError(
                f"{where}: the @ modifier pins data to another time; this export cannot replay it"
            )
        _walk(node.expr, reach + _seconds(node.range) + _seconds(node.offset), found, where)
    elif isinstance(node, promql.BinaryExpr):
        _walk(node.lhs, reach, found, where)
        _walk(node.rhs, reach, found, where)
    elif isinstance(node, promql.AggregateExpr):
        _walk(node.expr, reach, found, where)
        if node.param is not None:
            _walk(node.param, reach, found, where)
    elif isinstance(node, promql.Call):
        for argument in node.args:
            _walk(argument, reach, found, where)
    elif isinstance(node, (promql.ParenExpr, promql.UnaryExpr)):
        _walk(node.expr, reach, found, where)
    # number and string literals read no series


def selectors_of(expr: str, where: str = "expression") -> list[Selector]:
    """Every selector ``expr`` reads, deduplicated, each with the longest lookback it is read with.

    ``where`` names the rule in errors (``rule HighErrorRate``).
    """
    import promql_parser as promql

    try:
        tree = promql.parse(expr)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"{where}: cannot parse {expr!r}: {error}") from error
    found: list[Selector] = []
    _walk(tree, 0.0, found, where)
    longest: dict[str, float] = {}
    for selector in found:
        longest[selector.text] = max(longest.get(selector.text, 0.0), selector.lookback_seconds)
    return [Selector(text, lookback) for text, lookback in longest.items()]
