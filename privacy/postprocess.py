"""Output expressions, HAVING, ORDER BY and LIMIT over the *noisy* table.

Only noisy values reach it, so this is post-processing and costs no budget. The
SQL is built from the operator's checked query, so it runs under the same DuckDB
recipe as the worker (``queries.hardened_duckdb``): an in-memory database with no
external access, no extension loading, no local file system, memory, thread and
time limits and its configuration locked; one SELECT statement per call, on a
fresh cursor that alone sees the noisy table. Each thread opens its own database
once and keeps it: opening one costs about 20 ms, a cursor about 10 µs, and no
statement that may run can change the database (not a SELECT, so nothing is
created; the configuration is locked), so a thread's later calls cannot see
anything of its earlier ones, and no DuckDB object is shared between threads.

HAVING and ORDER BY may name outputs, group keys or aggregates (a0, ...).

Intervals of outputs: a key has none; an output that is exactly one aggregate
carries that aggregate's interval; an expression over up to four aggregates
gets the range of the expression over the corners of their intervals (exact
for expressions monotone in each aggregate, such as sums, differences, ratios
of positive values and scalings; the joint level is then at least 1 - k·alpha).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from queries.errors import PrivacyError
from queries.hardened_duckdb import EngineLimits, StatementRefused, open_hardened, select_rows
from queries.model import BoundedPlan

MAX_CORNER_AGGREGATES = 4
LIMITS = EngineLimits(memory_mb=256, threads=1, timeout_s=30.0)
_local = threading.local()


def database() -> duckdb.DuckDBPyConnection:
    """This thread's hardened in-memory database (opened on first use)."""
    db = getattr(_local, "db", None)
    if db is None:
        db = _local.db = open_hardened(None, LIMITS)
    return db


@dataclass(frozen=True)
class FinalTable:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    intervals: tuple[tuple[tuple[float, float] | None, ...], ...]
    removed: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def final_table(plan: BoundedPlan, noisy: dict[str, list], intervals: dict[str, list]) -> FinalTable:
    """``noisy``: column name (key names and aggregate names) -> values per group;
    ``intervals``: aggregate name -> (lo, hi) per group."""
    n = len(next(iter(noisy.values()))) if noisy else 0
    outputs = plan.outputs
    plain = [_plain_column(o.expr) for o in outputs]
    if not (plan.having or plan.order_by or plan.limit is not None) and all(c in noisy for c in plain):
        # every output is a key or an aggregate as released, in group order: nothing to compute
        rows = [tuple(noisy[c][i] for c in plain) for i in range(n)]
        cells = [tuple(None if o.is_key or not o.aggregates else
                       (float(intervals[c][i][0]), float(intervals[c][i][1])) if c in intervals else None
                       for o, c in zip(outputs, plain)) for i in range(n)]
        return FinalTable(tuple(o.name for o in outputs), tuple(rows), tuple(cells), 0)
    table = pa.table({"__row": list(range(n)), **noisy})
    select = ", ".join(f"{o.expr} AS {_quote(o.name)}" for o in outputs)
    # HAVING / ORDER BY may name outputs, keys or aggregates (a0, ...): keep the noisy
    # columns whose names no output takes visible to them
    names = {o.name for o in outputs}
    hidden = "".join(f", {_quote(c)}" for c in noisy if c not in names)
    shown = ", ".join(_quote(o.name) for o in outputs)
    sql = f"SELECT __row, {shown} FROM (SELECT __row, {select}{hidden} FROM noisy) AS t"
    if plan.having:
        sql += f" WHERE {plan.having}"
    sql += f" ORDER BY {plan.order_by}, __row" if plan.order_by else " ORDER BY __row"
    if plan.limit is not None:
        sql += f" LIMIT {int(plan.limit)}"
    db = database()
    try:
        result = select_rows(db, sql, tables={"noisy": table})
        corner_ranges = _corner_ranges(db, plan, noisy, intervals, n)
    except (duckdb.Error, StatementRefused) as exc:
        raise PrivacyError("post-processing of the noisy result failed", code="postprocess_failed") from exc

    rows, cells = [], []
    for record in result:
        row_id, values = record[0], record[1:]
        rows.append(tuple(values))
        cell: list[tuple[float, float] | None] = []
        for o in outputs:
            if o.is_key or not o.aggregates:
                cell.append(None)
            elif o.expr.strip() in intervals:
                lo, hi = intervals[o.expr.strip()][row_id]
                cell.append((float(lo), float(hi)))
            else:
                cell.append(corner_ranges.get(o.name, {}).get(row_id))
        cells.append(tuple(cell))
    return FinalTable(tuple(o.name for o in outputs), tuple(rows), tuple(cells), n - len(rows))


def _plain_column(expr: str) -> str:
    """The column an output expression names when it is only a column (``a0``,
    ``"city"``), else the expression itself."""
    text = expr.strip()
    if len(text) > 1 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
        return text[1:-1]
    return text


def _corner_ranges(db: duckdb.DuckDBPyConnection, plan: BoundedPlan, noisy: dict[str, list],
                   intervals: dict[str, list], n: int) -> dict[str, dict[int, tuple[float, float]]]:
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for o in plan.outputs:
        used = [a for a in o.aggregates if a in intervals]
        if o.is_key or not used or o.expr.strip() in intervals or len(used) > MAX_CORNER_AGGREGATES:
            continue
        columns: dict[str, list] = {"__row": []}
        for name in noisy:
            columns[name] = []
        for row in range(n):
            for corner in itertools.product((0, 1), repeat=len(used)):
                columns["__row"].append(row)
                for name in noisy:
                    columns[name].append(noisy[name][row])
                for a, side in zip(used, corner):
                    columns[a][-1] = float(intervals[a][row][side])
        ranges: dict[int, tuple[float, float]] = {}
        for row, lo, hi in select_rows(
                db, f"SELECT __row, min(v), max(v) FROM (SELECT __row, TRY(CAST(({o.expr}) AS DOUBLE)) AS v "
                    f"FROM corners) GROUP BY __row", tables={"corners": pa.table(columns)}):
            if lo is not None:
                ranges[row] = (float(lo), float(hi))
        out[o.name] = ranges
    return out
