"""PromQL as Prometheus 3.13 parses it with no experimental features: the parser Prometheus Operator
v0.93's admission webhook runs on every rule expression (`parser.Options{}`, hard-coded in
`cmd/operator/main.go`), and the parser every KEDA query, dashboard panel and adapter rule meets at
query time.

The parsing is `promql-parser` (PyPI; GreptimeTeam's Rust parser, whose function table tracks
Prometheus 3.14). It accepts more than the webhook does, so what Prometheus 3.13.1 refuses without
`--enable-feature` flags is refused here on top: experimental functions and aggregators, `fill`
modifiers on binary operators, and `or` inside a selector's braces (a GreptimeDB extension).
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser

# promql/parser/functions.go at Prometheus v3.13.1: the functions marked Experimental (the parser
# answers `function "X" is not enabled`), plus `start_timestamp`, which 3.13 does not have at all.
EXPERIMENTAL_FUNCTIONS = frozenset(
    {
        "end",
        "first_over_time",
        "histogram_quantiles",
        "double_exponential_smoothing",
        "info",
        "max_of",
        "min_of",
        "mad_over_time",
        "ts_of_first_over_time",
        "ts_of_max_over_time",
        "ts_of_min_over_time",
        "ts_of_last_over_time",
        "range",
        "sort_by_label",
        "sort_by_label_desc",
        "start",
        "step",
    }
)
UNKNOWN_IN_PROMETHEUS_3_13 = frozenset({"start_timestamp"})
EXPERIMENTAL_AGGREGATORS = frozenset({"limitk", "limit_ratio"})  # promql/parser/lex.go


def _nodes(expr) -> Iterator[object]:
    found: list[object] = []

    def visit(node) -> bool:
        found.append(node)
        return True

    promql_parser.walk(expr, pre_visit=visit)
    return iter(found)


def _feature_problem(node) -> str | None:
    if isinstance(node, promql_parser.Call):
        name = node.func.name
        if name in UNKNOWN_IN_PROMETHEUS_3_13:
            return f"unknown function with name {name!r} (not in Prometheus 3.13)"
        if name in EXPERIMENTAL_FUNCTIONS:
            return f"function {name!r} is not enabled (experimental in Prometheus 3.13)"
    if isinstance(node, promql_parser.AggregateExpr) and str(node.op) in EXPERIMENTAL_AGGREGATORS:
        return f"{node.op}() is experimental and must be enabled with --enable-feature=promql-experimental-functions"
    if isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
        fill = node.modifier.fill_values
        if fill is not None and (fill.lhs is not None or fill.rhs is not None):
            return "binop fill modifiers are experimental and not enabled"
    if isinstance(node, promql_parser.VectorSelector) and node.matchers.or_matchers:
        return "'or' between label matchers is not PromQL (a GreptimeDB extension)"
    return None


def promql_problem(expr: str) -> str | None:
    """Why Prometheus 3.13 (no experimental features) would refuse `expr`, or None."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as exc:
        return f"does not parse as PromQL: {exc}"
    except BaseException as exc:  # noqa: BLE001 - the Rust parser panics (pyo3 PanicException) on some overflows
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return f"does not parse as PromQL: {exc}"
    for node in _nodes(tree):
        problem = _feature_problem(node)
        if problem:
            return problem
    return None


_ONE_SERIES_AGGREGATIONS = frozenset({"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "quantile"})


def _one_series(node) -> bool:
    if isinstance(node, (promql_parser.NumberLiteral, promql_parser.StringLiteral)):
        return True
    if isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr)):
        return _one_series(node.expr)
    if isinstance(node, promql_parser.AggregateExpr):
        grouping = node.modifier
        ungrouped = grouping is None or (str(grouping.type).endswith("By") and not grouping.labels)
        return str(node.op) in _ONE_SERIES_AGGREGATIONS and ungrouped
    if isinstance(node, promql_parser.Call):
        if node.func.name in ("scalar", "vector", "time", "pi", "absent", "absent_over_time"):
            return True
        vectors = [a for a in node.args if not isinstance(a, (promql_parser.NumberLiteral, promql_parser.StringLiteral))]
        return all(_one_series(a) for a in vectors)
    if isinstance(node, promql_parser.BinaryExpr):
        return _one_series(node.lhs) and _one_series(node.rhs)
    return False  # a selector, a subquery, a grouped aggregation: as many series as match


def one_series_problem(expr: str) -> str | None:
    """KEDA's prometheus scaler refuses a query result of more than one element
    (`prometheus query %s returned multiple elements`, on every poll): the query must aggregate to
    one series whatever the cluster holds. None if it does (or if it does not parse: reported apart)."""
    try:
        tree = promql_parser.parse(expr)
    except BaseException as exc:  # noqa: BLE001 - see promql_problem
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    if _one_series(tree):
        return None
    return (
        "may return more than one series, and KEDA's prometheus scaler fails on a result of several: aggregate it (sum, avg, max)"
    )
