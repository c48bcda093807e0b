"""Automatic disclosure checks on a product's noisy tables (ACRO-style
pass / warn / fail), and the small-count suppression applied at release.

Every check looks at released (noisy) values and the plan only, never at data:

* ``small_counts`` — noisy counts under ``small_count_threshold`` (warn); they
  are suppressed as post-processing in the released files and the count of
  suppressed cells is recorded in the manifest.
* ``wide_intervals`` — cells whose confidence interval is wider than the
  absolute value itself (warn: the number says little).
* ``partition_selection`` — the groups were chosen by private partition selection, so rare
  groups are missing (warn; how many is never known or shown).
* ``empty_table`` — a table with no row left to release (fail).
* ``differencing`` — a table close to another table in the same product or to
  an already released one on the same dataset: the same fingerprint; the same
  tables and aggregates with WHERE clauses differing by one condition; or the
  same aggregates over overlapping groups (warn, with the combined ε).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from collections.abc import Iterable

import sqlglot
from sqlglot import exp

from products.model import CheckResult


@dataclass(frozen=True)
class RunTable:
    """A query run's noisy result as a product table."""

    run_id: str
    sql: str
    fingerprint: str
    plan: dict[str, Any]
    result: dict[str, Any]
    epsilon: float
    delta: float
    product_id: int | None = None      # for released tables of other products

    @property
    def columns(self) -> list[str]:
        return list(self.result.get("columns") or [])

    @property
    def rows(self) -> list[list[Any]]:
        return [list(r) for r in self.result.get("rows") or []]

    @property
    def intervals(self) -> list[list[Any]]:
        return [list(r) for r in self.result.get("intervals") or []]

    @property
    def key_names(self) -> list[str]:
        return [k["name"] for k in self.plan.get("group_keys", [])]


@dataclass(frozen=True)
class QueryShape:
    """What the differencing check compares: tables, aggregates, group keys and
    the WHERE conjuncts, each as normalised SQL text."""

    tables: frozenset[str]
    aggregates: frozenset[str]
    group_by: tuple[str, ...]
    conditions: frozenset[str]
    count_columns: tuple[int, ...]      # positions of COUNT outputs in the select list


def query_shape(table: RunTable) -> QueryShape:
    tables = frozenset(table.plan.get("tables", []))
    aggregates = frozenset(a.get("sql", "").upper() for a in table.plan.get("aggregates", []))
    parsed = _parsed_shape(table.sql)
    if parsed is None:
        return QueryShape(tables, aggregates, tuple(table.key_names), frozenset(), ())
    group_by, conditions, counts = parsed
    return QueryShape(tables, aggregates, group_by if group_by is not None else tuple(table.key_names),
                      conditions, counts)


@lru_cache(maxsize=1024)
def _parsed_shape(sql: str) -> tuple[tuple[str, ...] | None, frozenset[str], tuple[int, ...]] | None:
    """GROUP BY items, WHERE conjuncts and COUNT positions of the operator's SQL."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return None
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return None
    conditions: set[str] = set()
    where = select.args.get("where")
    if where is not None:
        parts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
        conditions = {c.sql(dialect="duckdb", normalize=True) for c in parts}
    counts = tuple(i for i, e in enumerate(select.expressions)
                   if isinstance(e.this if isinstance(e, exp.Alias) else e, exp.Count))
    group = select.args.get("group")
    group_by = tuple(g.sql(dialect="duckdb", normalize=True) for g in group.expressions) if group is not None else None
    return group_by, frozenset(conditions), counts


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(float(v)) else None


def small_count_cells(table: RunTable, threshold: int) -> list[tuple[int, int]]:
    """(row, column) of the noisy counts under the threshold."""
    cols = query_shape(table).count_columns
    cells = []
    for r, row in enumerate(table.rows):
        for c in cols:
            if c < len(row):
                v = _number(row[c])
                if v is not None and v < threshold:
                    cells.append((r, c))
    return cells


def suppressed_table(table: RunTable, threshold: int) -> tuple[list[list[Any]], list[list[Any]], int]:
    """Rows and intervals with small noisy counts blanked (value and interval
    None), and how many cells were suppressed. Pure post-processing."""
    rows, intervals = table.rows, table.intervals
    cells = small_count_cells(table, threshold)
    for r, c in cells:
        rows[r][c] = None
        if r < len(intervals) and c < len(intervals[r]):
            intervals[r][c] = None
    return rows, intervals, len(cells)


def _wide_cells(table: RunTable) -> list[tuple[int, int]]:
    """(row, column) of the cells whose interval is wider than their value."""
    cells = []
    for r, (row, ivs) in enumerate(zip(table.rows, table.intervals)):
        for c, (v, iv) in enumerate(zip(row, ivs)):
            x = _number(v)
            if x is None or not iv:
                continue
            if float(iv[1]) - float(iv[0]) > abs(x):
                cells.append((r, c))
    return cells


def _group_values(table: RunTable) -> set[tuple[Any, ...]]:
    idx = [table.columns.index(k) for k in table.key_names if k in table.columns]
    if not idx:
        return {()}
    return {tuple(row[i] for i in idx) for row in table.rows}


def closeness(a: RunTable, b: RunTable) -> str | None:
    """Why table ``a`` could be differenced against ``b``, or None."""
    if a.fingerprint == b.fingerprint:
        return "the same query"
    sa, sb = query_shape(a), query_shape(b)
    if sa.tables != sb.tables or not (sa.aggregates & sb.aggregates):
        return None
    if sa.group_by == sb.group_by and len(sa.conditions ^ sb.conditions) == 1:
        return "the same query but for one filter condition"
    if sa.group_by == sb.group_by and sa.conditions == sb.conditions and sa.group_by:
        shared = _group_values(a) & _group_values(b)
        if shared:
            return f"the same aggregates over {len(shared)} overlapping group(s)"
    return None


def run_checks(tables: list[RunTable], released: Iterable[RunTable], threshold: int) -> list[CheckResult]:
    """Every check for every table of a product, in a stable order."""
    released = list(released)
    out: list[CheckResult] = []
    for t in tables:
        small = small_count_cells(t, threshold)
        out.append(CheckResult(
            "small_counts", "warn" if small else "pass",
            f"{len(small)} noisy count(s) under {threshold} will be suppressed in the release" if small
            else f"no noisy count under {threshold}", t.run_id,
            (("cells", len(small)), ("positions", [list(rc) for rc in small]), ("threshold", threshold))))
        wide = _wide_cells(t)
        out.append(CheckResult(
            "wide_intervals", "warn" if wide else "pass",
            f"{len(wide)} cell(s) have a confidence interval wider than their value" if wide
            else "every interval is narrower than its value", t.run_id,
            (("cells", len(wide)), ("positions", [list(rc) for rc in wide]))))
        # how many groups selection dropped is an exact fact about the data: the check
        # says only whether the keys were chosen by the measurement (a plan fact)
        selected = bool((t.plan or {}).get("partition_selection"))
        out.append(CheckResult(
            "partition_selection", "warn" if selected else "pass",
            "the groups were chosen by partition selection: rare groups are missing from the table" if selected
            else "every group comes from a public key domain", t.run_id, (("selected", selected),)))
        remaining = sum(1 for row in suppressed_table(t, threshold)[0]
                        if any(v is not None for i, v in enumerate(row) if t.columns[i] not in t.key_names))
        if not t.rows or remaining == 0:
            out.append(CheckResult("empty_table", "fail", "no row of this table would be released", t.run_id))
        others = [(o, "this product") for o in tables if o.run_id != t.run_id] + \
                 [(o, f"released product {o.product_id}") for o in released]
        hits = [(o, where, why) for o, where in others if (why := closeness(t, o))]
        if hits:
            combined = t.epsilon + sum(o.epsilon for o, _, _ in hits)
            first = hits[0]
            out.append(CheckResult(
                "differencing", "warn",
                f"close to {len(hits)} other table(s) ({first[2]} as run {first[0].run_id[:8]} in {first[1]}): "
                f"differencing them isolates few units; combined ε on these rows {combined:.4g}",
                t.run_id, (("combined_epsilon", combined),
                           ("matches", [{"run_id": o.run_id, "where": w, "why": y} for o, w, y in hits]))))
        else:
            out.append(CheckResult("differencing", "pass", "no close query released or in this product", t.run_id))
    return out
