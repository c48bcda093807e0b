"""FROM clauses: tables, CTEs, subqueries and joins, turned into one row source.

A row source is the joined rows a query aggregates, with the SQL column that
holds each row's privacy unit. Private tables may only be joined on the privacy
unit (so every joined row still belongs to one unit); public lookup tables join
freely. Subqueries are either row-level (a projection with a filter) or
pre-aggregate per unit (``GROUP BY <unit>``): the latter bound each unit's rows
and clamp their values, so the per-unit results have derivable bounds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from collections.abc import Mapping

from sqlglot import exp

from queries.fan_out import public_fan_out
from queries.model import PublicTableStats
from queries.parse import reject
from queries.policy import DatasetPolicy, TablePolicy
from queries.rewrite import render
from queries.scope import UNIT, ColumnInfo, Relation, Scope, bind, bound_column, fold
from queries.total import UserScalars
from queries.vocabulary import ColumnClass

ALLOWED_SELECT_ARGS = {"with_", "expressions", "from_", "joins", "where", "group", "having", "order", "limit"}
MAX_RELATIONS = 16


@dataclass
class Context:
    sql: str
    policy: DatasetPolicy
    licensed: frozenset[str]
    counter: itertools.count = field(default_factory=itertools.count)
    tables: set[str] = field(default_factory=set)
    relations: int = 0
    scalars: UserScalars = field(default_factory=UserScalars)
    public_stats: Mapping[str, PublicTableStats] | None = None
    max_fan_out: int | None = None      # None: public fan-out is not bounded

    def alias(self) -> str:
        return f"t{next(self.counter)}"


@dataclass
class RowSource:
    scope: Scope
    from_sql: str
    where: exp.Expr | None
    unit_sql: str | None
    private: bool
    max_rows: int
    fan_out: int
    one_per_unit: bool
    max_groups: int
    tables: frozenset[str]
    conjuncts: list[exp.Expr] = field(default_factory=list)   # bound ON and WHERE conjuncts
    public_fan_out: int = 1             # rows public joins can make of one private row
    max_total: int | None = None        # joined rows of one unit, all groups together (None: not declared)


def check_clauses(select: exp.Select, sql: str, *, top: bool) -> None:
    for key, value in select.args.items():
        if value in (None, [], False) or key in ALLOWED_SELECT_ARGS:
            continue
        if key == "distinct":
            raise reject("distinct_not_allowed", "SELECT DISTINCT is not allowed", sql, select)
        if key == "offset":
            raise reject("unsupported_syntax", "OFFSET is not allowed", sql, value)
        raise reject("unsupported_syntax", f"{key.strip('_').upper()} is not allowed here", sql,
                     value if isinstance(value, exp.Expression) else select)
    if not top:
        for key in ("order", "limit"):
            if select.args.get(key) is not None:
                raise reject("unsupported_syntax", f"{key.upper()} is only allowed in the outer query", sql,
                             select.args[key])
    with_ = select.args.get("with_")
    if with_ is not None and with_.args.get("recursive"):
        raise reject("unsupported_syntax", "WITH RECURSIVE is not allowed", sql, with_)


def collect_ctes(select: exp.Select, sql: str, outer: dict[str, exp.CTE]) -> dict[str, exp.CTE]:
    ctes = dict(outer)
    with_ = select.args.get("with_")
    if with_ is None:
        return ctes
    for cte in with_.expressions:
        alias = cte.args.get("alias")
        if alias is not None and alias.columns:
            raise reject("unsupported_syntax", "column lists on CTE names are not allowed; alias in the SELECT",
                         sql, cte)
        name = fold(cte.alias)
        if name is None:
            raise reject("unknown_table", f"invalid CTE name '{cte.alias}'", sql, cte)
        if name in ctes and ctes[name] is not outer.get(name):
            raise reject("duplicate_alias", f"CTE '{cte.alias}' is defined twice", sql, cte)
        ctes[name] = cte
    return ctes


def base_relation(ctx: Context, table: TablePolicy, name: str, node: exp.Expr | None = None) -> Relation:
    unit = ctx.policy.privacy_unit
    public_rows, per_value = None, {}
    if table.public:
        stats = (ctx.public_stats or {}).get(table.name)
        if stats is None and ctx.max_fan_out is not None:
            raise reject("query_too_costly", f"public table '{table.name}' has no statistics, so the rows it can "
                         "add to a private row cannot be bounded", ctx.sql, node, table=table.name)
        if stats is not None:
            public_rows = max(0, int(stats.rows))
            per_value = {c: max(0, int(n)) for c, n in stats.max_rows_per_value.items()
                         if table.column(c) is not None}
    columns = {}
    for c in table.columns:
        integer = c.type == "integer"
        lo, hi = c.min, c.max
        if integer and lo is not None and hi is not None:
            lo, hi = math.ceil(lo), math.floor(hi)
        columns[c.name] = ColumnInfo(
            name=c.name, cls=c.cls, is_unit=(not table.public and c.name == unit), lower=lo, upper=hi,
            integer=integer, domain=c.domain, origin=f"{table.name}.{c.name}", sql_integer=integer,
            type=c.type,
        )
    ctx.tables.add(table.name)
    return Relation(
        name=name, alias=ctx.alias(), source_sql=f"ds.{table.name}", columns=columns,
        private=not table.public, unit=None if table.public else unit,
        max_rows=max(1, table.max_rows_per_unit), one_per_unit=table.rows_per_unit == 1,
        max_groups=table.max_groups_per_unit or ctx.policy.max_groups_per_unit,
        tables=frozenset({table.name}), public_rows=public_rows, per_value=per_value,
        max_total=1 if table.rows_per_unit == 1 else table.max_total_rows_per_unit,
    )


def table_relation(ctx: Context, node: exp.Table, ctes: dict[str, exp.CTE]) -> Relation:
    sql = ctx.sql
    for key, value in node.args.items():
        if key in ("this", "alias", "db", "catalog") or value in (None, [], False):
            continue
        raise reject("unsupported_syntax", f"{key.upper()} on a table is not allowed", sql, node)
    alias = node.args.get("alias")
    if alias is not None and alias.columns:
        raise reject("unsupported_syntax", "column lists on table aliases are not allowed", sql, node)
    raw = node.name
    visible = fold(alias.name) if alias is not None and alias.name else None
    if node.args.get("db") is not None or node.args.get("catalog") is not None:
        raise reject("unknown_table", f"unknown table '{node.sql(dialect='duckdb')}': use the bare table name",
                     sql, node, table=raw)
    name = fold(raw)
    if any(ch in raw for ch in "./\\:") or raw.lower().endswith((".csv", ".parquet", ".json")):
        raise reject("file_access", "files and URLs cannot be read; name a table of the dataset", sql, node)
    if name is not None and name in ctes:
        cte = ctes[name]
        inner = cte.this
        if not isinstance(inner, exp.Select):
            raise reject("not_select", "a CTE must be a SELECT", sql, cte)
        outer = {k: v for k, v in ctes.items() if k != name and _defined_before(v, cte)}
        return derived_relation(ctx, inner, visible or name, outer)
    table = ctx.policy.table(name) if name is not None else None
    if name is None or table is None:
        raise reject("unknown_table", f"unknown table '{raw}'", sql, node, table=raw)
    if table.name not in ctx.licensed:
        raise reject("unlicensed_table", f"table '{table.name}' is not covered by your licence", sql, node,
                     table=table.name)
    return base_relation(ctx, table, visible or name, node)


def _defined_before(candidate: exp.CTE, cte: exp.CTE) -> bool:
    """CTEs may refer to CTEs defined earlier in the same WITH, or outer ones."""
    if candidate.parent is not cte.parent:
        return True
    assert cte.parent is not None, "a CTE sits in a WITH"
    siblings = cte.parent.expressions
    return siblings.index(candidate) < siblings.index(cte)


def from_item(ctx: Context, node: exp.Expr, ctes: dict[str, exp.CTE]) -> Relation:
    ctx.relations += 1
    if ctx.relations > MAX_RELATIONS:
        raise reject("too_complex", f"a query may read at most {MAX_RELATIONS} tables and subqueries", ctx.sql, node)
    if isinstance(node, exp.Table):
        return table_relation(ctx, node, ctes)
    if isinstance(node, exp.Subquery):
        alias = node.args.get("alias")
        if alias is not None and alias.columns:
            raise reject("unsupported_syntax", "column lists on subquery aliases are not allowed", ctx.sql, node)
        if not isinstance(node.this, exp.Select):
            raise reject("set_operation", "a subquery must be one SELECT", ctx.sql, node)
        for key, value in node.args.items():
            if key not in ("this", "alias") and value not in (None, [], False):
                raise reject("unsupported_syntax", f"{key.upper()} on a subquery is not allowed", ctx.sql, node)
        return derived_relation(ctx, node.this, fold(node.alias) if node.alias else None, ctes)
    raise reject("table_function", f"{node.key.upper()} cannot be used in FROM", ctx.sql, node)


def _conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    if node is None:
        return []
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _join_condition(ctx: Context, scope: Scope, join: exp.Join, right: Relation) -> exp.Expr | None:
    """Bind a join's ON/USING condition and check that a private right side is
    joined on the privacy unit."""
    sql = ctx.sql
    parts: list[exp.Expr] = []
    unit_joined = False
    using = join.args.get("using") or []
    for ident in using:
        name = fold(ident.name)
        if name is None or name not in right.columns:
            raise reject("unknown_column", f"unknown column '{ident.name}' in USING", sql, ident, column=ident.name)
        lefts = [r for r in scope.relations[:-1] if name in r.columns]
        if not lefts:
            raise reject("unknown_column", f"unknown column '{ident.name}' in USING", sql, ident, column=ident.name)
        if len(lefts) > 1:
            raise reject("ambiguous_column", f"column '{ident.name}' in USING is ambiguous", sql, ident,
                         column=ident.name)
        left = lefts[0]
        l_info, r_info = left.columns[name], right.columns[name]
        if l_info.is_unit and r_info.is_unit:
            unit_joined = True
        elif ColumnClass.IDENTIFIER in (l_info.cls, r_info.cls):
            raise reject("identifier_in_filter", f"identifier column {r_info.origin} cannot be used in a join",
                         sql, ident, **r_info.names)
        parts.append(exp.EQ(this=bound_column(left, l_info, ident), expression=bound_column(right, r_info, ident)))
        scope.merged.setdefault(name, left)
    for cond in _conjuncts(join.args.get("on")):
        if isinstance(cond, exp.EQ) and isinstance(cond.this, exp.Column) and isinstance(cond.expression, exp.Column):
            a_rel, a = scope.resolve(cond.this)
            b_rel, b = scope.resolve(cond.expression)
            if a.is_unit and b.is_unit:
                if right in (a_rel, b_rel) and a_rel is not b_rel:
                    unit_joined = True
                parts.append(bind(cond, scope, identifiers=None, allow_aggregates=False))
                continue
        parts.append(bind(cond, scope, identifiers="identifier_in_filter", allow_aggregates=False))
    if right.private and any(r.private for r in scope.relations[:-1]) and not unit_joined:
        raise reject("join_not_on_unit", "private tables may only be joined on the privacy unit "
                     f"({ctx.policy.privacy_unit} = {ctx.policy.privacy_unit})", sql, join)
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = exp.And(this=out, expression=p)
    return out


def row_source(ctx: Context, select: exp.Select, ctes: dict[str, exp.CTE]) -> RowSource:
    sql = ctx.sql
    scope = Scope(sql=sql)
    from_ = select.args.get("from_")
    if from_ is None:
        raise reject("no_private_table", "the query reads no table", sql, select)
    first = from_item(ctx, from_.this, ctes)
    scope.add(first)
    text = f"{first.source_sql} AS {first.alias}"
    conjuncts: list[exp.Expr] = []
    for join in select.args.get("joins") or []:
        side = (join.side or "").upper()
        kind = (join.kind or "").upper()
        for key, value in join.args.items():
            if key not in ("this", "on", "side", "kind", "using") and value not in (None, [], False):
                raise reject("join_not_allowed", f"{key.upper()} joins are not allowed", sql, join)
        if side in ("RIGHT", "FULL") or kind not in ("", "INNER", "CROSS", "OUTER"):
            raise reject("join_not_allowed", f"{' '.join(x for x in (side, kind) if x)} JOIN is not allowed; "
                         "use JOIN or LEFT JOIN", sql, join)
        right = from_item(ctx, join.this, ctes)
        scope.add(right)
        cond = _join_condition(ctx, scope, join, right)
        if kind == "CROSS" and cond is not None:
            raise reject("join_not_allowed", "CROSS JOIN takes no condition", sql, join)
        word = "LEFT JOIN" if side == "LEFT" else "JOIN"
        if cond is None:
            if side == "LEFT":
                raise reject("join_not_allowed", "LEFT JOIN needs ON or USING", sql, join)
            text += f" CROSS JOIN {right.source_sql} AS {right.alias}"
        else:
            conjuncts += _conjuncts(cond)
            text += f" {word} {right.source_sql} AS {right.alias} ON " \
                    f"{ctx.scalars.emit(cond, scope.type_of, condition=True)}"
    where = select.args.get("where")
    bound_where = bind(where.this, scope, identifiers="identifier_in_filter", allow_aggregates=False) \
        if where is not None else None
    conjuncts += _conjuncts(bound_where)
    private = [r for r in scope.relations if r.private]
    public = [r for r in scope.relations if not r.private]
    max_rows = math.prod(r.max_rows for r in private) if private else 1
    fan_out = max_rows // private[0].max_rows if private else 1
    one = bool(private) and all(r.one_per_unit for r in private) and not public
    if one:
        max_rows = 1
    public_factor = 1
    if ctx.max_fan_out is not None and private:
        bound = public_fan_out(scope.relations, conjuncts)
        public_factor = bound.factor
        if public_factor > ctx.max_fan_out:
            raise reject("query_too_costly", f"joins with public tables can turn one private row into up to "
                         f"{public_factor} rows ({bound.describe()}); the limit is {ctx.max_fan_out}",
                         sql, from_)
    unit_sql = None
    if private:
        head = private[0]
        unit_sql = f"{head.alias}.{UNIT}" if head.unit == UNIT else \
            ctx.scalars.column(f"{head.alias}.{_quote(head.unit)}")
    return RowSource(
        scope=scope, from_sql=text, where=bound_where, unit_sql=unit_sql,
        private=bool(private), max_rows=max_rows, fan_out=fan_out, one_per_unit=one,
        max_groups=max((r.max_groups for r in private), default=1),
        tables=frozenset().union(*(r.tables for r in scope.relations)),
        conjuncts=conjuncts, public_fan_out=public_factor,
        # private tables join on the unit, so one unit's joined rows are at most the product of
        # each table's; a table without a declared total leaves the total unbounded
        max_total=(math.prod(r.max_total for r in private if r.max_total is not None)
                   if private and all(r.max_total is not None for r in private) else None),
    )


def _quote(name: str | None) -> str:
    return render(exp.to_identifier(name, quoted=True)) if name else ""


def derived_relation(ctx: Context, select: exp.Select, name: str | None, ctes: dict[str, exp.CTE]) -> Relation:
    from queries.derived import derive  # a subquery is planned like a small query

    return derive(ctx, select, name, ctes)


__all__ = ["Context", "RowSource", "row_source", "check_clauses", "collect_ctes", "UNIT"]
