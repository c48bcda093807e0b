"""What a plan may need of a worker, from public facts alone.

A run that exhausts its worker fails after its budget was reserved, and is
charged: it touched data. A run whose need can be known to exceed the limits
is refused instead, before anything is reserved (``resources_exceeded``).
Invariant 1a decides what the need may depend on: the SQL, the plan, the
policy and public tables, never the data. The exact row counts of a version
are data (one more person is one more row), so the size of a private table is
the owner's declared ``rows_bound`` (``queries.policy``; ingestion refuses a
version that holds more), and a public table's is its row count
(``PublicTableStats``). When a private table of the plan declares no bound,
the need is unknown (``ResourceNeed.known`` is False) and nothing is refused
on size grounds.

The model, over the bounded SQL's sqlglot tree (DuckDB dialect):

* Every relation carries a bound on its rows and, per column, a width in
  bytes: 8 for numbers, dates, timestamps and booleans, 16 for HUGEINT and for
  SUM/AVG states, :data:`STRING_BYTES` for strings (DuckDB's 16-byte string
  header plus an assumed 16 bytes of text: text lengths are data, so a table of
  long strings can still exhaust a worker; that run fails and is charged, as
  before). Types come from the policy's columns, which ingestion fills in.
* A scan yields its table's bound. A join of two private relations (on the
  unit) yields at most the rows of one side times the rows one unit may have
  in the other: ``rows_per_unit`` if declared, else the stored cap of
  ``stored_rows_per_bound × max_rows_per_unit`` (``sandbox.execution.storage``
  keeps no more). A join with a public relation multiplies by the most public
  rows one value of the join column matches, else by its row count. ``WHERE``
  and ``HAVING`` keep every row (the bound cannot know what a filter drops).
* Operators that hold state, each ``rows × (width + overhead)``:
  a **hash join** builds the side with fewer rows (DuckDB's estimate of a
  table scan is its exact size, which is at most the bound); a **hash
  aggregate** holds its groups, at most the input rows and, when every key is
  a group key of the plan with a public domain, at most the product of the
  domains' sizes (+1 each for NULL); a **window** (``ROW_NUMBER``/``DENSE_RANK``
  over the unit, or a running sum) and an **ORDER BY** hold every input row
  with all its columns; a CTE that is read twice and not ``NOT MATERIALIZED``
  is held once; the **result** is held once. The operators' needs are added
  (a pipeline may free one before the next starts; the sum does not count on it)
  plus :data:`BASE_MIB` for the engine itself.

Calibration (DuckDB 2.0.1, Python wheel, 1 and 2 threads, spilling off with
``temp_directory = ''``; a file-backed table of N rows ``u BIGINT, g VARCHAR,
v DOUBLE, id BIGINT``, ``g`` a mix of inline and 22-byte strings; the smallest
``memory_limit`` at which each query still ran, by bisection to 2 %):

=========================================  =========  =========  ===============
operator (query)                           N = 1M     N = 4M     slope, bytes/row
=========================================  =========  =========  ===============
window: ROW_NUMBER() OVER (PARTITION BY u      74 MiB    284 MiB   73 (payload 32)
ORDER BY hash(u, g), g) over u, g, v
hash aggregate: GROUP BY u, g with             80 MiB    316 MiB   82 (payload 40)
COUNT(*), SUM(v), N/1 groups
hash join: build side id, u, g, v, N rows      24 MiB    126 MiB   36 (payload 40)
scan + SUM                                      2 MiB      2 MiB    0
window, 2 threads                                   —    300 MiB   —
=========================================  =========  =========  ===============

So DuckDB holds about 40–42 bytes per row beyond the payload in windows and
aggregates and less in joins: :data:`ROW_OVERHEAD` is 48 bytes for every
stateful operator. Over the health demo (``sandbox.demo.data``) at 1M people
and 2,149,369 visits, each bound set to the exact count, the model's figure
against the smallest ``memory_limit`` at which the bounded SQL ran (1 thread,
spilling off):

==============================  ========  ========
query (``bench/overhead.py``)  measured  estimate
==============================  ========  ========
count, clamped sum, avg by sex     2 MiB    17 MiB
count by city                     6 MiB    17 MiB
age histogram                     4 MiB    17 MiB
count by city, diagnosis          6 MiB   238 MiB
join sum per clinic              68 MiB   262 MiB
median income                     4 MiB   261 MiB
visits GROUP BY clinic           76 MiB   787 MiB
visits JOIN people by city      118 MiB   592 MiB
==============================  ========  ========

Always above, 3 to 65 times: a key without a public domain is bounded by its
rows (diagnosis has 10 values, the model allows a million), and the sum counts
operators that DuckDB frees before the next one fills.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from queries.errors import SandboxError
from queries.model import BoundedPlan, PublicTableStats
from queries.policy import DatasetPolicy, TablePolicy
from queries.vocabulary import ColumnType

MIB = 1 << 20
ROW_OVERHEAD = 48           # bytes per row a stateful operator holds beyond the payload (measured 36–42)
STRING_BYTES = 32           # a string: 16-byte header + an assumed 16 bytes of text
WIDE_BYTES = 16             # HUGEINT, SUM/AVG states
NARROW_BYTES = 8            # every other value
BASE_MIB = 16               # the engine's own memory, whatever the query
STORED_ROWS_PER_BOUND = 100  # sandbox.execution.storage keeps at most this many × max_rows_per_unit rows per unit

_TYPE_BYTES = {ColumnType.STRING: STRING_BYTES}
_WIDE_CASTS = {exp.DataType.Type.INT128, exp.DataType.Type.UINT128, exp.DataType.Type.DECIMAL}
_STRING_CASTS = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR}


@dataclass(frozen=True)
class OperatorNeed:
    """One operator that holds state: what it is, the rows and bytes per row it holds."""

    kind: str                  # "hash join", "hash aggregate", "window", "sort", "materialized CTE", "result"
    rows: int
    row_bytes: int

    @property
    def mib(self) -> float:
        return self.rows * self.row_bytes / MIB


@dataclass(frozen=True)
class ResourceNeed:
    """A plan's need, from public facts: rows read per table and memory in MiB.
    ``known`` is False when some private table declares no ``rows_bound``
    (listed in ``unbounded``): then the figures mean nothing and nothing is refused."""

    known: bool
    rows_read: Mapping[str, int] = field(default_factory=dict)
    memory_mib: int = 0
    operators: tuple[OperatorNeed, ...] = ()
    unbounded: tuple[str, ...] = ()

    @property
    def total_rows_read(self) -> int:
        return sum(self.rows_read.values())


@dataclass(frozen=True)
class _Rel:
    """A relation of the bounded SQL: its row bound, column widths and per-unit row cap
    (None: holds no private row)."""

    rows: int
    columns: Mapping[str, int]
    unit_cap: int | None = None

    @property
    def width(self) -> int:
        return max(NARROW_BYTES, sum(self.columns.values()))


class _Unknown(Exception):
    """A size the public facts do not bound."""


class _Estimator:
    def __init__(self, plan: BoundedPlan, policy: DatasetPolicy, public_stats: Mapping[str, PublicTableStats],
                 stored_rows_per_bound: int) -> None:
        self.policy, self.stats, self.per_bound = policy, public_stats, stored_rows_per_bound
        self.domains = {k.column: len(k.domain) + 1 for k in plan.group_keys if k.domain is not None}
        self.operators: list[OperatorNeed] = []
        self.unbounded: set[str] = set()

    def hold(self, kind: str, rows: int, width: int, overhead: int = ROW_OVERHEAD) -> None:
        self.operators.append(OperatorNeed(kind, rows, width + overhead))

    # ------------------------------------------------------------ tables

    def table_rows(self, table: TablePolicy) -> int:
        if table.public:
            stats = self.stats.get(table.name)
            if stats is not None:
                return int(stats.rows) if table.rows_bound is None else min(int(stats.rows), table.rows_bound)
        if table.rows_bound is None:
            self.unbounded.add(table.name)
            raise _Unknown(table.name)
        return table.rows_bound

    def base(self, table: TablePolicy) -> _Rel:
        cols = {c.name: _TYPE_BYTES.get(c.type, NARROW_BYTES) if c.type is not None else STRING_BYTES
                for c in table.columns}
        if table.public:
            cap = None
        elif table.rows_per_unit is not None:
            cap = int(table.rows_per_unit)
        else:
            cap = self.per_bound * max(1, int(table.max_rows_per_unit))
        return _Rel(self.table_rows(table), cols, cap)

    # ------------------------------------------------------------ relations

    def query(self, node: exp.Expr, ctes: Mapping[str, _Rel]) -> _Rel:
        if isinstance(node, exp.Subquery):
            return self.query(node.this, ctes)
        if isinstance(node, exp.Union):
            left, right = self.query(node.this, ctes), self.query(node.expression, ctes)
            cols = {name: max(w, *right.columns.values(), NARROW_BYTES) for name, w in left.columns.items()}
            caps = [c for c in (left.unit_cap, right.unit_cap) if c is not None]
            rel = _Rel(left.rows + right.rows, cols, sum(caps) if caps else None)
            if node.args.get("distinct"):
                self.hold("hash aggregate", rel.rows, rel.width)
            return rel
        if isinstance(node, exp.Select):
            return self.select(node, ctes)
        raise _Unknown(type(node).__name__)

    def relation(self, node: exp.Expr, ctes: Mapping[str, _Rel]) -> _Rel:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            if not node.db and node.name in ctes:
                return ctes[node.name]
            table = self.policy.table(node.name)
            if table is None:
                raise _Unknown(node.name)
            return self.base(table)
        if isinstance(node, exp.Subquery):
            return self.query(node.this, ctes)
        raise _Unknown(type(node).__name__)

    def select(self, select: exp.Select, outer: Mapping[str, _Rel]) -> _Rel:
        ctes = dict(outer)
        with_ = select.args.get("with_")
        if with_ is not None:
            for cte in with_.expressions:
                rel = self.query(cte.this, ctes)
                ctes[cte.alias] = rel
                reads = sum(1 for t in select.find_all(exp.Table) if not t.db and t.name == cte.alias)
                if reads > 1 and cte.args.get("materialized") is not False:
                    self.hold("materialized CTE", rel.rows, rel.width, overhead=NARROW_BYTES)
        by_alias: dict[str, _Rel] = {}
        from_ = select.args.get("from_")
        if from_ is None:
            rows = 1
            for node in select.expressions:
                for unnest in node.find_all(exp.Explode, exp.Unnest):
                    rows = max(rows, _unnest_rows(unnest))
            current = _Rel(rows, {}, None)
        else:
            current = self.read(select, from_.this, ctes)
            by_alias[from_.this.alias_or_name] = current
            for join in select.args.get("joins") or ():
                right = self.read(select, join.this, ctes)
                by_alias[join.this.alias_or_name] = right
                current = self.join(current, right, join)
        columns = current.columns
        group = select.args.get("group")
        aggregates = [a for e in select.expressions for a in e.find_all(exp.AggFunc)
                      if not isinstance(a.parent, exp.Window)]
        out_rows = current.rows
        if group is not None or aggregates:
            keys = list(group.expressions) if group is not None else []
            domain = self.groups(keys)
            groups = current.rows if domain is None else min(current.rows, domain)
            key_bytes = sum(self.width(k, by_alias, columns) for k in keys)
            self.hold("hash aggregate", groups, key_bytes + WIDE_BYTES * len(aggregates))
            for agg in aggregates:
                if isinstance(agg.this, exp.Distinct):
                    self.hold("hash aggregate", current.rows, self.width(agg.this, by_alias, columns))
            out_rows = groups
        elif select.args.get("distinct") is not None:    # SELECT DISTINCT: a GROUP BY of its outputs
            keys = [e.unalias() for e in select.expressions]
            domain = self.groups(keys)
            out_rows = current.rows if domain is None else min(current.rows, domain)
            self.hold("hash aggregate", out_rows, sum(self.width(k, by_alias, columns) for k in keys))
        windows = [w for w in select.find_all(exp.Window) if w.find_ancestor(exp.Select) is select]
        if windows:
            self.hold("window", current.rows, current.width + NARROW_BYTES * len(windows))
        out = self.outputs(select, by_alias, columns)
        if select.args.get("order") is not None:
            self.hold("sort", out_rows, sum(out.values()))
        return _Rel(out_rows, out, current.unit_cap)

    def read(self, select: exp.Select, node: exp.Expr, ctes: Mapping[str, _Rel]) -> _Rel:
        """A relation of ``select``'s FROM clause, with only the columns ``select`` names
        (DuckDB reads no other): qualified by its alias, or unqualified."""
        rel = self.relation(node, ctes)
        alias = node.alias_or_name
        if any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and isinstance(s.this, exp.Star))
               for s in select.expressions):
            return rel
        named = {c.name for c in select.find_all(exp.Column) if not c.table or c.table == alias}
        kept = {k: w for k, w in rel.columns.items() if k in named}
        return _Rel(rel.rows, kept, rel.unit_cap)

    def join(self, left: _Rel, right: _Rel, join: exp.Join) -> _Rel:
        if right.unit_cap is None:             # with a public (or constant) relation
            rows = left.rows * max(1, self.matches(join, right))
        elif left.unit_cap is None:            # a public relation joined to a private one
            rows = right.rows * max(1, left.rows)
        else:                                  # private with private, on the unit
            rows = min(left.rows * right.unit_cap, right.rows * left.unit_cap)
        if join.side == "LEFT":
            rows = max(rows, left.rows)
        build = min((left, right), key=lambda r: (r.rows, -r.width))
        self.hold("hash join", build.rows, build.width)
        cap = None if left.unit_cap is None and right.unit_cap is None else \
            (left.unit_cap or 1) * (right.unit_cap or 1)
        return _Rel(rows, {**left.columns, **right.columns}, cap)

    def matches(self, join: exp.Join, public: _Rel) -> int:
        """The most rows of the public side one row matches: its ``max_rows_per_value``
        of a column in an equality of the ON clause, else all its rows."""
        table, on = join.this, join.args.get("on")
        if not isinstance(table, exp.Table) or not table.db or on is None:
            return public.rows
        stats = self.stats.get(table.name)
        counts = [int(stats.max_rows_per_value[side.name]) for eq in on.find_all(exp.EQ)
                  for side in (eq.this, eq.expression)
                  if stats is not None and isinstance(side, exp.Column) and side.table == table.alias_or_name
                  and side.name in stats.max_rows_per_value]
        if counts:
            return min(counts)
        return public.rows

    def groups(self, keys: list[exp.Expr]) -> int | None:
        """Groups a GROUP BY can make at most, from the plan's public domains (None: no bound)."""
        total = 1
        for key in keys:
            size = self.domains.get(key.name) if isinstance(key, exp.Column) else None
            if size is None:
                return None
            total *= size
        return total

    def width(self, node: exp.Expr, by_alias: Mapping[str, _Rel], columns: Mapping[str, int]) -> int:
        if isinstance(node, (exp.Alias, exp.Paren, exp.Distinct)):
            inner = node.expressions if isinstance(node, exp.Distinct) else [node.this]
            return sum(self.width(n, by_alias, columns) for n in inner)
        if isinstance(node, exp.Column):
            source = by_alias.get(node.table) if node.table else None
            cols = source.columns if source is not None else columns
            return cols.get(node.name, STRING_BYTES)
        if isinstance(node, exp.Cast):
            kind = node.to.this
            if kind in _STRING_CASTS or node.to.args.get("nested"):
                return STRING_BYTES
            return WIDE_BYTES if kind in _WIDE_CASTS else NARROW_BYTES
        if isinstance(node, (exp.Sum, exp.Avg)):
            return WIDE_BYTES
        if isinstance(node, (exp.Count, exp.Window, exp.Literal, exp.Predicate)):
            return NARROW_BYTES
        if isinstance(node, (exp.ArrayAgg, exp.Array, exp.List)):
            return STRING_BYTES
        inner = [self.width(c, by_alias, columns) for c in node.iter_expressions()
                 if isinstance(c, (exp.Column, exp.Cast, exp.Func, exp.Binary, exp.Case, exp.Paren))]
        return max([NARROW_BYTES, *inner])

    def outputs(self, select: exp.Select, by_alias: Mapping[str, _Rel], columns: Mapping[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in select.expressions:
            if isinstance(node, exp.Star):
                out.update(columns)
            elif isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
                source = by_alias.get(node.table)
                out.update(source.columns if source is not None else columns)
            else:
                out[node.alias_or_name] = self.width(node, by_alias, columns)
        return out


def _unnest_rows(node: exp.Expr) -> int:
    """Rows an UNNEST of a literal list or of ``range(n)`` makes (the plan's own constants)."""
    arg = node.this if not isinstance(node, exp.Unnest) else (node.expressions[0] if node.expressions else None)
    if isinstance(arg, exp.GenerateSeries):
        start, end = arg.args.get("start"), arg.args.get("end")
        if isinstance(end, exp.Literal) and (start is None or isinstance(start, exp.Literal)):
            return max(1, int(end.this) - (int(start.this) if start is not None else 0) + 1)
    if isinstance(arg, exp.Array):
        return max(1, len(arg.expressions))
    raise _Unknown("unnest")


_ZERO_LISTS = re.compile(r"\[0(?:, 0){15,}\]")


def estimate_need(plan: BoundedPlan, policy: DatasetPolicy,
                  public_stats: Mapping[str, PublicTableStats] | None = None, *,
                  stored_rows_per_bound: int = STORED_ROWS_PER_BOUND) -> ResourceNeed:
    """The rows ``plan`` reads and the memory its bounded SQL holds at most, from the
    policy's ``rows_bound``s and the public tables' statistics only (module docstring)."""
    stats = public_stats or {}
    est = _Estimator(plan, policy, stats, stored_rows_per_bound)
    # a quantile's default for an empty group is a literal list of one zero per
    # candidate: it holds no rows, and parsing and walking it cost more than the rest
    tree = sqlglot.parse_one(_ZERO_LISTS.sub("[0]", plan.bounded_sql), dialect="duckdb")
    rows_read: dict[str, int] = {}
    for node in tree.find_all(exp.Table):
        table = policy.table(node.name) if node.db else None
        if table is not None and table.name not in rows_read:
            try:
                rows_read[table.name] = est.table_rows(table)
            except _Unknown:
                pass
    if est.unbounded:
        return ResourceNeed(False, rows_read, unbounded=tuple(sorted(est.unbounded)))
    try:
        result = est.query(tree, {})
    except _Unknown:
        return ResourceNeed(False, rows_read, unbounded=tuple(sorted(est.unbounded)))
    est.hold("result", result.rows, result.width, overhead=NARROW_BYTES)
    total = BASE_MIB + sum(op.mib for op in est.operators)
    return ResourceNeed(True, rows_read, int(math.ceil(total)), tuple(est.operators))


def check_resources(need: ResourceNeed, *, memory_mb: int, spill_mb: int, max_rows_read: int | None = None) -> None:
    """Refuse (``resources_exceeded``, 422) a plan whose need passes the worker's
    memory plus its spill space (memory alone when ``spill_mb`` is 0), or whose rows
    read pass ``max_rows_read``. An unknown need passes. Every figure of the refusal
    is a function of the plan, the policy, public tables and settings."""
    if not need.known:
        return
    if max_rows_read is not None and need.total_rows_read > max_rows_read:
        raise SandboxError(
            f"the query may read {need.total_rows_read:,} rows (from the tables' declared sizes), more than the "
            f"{max_rows_read:,} allowed; filter on fewer tables, or ask the dataset's owner about its bounds",
            code="resources_exceeded", status=422, limit_name="rows_read", need_rows=need.total_rows_read,
            limit_rows=max_rows_read)
    limit = memory_mb + max(0, spill_mb)
    if need.memory_mib > limit:
        which = "memory" if spill_mb <= 0 else "memory_and_spill"
        words = f"{memory_mb:,} MiB of memory" + (f" and {spill_mb:,} MiB of disk" if spill_mb > 0 else "")
        biggest = max(need.operators, key=lambda op: op.mib, default=None)
        held = f" (most of it in a {biggest.kind} over up to {biggest.rows:,} rows)" if biggest is not None else ""
        raise SandboxError(
            f"the query may need {need.memory_mib:,} MiB{held}, more than the {words} a run may use; "
            "it was refused before anything was reserved. Filter the rows it reads, group by fewer keys or by "
            "keys with a public domain, or ask the dataset's owner for a tighter rows_bound",
            code="resources_exceeded", status=422, limit_name=which, need_mb=need.memory_mib, limit_mb=limit)
