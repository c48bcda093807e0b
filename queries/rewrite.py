"""Text of the bounded SQL: the layers every plan is made of.

1. *rows*: one row per joined input row, with the privacy unit (``__unit``),
   the group keys (``g0``...) and the clamped values (``v0``...);
2. *bounded*: at most ``max_groups`` groups per unit and ``max_rows`` rows per
   (unit, group), chosen by a keyed hash of the row with the secret ``$salt``
   (not by ``random()``: the same data and salt always give the same rows);
3. the aggregation: one row per group with the exact bounded measures.

The aggregation layers are built in ``queries.measures``; COUNT/SUM/AVG/VAR bound
contributions by per-unit aggregation there instead of row sampling.

Clamping rule: a summed value is first cast to DOUBLE; NaN and ±inf become NULL
(dropped by every aggregate); finite values are clamped to ``[lower, upper]``
with ``LEAST``/``GREATEST``; integer aggregates cast the clamped value to BIGINT
(the planner keeps integer bounds within 2^53, so the cast cannot overflow).
A column of an integer type is clamped without the cast to DOUBLE (it holds no
NaN/inf), with ``CASE WHEN x < lo THEN lo WHEN x > hi THEN hi ELSE x END``. A NULL
stays NULL: DuckDB's ``GREATEST`` ignores NULL arguments, so ``GREATEST(NULL, lo)``
would be ``lo``; the CASE form falls through to ``x`` (NULL), and the DOUBLE form is
guarded by ``isfinite``, which is NULL for NULL.
"""

from __future__ import annotations

import math
from typing import Any

from sqlglot import exp

from queries.bounds import MAX_EXACT, Interval


def render(node: exp.Expr) -> str:
    return node.sql(dialect="duckdb", comments=False)


def number(value: float) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))


def literal(value: Any) -> str:
    """A domain value as a DuckDB literal."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return render(exp.convert(value))


def clamp(value_sql: str, bounds: Interval, *, integer_column: bool = False) -> str:
    """The clamped value, NULL for NULL/NaN/±inf. An integer-typed column cannot
    hold NaN or ±inf, so it is clamped as it is (no cast to DOUBLE), by comparisons
    that let NULL through (LEAST/GREATEST would turn it into a bound)."""
    if integer_column and bounds.integer and max(abs(bounds.lo), abs(bounds.hi)) <= MAX_EXACT:
        lo, hi = number(bounds.lo), number(bounds.hi)
        return (f"CAST(CASE WHEN {value_sql} < {lo} THEN {lo} WHEN {value_sql} > {hi} THEN {hi} "
                f"ELSE {value_sql} END AS BIGINT)")
    as_double = f"TRY_CAST({value_sql} AS DOUBLE)"
    clamped = f"LEAST(GREATEST({as_double}, {number(bounds.lo)}), {number(bounds.hi)})"
    if bounds.integer:
        clamped = f"CAST(ROUND({clamped}) AS BIGINT)"
    return f"CASE WHEN isfinite({as_double}) THEN {clamped} END"


def rows_layer(unit_sql: str | None, columns: list[tuple[str, str]], from_sql: str,
               where_sql: str | None) -> str:
    """SELECT <unit> AS __unit, <expr> AS <name>, ... FROM ... WHERE ..."""
    items = ([f"{unit_sql} AS __unit"] if unit_sql else []) + [f"{sql} AS {name}" for name, sql in columns]
    conditions = []
    if unit_sql:
        conditions.append(f"{unit_sql} IS NOT NULL")
    if where_sql:
        conditions.append(f"({where_sql})")
    text = f"SELECT {', '.join(items) or '1 AS __one'} FROM {from_sql}"
    if conditions:
        text += " WHERE " + " AND ".join(conditions)
    return text


def bounded_layer(source: str, keys: list[str], values: list[str], *, max_groups: int | None,
                  max_rows: int, key_filter: str | None) -> str:
    """Rows of ``source`` (a CTE name) with per-unit contribution bounds applied."""
    filtered = f"SELECT * FROM {source}" + (f" WHERE {key_filter}" if key_filter else "")
    row_order = ", ".join(["__unit", *keys, *values, "$salt"])
    tie = "".join(f", {c}" for c in (*keys, *values))
    windows = [f"ROW_NUMBER() OVER (PARTITION BY {', '.join(['__unit', *keys])} "
               f"ORDER BY hash({row_order}){tie}) AS __row_rank"]
    conditions = [f"__row_rank <= {int(max_rows)}"]
    if keys and max_groups is not None:
        group_tie = "".join(f", {k}" for k in keys)
        windows.append(f"DENSE_RANK() OVER (PARTITION BY __unit ORDER BY hash({', '.join(['__unit', *keys, '$salt'])})"
                       f"{group_tie}) AS __group_rank")
        conditions.append(f"__group_rank <= {int(max_groups)}")
    return (f"SELECT * FROM (SELECT *, {', '.join(windows)} FROM ({filtered}) AS __f) AS __w "
            f"WHERE {' AND '.join(conditions)}")


def domain_filter(keys: list[tuple[str, tuple[Any, ...] | None, bool]]) -> str | None:
    """Keys inside their public domains: ``(name, domain, typed)`` per key. A test
    that is not a typed comparison (``queries.total``) is under TRY, so a key whose
    type does not fit the domain's literals is dropped, not an error; a typed one
    stays plain so that DuckDB can push it down to the scan."""
    parts = []
    for name, domain, typed in keys:
        if domain is not None:
            test = f"{name} IN ({', '.join(literal(v) for v in domain)})"
            parts.append(test if typed else f"TRY({test})")
    return " AND ".join(parts) if parts else None


def candidate_grid(bounds: Interval, count: int = 1024) -> tuple[float, int, tuple[float, ...]]:
    """(step, base, candidates) for quantiles over [lower, upper]: every integer
    when an integer range has at most ``count`` values, else the multiples
    ``(base + i)·step`` inside the range of a power-of-two ``step`` giving at most
    ``count`` of them (an integer step for integer values). Values divide by a
    power of two exactly, so the SQL places each value on the grid exactly.
    ``step = 0`` marks a single candidate (``lower >= upper``)."""
    lo, hi = float(bounds.lo), float(bounds.hi)
    if hi <= lo:
        return 0.0, 0, (lo,)
    if bounds.integer and hi - lo < count:
        return 1.0, int(lo), tuple(float(v) for v in range(int(lo), int(hi) + 1))
    step = 2.0 ** math.ceil(math.log2((hi - lo) / (count - 1)))
    if bounds.integer:
        step = max(step, 2.0)
    base, top = math.ceil(lo / step), math.floor(hi / step)
    return step, base, tuple((base + i) * step for i in range(top - base + 1))
