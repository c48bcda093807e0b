"""Output expressions, HAVING, ORDER BY and LIMIT over the *noisy* table.

An in-memory DuckDB (no external access, no extension loading) only ever sees
noisy values, so this is post-processing and costs no budget. The database is
opened once per process and each call works in its own cursor.

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
from queries.model import BoundedPlan

_CONFIG = {"enable_external_access": False, "autoinstall_known_extensions": False,
           "autoload_known_extensions": False}
_lock = threading.Lock()
_db: duckdb.DuckDBPyConnection | None = None
MAX_CORNER_AGGREGATES = 4


def _cursor() -> duckdb.DuckDBPyConnection:
    global _db
    with _lock:
        if _db is None:
            _db = duckdb.connect(config=_CONFIG)
        return _db.cursor()


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
    table = pa.table({"__row": list(range(n)), **noisy})
    outputs = plan.outputs
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
    cur = _cursor()
    try:
        cur.register("noisy", table)
        result = cur.execute(sql).fetchall()
        corner_ranges = _corner_ranges(cur, plan, noisy, intervals, n)
    except duckdb.Error as exc:
        raise PrivacyError("post-processing of the noisy result failed", code="postprocess_failed") from exc
    finally:
        cur.close()

    rows, cells = [], []
    for record in result:
        row_id, values = record[0], record[1:]
        rows.append(tuple(values))
        cell = []
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


def _corner_ranges(cur, plan, noisy, intervals, n) -> dict[str, dict[int, tuple[float, float]]]:
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
        cur.register("corners", pa.table(columns))
        ranges: dict[int, tuple[float, float]] = {}
        for row, lo, hi in cur.execute(
                f"SELECT __row, min(v), max(v) FROM (SELECT __row, TRY(CAST(({o.expr}) AS DOUBLE)) AS v "
                f"FROM corners) GROUP BY __row").fetchall():
            if lo is not None:
                ranges[row] = (float(lo), float(hi))
        cur.unregister("corners")
        out[o.name] = ranges
    return out
