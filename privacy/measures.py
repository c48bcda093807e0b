"""From the exact bounded aggregates (Arrow) to the integer measures OpenDP noises.

Groups: with no keys, one group; with every key public, every combination of
the declared domains (empty groups get exact zeros before noise, and rows with a
key outside its public domain are dropped); otherwise the groups present in the
table, which then pass partition selection. Groups are listed in the order of
their key values (``key_order``), never in the order the engine returned them:
storage order is a fact about the data.

NULL, NaN and ±inf measures never reach a mechanism: they are taken as 0. How
many there were is an exact fact about the data, so nothing reports it (the
bounded SQL is total and clamps to finite values, so none is expected).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from privacy.composition import ExactAggregates
from privacy.sensitivity import centre, fixed_point_step, quantile_fraction
from queries.errors import PrivacyError
from queries.model import Aggregate, BoundedPlan
from queries.vocabulary import COUNT_KINDS, VARIANCE_KINDS, AggregateKind


@dataclass(frozen=True)
class GroupTable:
    keys: tuple[tuple[Any, ...], ...]     # one tuple of key values per group
    exact: ExactAggregates


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    if hasattr(value, "as_integer_ratio") and not isinstance(value, float):
        n, d = value.as_integer_ratio()   # Decimal (HUGEINT sums arrive as decimal128)
        if d == 1:
            return n
    return f


def key_order(key: tuple[Any, ...]) -> tuple[tuple[int, str, Any], ...]:
    """A total order on group keys of any column types: NULL first, then by type
    name, then by value (so mixed or non-comparable keys still sort)."""
    out: list[tuple[int, str, Any]] = []
    for v in key:
        if v is None:
            out.append((0, "", 0))
        elif isinstance(v, float) and math.isnan(v):
            out.append((1, "nan", 0))
        elif isinstance(v, (bool, int, float)):
            out.append((2, "number", float(v) if isinstance(v, bool) else v))
        else:
            try:
                hash(v)
                out.append((3, type(v).__name__, v))
            except TypeError:
                out.append((4, type(v).__name__, repr(v)))
    return tuple(out)


def _cell(row: dict[str, Any] | None, column: str) -> float | int:
    """A measure cell; a missing, NULL, NaN or infinite one is 0."""
    value = None if row is None else _number(row.get(column))
    return 0 if value is None else value


def _cell_list(row: dict[str, Any] | None, column: str, size: int) -> list[int]:
    """A list-valued measure cell (quantile scores) of ``size`` non-negative integers."""
    values = None if row is None else row.get(column)
    if values is None:
        return [0] * size
    out = [max(int(round(_number(v) or 0)), 0) for v in list(values)[:size]]
    return out + [0] * (size - len(out))


# Exact integer measures handed to OpenDP are kept within ±2^62, so that they and the
# noise added to them fit OpenDP's 64-bit integers. Clamping is 1-Lipschitz: it never
# raises a measure's sensitivity, and it only bites on totals beyond 4.6e18.
MEASURE_LIMIT = 2 ** 62


def within_limit(value: int) -> int:
    return max(-MEASURE_LIMIT, min(MEASURE_LIMIT, value))


def _fixed(value: float | int, step: float, integer: bool) -> int:
    if integer:
        return int(value) if isinstance(value, int) else int(round(value))
    return int(round(value / step))


def aggregate_measures(agg: Aggregate, row: dict[str, Any] | None) -> dict[str, Any]:
    """The integer measures of one aggregate in one group, keyed by role."""
    cols = agg.columns
    kind = agg.kind
    if kind in COUNT_KINDS:
        return {"count": max(int(round(_cell(row, cols["count"]))), 0)}
    if kind == AggregateKind.SUM:
        c = max(abs(float(agg.lower)), abs(float(agg.upper)))
        return {"sum": _fixed(_cell(row, cols["sum"]), fixed_point_step(c), agg.integer)}
    if kind == AggregateKind.QUANTILE:
        n = len(agg.candidates)
        lt, gt = _cell_list(row, cols["lt"], n), _cell_list(row, cols["gt"], n)
        num, den = quantile_fraction(agg.quantile if agg.quantile is not None else 0.5)
        return {"score": [abs((den - num) * a - num * b) for a, b in zip(lt, gt)]}
    mid, _, step = centre(agg)
    count = max(int(round(_cell(row, cols["count"]))), 0)
    total = _cell(row, cols["sum"])
    out = {"count": count}
    if agg.integer:
        mid_i = int(mid)
        out["sum"] = int(round(total)) - mid_i * count
    else:
        out["sum"] = int(round((total - mid * count) / step))
    if kind in VARIANCE_KINDS:
        squares = _cell(row, cols["sumsq"])
        if agg.integer:
            mid_i = int(mid)
            out["sumsq"] = max(int(round(squares)) - 2 * mid_i * int(round(total)) + mid_i * mid_i * count, 0)
        else:
            _, c, _ = centre(agg)
            centred = max(squares - 2 * mid * total + mid * mid * count, 0.0)
            out["sumsq"] = int(round(centred / fixed_point_step(c * c)))
    elif kind != AggregateKind.AVG:
        raise PrivacyError(f"aggregate kind '{kind}' is not supported", code="unsupported_aggregate")
    return out


def _within(measures: dict[str, Any]) -> dict[str, Any]:
    return {role: [within_limit(v) for v in m] if isinstance(m, list) else within_limit(m)
            for role, m in measures.items()}


def group_table(plan: BoundedPlan, exact: pa.Table, selecting: bool) -> GroupTable:
    key_columns = [k.column for k in plan.group_keys]
    missing = [c for c in key_columns if c not in exact.column_names]
    if missing:
        raise PrivacyError("the exact table lacks group-key columns", code="bad_exact_table")
    rows = exact.to_pylist()
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        by_key[tuple(row[c] for c in key_columns)] = row

    if not plan.group_keys:
        keys: list[tuple[Any, ...]] = [()]
        if len(rows) > 1:
            raise PrivacyError("an ungrouped query must return one row", code="bad_exact_table")
        lookup: Mapping[tuple[Any, ...], dict[str, Any] | None] = {(): rows[0] if rows else None}
    elif not selecting and all(k.domain is not None for k in plan.group_keys):
        keys = [tuple(combo) for combo in itertools.product(*(k.domain or () for k in plan.group_keys))]
        lookup = by_key
    else:
        keys = sorted(by_key, key=key_order)
        lookup = by_key

    exact_aggs = ExactAggregates()
    for agg in plan.aggregates:
        per_group = [_within(aggregate_measures(agg, lookup.get(key))) for key in keys]
        for role in aggregate_measures(agg, None):
            if role == "score":
                exact_aggs.scores[agg.name] = [g["score"] for g in per_group]
            else:
                exact_aggs.vectors[(agg.name, role)] = [g[role] for g in per_group]
    if selecting:
        if not plan.units_column or plan.units_column not in exact.column_names:
            raise PrivacyError("partition selection needs the units column", code="bad_exact_table")
        exact_aggs.units = {str(i): max(int(round(_cell(lookup.get(key), plan.units_column))), 0)
                            for i, key in enumerate(keys)}
    return GroupTable(tuple(keys), exact_aggs)
