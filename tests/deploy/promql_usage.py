"""What a PromQL expression reads: series names, label matchers and grouping labels.

Parsed with promql-parser (a maintained PromQL parser), so a name inside a
string or a comment is never taken for a series. Grafana's range variables are
replaced by a duration first. Example:

    >>> usage = read_usage('sum by (state) (rate(x_total{state="idle"}[$__rate_interval]))')
    >>> usage.selectors
    [Selector(name='x_total', matchers=(('state', '=', 'idle'),))]
    >>> usage.groupings
    [Grouping(labels=('state',), names=('x_total',))]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import promql_parser

# Grafana's interval variables, which only Grafana resolves.
GRAFANA_RANGE = re.compile(r"\$__(?:rate_)?interval|\$__range")
# MatchOp members are not hashable: looked up by their name.
OPERATORS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


@dataclass(frozen=True)
class Selector:
    """A series selector: its name and its (label, operator, value) matchers."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Grouping:
    """The labels of a `by (...)` clause and the series names aggregated under it."""

    labels: tuple[str, ...]
    names: tuple[str, ...]


@dataclass
class Usage:
    selectors: list[Selector] = field(default_factory=list)
    groupings: list[Grouping] = field(default_factory=list)


def _selector_names(expr: promql_parser.Expr) -> tuple[str, ...]:
    names: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)

    promql_parser.walk(expr, visit)
    return tuple(sorted(set(names)))


def read_usage(expression: str) -> Usage:
    """Parse `expression` (a rule's or a Grafana target's) and list what it reads."""
    expr = promql_parser.parse(GRAFANA_RANGE.sub("5m", expression))
    usage = Usage()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expression!r}"
            matchers = tuple(
                (m.name, OPERATORS[str(m.op).rpartition(".")[2]], m.value)
                for m in node.matchers.matchers
                if m.name != "__name__"
            )
            usage.selectors.append(Selector(node.name, matchers))
        elif (
            isinstance(node, promql_parser.AggregateExpr)
            and node.modifier is not None
            and node.modifier.type == promql_parser.AggModifierType.By
        ):
            labels = tuple(node.modifier.labels)
            usage.groupings.append(Grouping(labels, _selector_names(node.expr)))

    promql_parser.walk(expr, visit)
    return usage
