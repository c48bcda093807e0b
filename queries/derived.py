"""Subqueries and CTEs in FROM, planned as relations.

* Row-level: a projection with a filter. Each output row is one input row, so it
  keeps its privacy unit (carried as a hidden ``__unit`` column).
* Per-unit pre-aggregation: ``GROUP BY <unit>[, ...]``. The unit's rows are first
  bounded to the row source's ``max_rows`` (keyed hash) and values clamped, so
  each result has bounds: a SUM over at most n rows of [lo, hi] lies in
  [min(lo, n·lo), max(hi, n·hi)]; COUNT in [0, n]; AVG/MIN/MAX/MEDIAN in [lo, hi].
  The aggregates are computed in an inner ``SELECT`` (``m0``, ``m1``, ...), and the
  select list and ``HAVING`` are evaluated over them in an outer one, where they can
  be made total (DuckDB allows no aggregate inside ``TRY``). An unbounded argument
  of SUM/AVG/VAR/STDDEV/MEDIAN/QUANTILE is read as ``TRY_CAST(x AS DOUBLE)``: a
  DOUBLE sum cannot overflow, a HUGEINT or DECIMAL one can.
* Subqueries over public tables only are plain SQL (no unit, no bounding).

Output columns get generated SQL names (``c0``, ``c1``, ...): the operator's names
stay in the scope, and never reach the bounded SQL, so no alias can name an
internal column such as ``__unit``.
"""

from __future__ import annotations

import math
from dataclasses import replace

from sqlglot import exp

from queries.allowlist import PER_UNIT_AGGREGATES, PRIVATE_AGGREGATES, literal_quantile
from queries.bounds import MAX_EXACT, UNBOUNDED, Interval, interval_of
from queries.domains import derive_domain
from queries.fan_out import derived_rows
from queries.parse import reject
from queries.relations import Context, RowSource, check_clauses, collect_ctes, row_source
from queries.rewrite import bounded_layer, clamp, render, rows_layer
from queries.scope import UNIT, ColumnInfo, Relation, bind, widest_class
from queries.select_list import expand_items, group_expressions, replace_terms
from queries.vocabulary import ColumnClass


def _name(item_name: str | None, index: int) -> str:
    return item_name if item_name else f"__c{index}"


def _public_rows(rs: RowSource) -> int | None:
    if rs.private or any(r.public_rows is None for r in rs.scope.relations):
        return None
    return derived_rows(rs.scope.relations, rs.conjuncts)


def derive(ctx: Context, select: exp.Select, name: str | None, outer_ctes: dict) -> Relation:
    sql = ctx.sql
    check_clauses(select, sql, top=False)
    ctes = collect_ctes(select, sql, outer_ctes)
    rs = row_source(ctx, select, ctes)
    scope = rs.scope
    items = expand_items(select, scope)
    aggregated = bool(select.args.get("group")) or bool(select.args.get("having")) or any(
        i.node.find(exp.AggFunc) for i in items)
    alias = ctx.alias()
    where_sql = ctx.scalars.emit(rs.where, scope.type_of, condition=True) if rs.where is not None else None
    columns: dict[str, ColumnInfo] = {}

    def add(out: str, info: ColumnInfo, where: exp.Expr) -> None:
        if out in columns:
            raise reject("duplicate_column", f"column '{out}' appears twice in a subquery", sql, where, column=out)
        columns[out] = info

    def relation(text: str, *, max_rows: int, one: bool, per_value: dict[str, int] | None = None) -> Relation:
        return Relation(name=name, alias=alias, source_sql=f"({text})", columns=columns, private=rs.private,
                        unit=UNIT if rs.private else None, max_rows=max_rows, one_per_unit=one,
                        max_groups=rs.max_groups, tables=rs.tables, public_rows=_public_rows(rs),
                        per_value=per_value or {}, fan_out=rs.public_fan_out, max_total=1 if one else None)

    if not aggregated:
        row_items: list[tuple[str, str]] = []
        per_value: dict[str, int] = {}
        only = scope.relations[0] if len(scope.relations) == 1 else None
        for index, item in enumerate(items):
            col = f"c{index}"
            node = item.node
            if isinstance(node, exp.Column):
                bound_info = scope.info(node)
                assert bound_info is not None, "a bound column has its info"
                info = replace(bound_info, name=col)
                if only is not None and not only.private and node.name in only.per_value:
                    per_value[col] = only.per_value[node.name]
            else:
                refs = [scope.info(c) for c in node.find_all(exp.Column)]
                for ref in refs:
                    if ref is not None and ref.cls == ColumnClass.IDENTIFIER:
                        raise reject("identifier_in_expression",
                                     f"identifier column {ref.origin} cannot be used in an expression",
                                     sql, item.source, **ref.names)
                iv = interval_of(node, scope.interval)
                info = ColumnInfo(name=col, cls=widest_class([r for r in refs if r]),
                                  lower=iv.lo if iv.finite else None, upper=iv.hi if iv.finite else None,
                                  integer=iv.integer, domain=derive_domain(node, scope.values),
                                  origin=f"{name or 'subquery'}.{_name(item.name, index)}")
            add(_name(item.name, index), info, item.source)
            row_items.append((col, ctx.scalars.emit(node, scope.type_of)))
        text = rows_layer(rs.unit_sql, row_items, rs.from_sql, where_sql)
        return relation(text, max_rows=rs.max_rows, one=rs.one_per_unit, per_value=per_value)

    keys = group_expressions(select, items, scope, identifiers=None)
    n = 1 if rs.one_per_unit else rs.max_rows
    key_cols: list[tuple[str, str]] = []
    replacements: list[tuple[exp.Expr, exp.Expr]] = []
    key_infos: dict[str, ColumnInfo] = {}
    has_unit = False
    for index, (bound, origin) in enumerate(keys):
        key_info = scope.info(bound) if isinstance(bound, exp.Column) else None
        if key_info is not None and key_info.is_unit and rs.private:
            has_unit = True
            replacements.append((bound, exp.column(UNIT)))
            key_infos[UNIT] = key_info
            continue
        for ref_col in bound.find_all(exp.Column):
            ref_info = scope.info(ref_col)
            if ref_info is not None and ref_info.cls == ColumnClass.IDENTIFIER:
                raise reject("identifier_in_group", f"identifier column {ref_info.origin} cannot be a group key",
                             sql, origin, **ref_info.names)
        col = f"k{index}"
        key_cols.append((col, ctx.scalars.emit(bound, scope.type_of)))
        replacements.append((bound, exp.column(col)))
        if key_info is None:
            iv = interval_of(bound, scope.interval)
            refs = [scope.info(c) for c in bound.find_all(exp.Column)]
            key_info = ColumnInfo(name=col, cls=widest_class([r for r in refs if r]),
                                  lower=iv.lo if iv.finite else None, upper=iv.hi if iv.finite else None,
                                  integer=iv.integer, domain=derive_domain(bound, scope.values))
        key_infos[col] = key_info
    if rs.private and not has_unit:
        raise reject("aggregate_subquery", "a subquery over private tables may aggregate only per privacy unit: "
                     f"GROUP BY {ctx.policy.privacy_unit}", sql, select.args.get("group") or select)

    values: list[tuple[str, str]] = []
    measures: list[tuple[str, str]] = []
    intervals: dict[str, Interval] = {}

    def value(text: str) -> exp.Column:
        for col, existing in values:
            if existing == text:
                return exp.column(col)
        col = f"v{len(values)}"
        values.append((col, text))
        return exp.column(col)

    def measure(agg: exp.Expr, result: Interval) -> exp.Column:
        text = render(agg)
        for col, existing in measures:
            if existing == text:
                return exp.column(col)
        col = f"m{len(measures)}"
        measures.append((col, text))
        intervals[col] = result if result.finite else UNBOUNDED
        return exp.column(col)

    def on_aggregate(agg: exp.AggFunc) -> exp.Expr:
        if not (type(agg) in PRIVATE_AGGREGATES or isinstance(agg, PER_UNIT_AGGREGATES)):
            raise reject("aggregate_not_allowed", f"aggregate {agg.key.upper()} is not supported", sql, agg,
                         function=agg.key.upper())
        arg = agg.this
        distinct = isinstance(arg, exp.Distinct)
        if isinstance(agg, exp.Count):
            if arg is None or isinstance(arg, exp.Star):
                return measure(exp.Count(this=exp.Star()), Interval(1, n, True))
            target = arg.expressions[0] if distinct else arg
            if distinct and len(arg.expressions) != 1:
                raise reject("distinct_not_allowed", "COUNT(DISTINCT ...) takes one column", sql, agg)
            col = value(ctx.scalars.emit(target, scope.type_of))
            return measure(exp.Count(this=exp.Distinct(expressions=[col]) if distinct else col), Interval(0, n, True))
        if distinct:
            raise reject("distinct_not_allowed", "DISTINCT is only allowed in COUNT", sql, agg)
        for col in arg.find_all(exp.Column):
            info = scope.info(col)
            if info is not None and info.cls == ColumnClass.IDENTIFIER:
                raise reject("identifier_in_aggregate", f"identifier column {info.origin} can only be counted",
                             sql, col, **info.names)
        iv = interval_of(arg, scope.interval)
        text = ctx.scalars.emit(arg, scope.type_of)
        if iv.finite:
            if max(abs(iv.lo), abs(iv.hi)) > MAX_EXACT:   # too large to hold exactly as BIGINT: clamp as DOUBLE
                iv = Interval(iv.lo, iv.hi, False)
            col = value(clamp(text, iv))
        elif isinstance(agg, PER_UNIT_AGGREGATES):
            col = value(text)                              # MIN/MAX compare; they never fail
        else:
            col = value(f"TRY_CAST({text} AS DOUBLE)")
        if isinstance(agg, exp.Sum):
            return measure(exp.Sum(this=col), Interval(min(iv.lo, n * iv.lo), max(iv.hi, n * iv.hi), iv.integer))
        if isinstance(agg, (exp.Min, exp.Max)):
            return measure(agg.__class__(this=col), iv)
        if isinstance(agg, exp.Avg):
            return measure(exp.Avg(this=col), Interval(iv.lo, iv.hi, False))
        if isinstance(agg, (exp.Median, exp.PercentileCont, exp.Quantile)):
            q = None if isinstance(agg, exp.Median) else literal_quantile(agg, sql)
            out = exp.Median(this=col) if q is None else \
                exp.PercentileCont(this=col, expression=exp.Literal.number(repr(q)))
            return measure(out, Interval(iv.lo, iv.hi, False))
        width = iv.hi - iv.lo
        variance = isinstance(agg, (exp.Variance, exp.VariancePop))
        return measure(agg.__class__(this=col),
                       Interval(0, width * width / 2 if variance else width / math.sqrt(2), False))

    def type_of(col: exp.Column) -> str | None:
        info = key_infos.get(col.name) if not col.table else None
        return info.type if info is not None else None

    def interval(col: exp.Column) -> Interval:
        if col.name in key_infos:
            return key_infos[col.name].interval
        return intervals.get(col.name, UNBOUNDED)

    sql_items = []
    for index, item in enumerate(items):
        col = f"c{index}"
        node = replace_terms(item.node, replacements, on_aggregate, scope, has_aggregates=True)
        if isinstance(node, exp.Column) and node.name in key_infos:
            info = replace(key_infos[node.name], name=col)
        else:
            iv = interval_of(node, interval)
            info = ColumnInfo(name=col, cls=ColumnClass.SENSITIVE, lower=iv.lo if iv.finite else None,
                              upper=iv.hi if iv.finite else None, integer=iv.integer,
                              origin=f"{name or 'subquery'}.{_name(item.name, index)}")
        add(_name(item.name, index), info, item.source)
        sql_items.append(f"{ctx.scalars.emit(node, type_of)} AS {col}")
    having = select.args.get("having")
    having_sql = None
    if having is not None:
        bound = bind(having.this, scope, identifiers=None)
        having_sql = ctx.scalars.emit(replace_terms(bound, replacements, on_aggregate, scope, has_aggregates=True),
                                      type_of, condition=True)

    rows = rows_layer(rs.unit_sql, key_cols + values, rs.from_sql, where_sql)
    if rs.private and n > 1:
        source = bounded_layer(f"({rows}) AS __r", [], [c for c, _ in key_cols + values],
                               max_groups=None, max_rows=n, key_filter=None)
    else:
        source = rows
    group_cols = ([UNIT] if rs.private else []) + [c for c, _ in key_cols]
    inner_items = group_cols + [f"{text} AS {col}" for col, text in measures]
    inner = f"SELECT {', '.join(inner_items or ['COUNT(*) AS __n'])} FROM ({source}) AS __p"
    if group_cols:
        inner += f" GROUP BY {', '.join(group_cols)}"
    head = ([UNIT] if rs.private else []) + sql_items
    text = f"SELECT {', '.join(head)} FROM ({inner}) AS __a"
    if having_sql:
        text += f" WHERE {having_sql}"
    one = rs.private and not key_cols
    return relation(text, max_rows=1 if one else n, one=one)
