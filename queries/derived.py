"""Subqueries and CTEs in FROM, planned as relations.

* Row-level: a projection with a filter. Each output row is one input row, so it
  keeps its privacy unit (carried as a hidden ``__unit`` column).
* Per-unit pre-aggregation: ``GROUP BY <unit>[, ...]``. The unit's rows are first
  bounded to the row source's ``max_rows`` (keyed hash) and values clamped, so
  each result has bounds: a SUM over at most n rows of [lo, hi] lies in
  [min(lo, n·lo), max(hi, n·hi)]; COUNT in [0, n]; AVG/MIN/MAX/MEDIAN in [lo, hi].
* Subqueries over public tables only are plain SQL (no unit, no bounding).
"""

from __future__ import annotations

import math
from dataclasses import replace

from sqlglot import exp

from queries.allowlist import PER_UNIT_AGGREGATES, PRIVATE_AGGREGATES
from queries.bounds import UNBOUNDED, Interval, interval_of
from queries.domains import derive_domain
from queries.parse import reject
from queries.relations import Context, check_clauses, collect_ctes, row_source
from queries.rewrite import bounded_layer, clamp, render, rows_layer
from queries.scope import UNIT, ColumnInfo, Relation, widest_class
from queries.select_list import expand_items, group_expressions, replace_terms


def _name(item_name: str | None, index: int) -> str:
    return item_name if item_name else f"__c{index}"


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
    where_sql = render(rs.where) if rs.where is not None else None
    columns: dict[str, ColumnInfo] = {}

    def add(out: str, info: ColumnInfo, where: exp.Expression) -> None:
        if out in columns:
            raise reject("duplicate_column", f"column '{out}' appears twice in a subquery", sql, where)
        columns[out] = info

    if not aggregated:
        sql_items = []
        for index, item in enumerate(items):
            out = _name(item.name, index)
            node = item.node
            if isinstance(node, exp.Column):
                info = replace(scope.info(node), name=out)
            else:
                refs = [scope.info(c) for c in node.find_all(exp.Column)]
                for ref in refs:
                    if ref is not None and ref.cls == "identifier":
                        raise reject("identifier_in_expression",
                                     f"identifier column {ref.origin} cannot be used in an expression",
                                     sql, item.source)
                iv = interval_of(node, scope.interval)
                info = ColumnInfo(name=out, cls=widest_class([r for r in refs if r]),
                                  lower=iv.lo if iv.finite else None, upper=iv.hi if iv.finite else None,
                                  integer=iv.integer, domain=derive_domain(node, scope.values),
                                  origin=f"{name or 'subquery'}.{out}")
            add(out, info, item.source)
            sql_items.append((render(exp.to_identifier(out, quoted=True)), render(node)))
        text = rows_layer(rs.unit_sql, sql_items, rs.from_sql, where_sql)
        return Relation(name=name, alias=alias, source_sql=f"({text})", columns=columns, private=rs.private,
                        unit=UNIT if rs.private else None, max_rows=rs.max_rows, one_per_unit=rs.one_per_unit,
                        max_groups=rs.max_groups, tables=rs.tables)

    keys = group_expressions(select, items, scope, identifiers=None)
    n = 1 if rs.one_per_unit else rs.max_rows
    key_cols: list[tuple[str, str]] = []
    replacements: list[tuple[exp.Expression, exp.Expression]] = []
    key_infos: dict[str, ColumnInfo] = {}
    has_unit = False
    for index, (bound, origin) in enumerate(keys):
        info = scope.info(bound) if isinstance(bound, exp.Column) else None
        if info is not None and info.is_unit and rs.private:
            has_unit = True
            replacements.append((bound, exp.column(UNIT)))
            key_infos[UNIT] = info
            continue
        for ref in bound.find_all(exp.Column):
            ref_info = scope.info(ref)
            if ref_info is not None and ref_info.cls == "identifier":
                raise reject("identifier_in_group", f"identifier column {ref_info.origin} cannot be a group key",
                             sql, origin)
        col = f"k{index}"
        key_cols.append((col, render(bound)))
        replacements.append((bound, exp.column(col)))
        if info is None:
            iv = interval_of(bound, scope.interval)
            refs = [scope.info(c) for c in bound.find_all(exp.Column)]
            info = ColumnInfo(name=col, cls=widest_class([r for r in refs if r]),
                              lower=iv.lo if iv.finite else None, upper=iv.hi if iv.finite else None,
                              integer=iv.integer, domain=derive_domain(bound, scope.values))
        key_infos[col] = info
    if rs.private and not has_unit:
        raise reject("aggregate_subquery", "a subquery over private tables may aggregate only per privacy unit: "
                     f"GROUP BY {ctx.policy.privacy_unit}", sql, select.args.get("group") or select)

    values: list[tuple[str, str]] = []
    intervals: dict[int, Interval] = {}

    def value(text: str) -> str:
        for col, existing in values:
            if existing == text:
                return col
        col = f"v{len(values)}"
        values.append((col, text))
        return col

    def on_aggregate(agg: exp.AggFunc) -> exp.Expression:
        if not (type(agg) in PRIVATE_AGGREGATES or isinstance(agg, PER_UNIT_AGGREGATES)):
            raise reject("aggregate_not_allowed", f"aggregate {agg.key.upper()} is not supported", sql, agg)
        arg = agg.this
        distinct = isinstance(arg, exp.Distinct)
        if isinstance(agg, exp.Count):
            if arg is None or isinstance(arg, exp.Star):
                out = exp.Count(this=exp.Star())
                lo = 1
            else:
                target = arg.expressions[0] if distinct else arg
                if distinct and len(arg.expressions) != 1:
                    raise reject("distinct_not_allowed", "COUNT(DISTINCT ...) takes one column", sql, agg)
                col = exp.column(value(render(target)))
                out = exp.Count(this=exp.Distinct(expressions=[col]) if distinct else col)
                lo = 0
            intervals[id(out)] = Interval(lo, n, True)
            return out
        if distinct:
            raise reject("distinct_not_allowed", "DISTINCT is only allowed in COUNT", sql, agg)
        for col in arg.find_all(exp.Column):
            info = scope.info(col)
            if info is not None and info.cls == "identifier":
                raise reject("identifier_in_aggregate", f"identifier column {info.origin} can only be counted",
                             sql, col)
        iv = interval_of(arg, scope.interval)
        col = exp.column(value(clamp(render(arg), iv) if iv.finite else render(arg)))
        if isinstance(agg, exp.Sum):
            out, result = exp.Sum(this=col), Interval(min(iv.lo, n * iv.lo), max(iv.hi, n * iv.hi), iv.integer)
        elif isinstance(agg, (exp.Min, exp.Max)):
            out, result = agg.__class__(this=col), iv
        elif isinstance(agg, exp.Avg):
            out, result = exp.Avg(this=col), Interval(iv.lo, iv.hi, False)
        elif isinstance(agg, (exp.Median, exp.PercentileCont, exp.Quantile)):
            q = agg.args.get("expression")
            out = exp.Median(this=col) if q is None else exp.PercentileCont(this=col, expression=q.copy())
            result = Interval(iv.lo, iv.hi, False)
        else:
            out = agg.__class__(this=col)
            width = iv.hi - iv.lo
            variance = isinstance(agg, (exp.Variance, exp.VariancePop))
            result = Interval(0, width * width / 2 if variance else width / math.sqrt(2), False)
        intervals[id(out)] = result if result.finite else UNBOUNDED
        return out

    sql_items = []
    for index, item in enumerate(items):
        out_name = _name(item.name, index)
        node = replace_terms(item.node, replacements, on_aggregate, scope, has_aggregates=True)
        if isinstance(node, exp.Column) and node.name in key_infos:
            info = replace(key_infos[node.name], name=out_name)
        else:
            iv = interval_of(node, lambda c: key_infos[c.name].interval if c.name in key_infos else UNBOUNDED,
                             lambda x: intervals.get(id(x)))
            info = ColumnInfo(name=out_name, cls="sensitive", lower=iv.lo if iv.finite else None,
                              upper=iv.hi if iv.finite else None, integer=iv.integer,
                              origin=f"{name or 'subquery'}.{out_name}")
        add(out_name, info, item.source)
        sql_items.append(f"{render(node)} AS {render(exp.to_identifier(out_name, quoted=True))}")
    having = select.args.get("having")
    having_sql = None
    if having is not None:
        from queries.scope import bind
        bound = bind(having.this, scope, identifiers=None)
        having_sql = render(replace_terms(bound, replacements, on_aggregate, scope, has_aggregates=True))

    rows = rows_layer(rs.unit_sql, key_cols + values, rs.from_sql, where_sql)
    if rs.private and n > 1:
        source = bounded_layer(f"({rows}) AS __r", [], [c for c, _ in key_cols + values],
                               max_groups=None, max_rows=n, key_filter=None)
    else:
        source = rows
    group_cols = ([UNIT] if rs.private else []) + [c for c, _ in key_cols]
    head = ([UNIT] if rs.private else []) + sql_items
    text = f"SELECT {', '.join(head)} FROM ({source}) AS __p"
    if group_cols:
        text += f" GROUP BY {', '.join(group_cols)}"
    if having_sql:
        text += f" HAVING {having_sql}"
    one = rs.private and not key_cols
    return Relation(name=name, alias=alias, source_sql=f"({text})", columns=columns, private=rs.private,
                    unit=UNIT if rs.private else None, max_rows=1 if one else n, one_per_unit=one,
                    max_groups=rs.max_groups, tables=rs.tables)
