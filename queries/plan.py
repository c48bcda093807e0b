"""``plan_query``: SQL text + dataset policy → ``BoundedPlan``."""

from __future__ import annotations

import math

from sqlglot import exp

from queries.allowlist import PRIVATE_AGGREGATES, check_allowed
from queries.bounds import Interval, interval_of
from queries.domains import derive_domain
from queries.errors import QueryRejected
from queries.fingerprint import plan_fingerprint
from queries.model import Aggregate, BoundedPlan, GroupKey, OutputColumn
from queries.parse import parse_select, reject, whole_span
from queries.policy import DatasetPolicy
from queries.relations import Context, check_clauses, collect_ctes, row_source
from queries.measures import Measured, bounded_sql as build_bounded_sql
from queries.rewrite import candidate_grid, clamp, domain_filter, render, rows_layer
from queries.scope import Scope, bind
from queries.select_list import expand_items, group_expressions, replace_terms

MEASURES = {
    "count": ("count",), "count_units": ("count",), "sum": ("sum",), "avg": ("sum", "count"),
    "var_pop": ("sum", "sumsq", "count"), "var_samp": ("sum", "sumsq", "count"),
    "stddev_pop": ("sum", "sumsq", "count"), "stddev_samp": ("sum", "sumsq", "count"),
    "quantile": ("lt", "gt"),
}


class _Aggregates:
    """The private aggregates of one query, deduplicated, with their measures."""

    def __init__(self, scope: Scope, sql: str) -> None:
        self.scope, self.sql = scope, sql
        self.list: list[Aggregate] = []
        self.keys: dict[str, str] = {}          # canonical text -> name
        self.values: list[tuple[str, str]] = []
        self.measured: list[Measured] = []

    def value(self, text: str) -> str:
        for col, existing in self.values:
            if existing == text:
                return col
        col = f"v{len(self.values)}"
        self.values.append((col, text))
        return col

    def add(self, agg: exp.AggFunc) -> exp.Expression:
        scope, sql = self.scope, self.sql
        kind = PRIVATE_AGGREGATES.get(type(agg))
        if kind is None:
            raise reject("aggregate_not_allowed", f"{agg.key.upper()} is not a private aggregate "
                         "(allowed: COUNT, SUM, AVG, VAR, STDDEV, MEDIAN, QUANTILE_CONT)", sql, agg)
        arg = agg.this
        if arg is not None and arg.find(exp.AggFunc):
            raise reject("nested_aggregate", "aggregates cannot be nested", sql, agg)
        distinct = isinstance(arg, exp.Distinct)
        lower, upper, integer, q, value = 0.0, 1.0, True, None, None
        if kind == "count":
            if distinct:
                target = arg.expressions[0] if len(arg.expressions) == 1 else None
                info = scope.info(target) if isinstance(target, exp.Column) else None
                if info is None or not info.is_unit:
                    raise reject("distinct_not_allowed", "COUNT(DISTINCT ...) is only allowed on the privacy unit "
                                 f"({_unit_name(scope)})", sql, agg)
                kind = "count_units"
            elif arg is not None and not isinstance(arg, exp.Star):
                if not isinstance(arg, exp.Column):
                    self._no_identifiers(arg)
                value = self.value(render(arg))
        else:
            if distinct:
                raise reject("distinct_not_allowed", "DISTINCT is only allowed as COUNT(DISTINCT <unit>)", sql, agg)
            self._no_identifiers(arg)
            iv = interval_of(arg, scope.interval)
            if not iv.finite:
                names = ", ".join(sorted({scope.info(c).origin for c in arg.find_all(exp.Column)
                                          if scope.info(c) is not None})) or "the argument"
                raise reject("unbounded_aggregate", f"{agg.key.upper()} needs bounds: {names} has no declared "
                             "min/max; clamp it with LEAST(GREATEST(x, lo), hi)", sql, agg)
            lower, upper, integer = float(iv.lo), float(iv.hi), iv.integer
            info = scope.info(arg) if isinstance(arg, exp.Column) else None
            value = self.value(clamp(render(arg), iv, integer_column=info is not None and info.sql_integer))
            if kind == "quantile":
                q = 0.5 if isinstance(agg, exp.Median) else _quantile(agg, sql)
        canonical = f"{kind}|{value}|{q}"
        if canonical in self.keys:
            return exp.column(self.keys[canonical])
        name = f"a{len(self.list)}"
        self.keys[canonical] = name
        columns = {role: f"{name}_{role}" for role in MEASURES[kind]}
        candidates: tuple[float, ...] = ()
        step, base = 1.0, 0
        if kind == "quantile":
            step, base, candidates = candidate_grid(Interval(lower, upper, integer))
        agg_ = Aggregate(name=name, kind=kind, columns=columns, lower=lower, upper=upper, integer=integer,
                         quantile=q, candidates=candidates, sql=render(_display(agg)))
        self.list.append(agg_)
        self.measured.append(Measured(agg_, value, step, base))
        return exp.column(name)

    def _no_identifiers(self, node: exp.Expression) -> None:
        for col in node.find_all(exp.Column):
            info = self.scope.info(col)
            if info is not None and info.cls == "identifier":
                raise reject("identifier_in_aggregate", f"identifier column {info.origin} can only be counted",
                             self.sql, col)


def _unit_name(scope: Scope) -> str:
    for rel in scope.relations:
        for info in rel.columns.values():
            if info.is_unit:
                return info.origin
    return "the privacy unit"


def _display(agg: exp.Expression) -> exp.Expression:
    """The aggregate as written, with generated table aliases dropped."""
    def strip(n: exp.Expression) -> exp.Expression | None:
        if isinstance(n, exp.Column):
            return exp.column(n.name)
        return None
    from queries.scope import rebuild
    return rebuild(agg, strip)


def _quantile(agg: exp.Expression, sql: str) -> float:
    q = agg.args.get("expression")
    if isinstance(q, exp.Literal) and not q.is_string:
        try:
            value = float(q.this)
        except ValueError:
            value = math.nan
        if 0 <= value <= 1:
            return value
    raise reject("invalid_quantile", "the quantile must be a number between 0 and 1", sql, q or agg)


def _limits(value: int | None, policy_value: int, what: str, sql: str) -> int:
    if value is None:
        return policy_value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QueryRejected("invalid_limit", f"{what} must be a positive integer", whole_span(sql))
    return min(value, policy_value)


def plan_query(sql: str, policy: DatasetPolicy, *, tables: frozenset[str] | None = None,
               max_groups: int | None = None, max_rows: int | None = None, salt: str = "") -> BoundedPlan:
    """Check ``sql`` against ``policy`` and plan it; raises only ``QueryRejected``."""
    try:
        return _plan(sql, policy, tables, max_groups, max_rows, salt)
    except QueryRejected:
        raise
    except RecursionError:
        raise QueryRejected("too_complex", "the query is nested too deeply",
                            whole_span(sql) if isinstance(sql, str) else None) from None


def _plan(sql: str, policy: DatasetPolicy, tables: frozenset[str] | None, max_groups: int | None,
          max_rows: int | None, salt: str) -> BoundedPlan:
    select = parse_select(sql)
    if policy.classification == "restricted":
        raise QueryRejected("dataset_restricted", f"dataset '{policy.name}' is restricted: it cannot be queried",
                            whole_span(sql))
    if not policy.privacy_unit:
        raise QueryRejected("no_private_table", f"dataset '{policy.name}' has no privacy unit: download its "
                            "tables from the catalog instead", whole_span(sql))
    check_allowed(sql, select)
    check_clauses(select, sql, top=True)
    licensed = frozenset(t.name for t in policy.tables) if tables is None else frozenset(tables)
    ctx = Context(sql=sql, policy=policy, licensed=licensed)
    ctes = collect_ctes(select, sql, {})
    rs = row_source(ctx, select, ctes)
    if not rs.private:
        raise reject("no_private_table", "the query reads only public tables: download them from the catalog",
                     sql, select.args.get("from_"))
    scope = rs.scope
    items = expand_items(select, scope)
    keys_raw = group_expressions(select, items, scope)

    # group keys
    group_keys: list[GroupKey] = []
    replacements: list[tuple[exp.Expression, exp.Expression]] = []
    canonical_keys: list[tuple[exp.Expression, exp.Expression]] = []
    key_cols: list[tuple[str, str]] = []
    used_names: set[str] = set()
    for index, (bound, origin) in enumerate(keys_raw):
        if any(bound == b for b, _ in replacements):
            continue
        col = f"g{len(group_keys)}"
        item = next((i for i in items if i.node == bound and i.name), None)
        if item is not None:
            name = item.name
        elif isinstance(bound, exp.Column):
            name = bound.name
        else:
            name = f"key{len(group_keys)}"
        if name in used_names or _reserved(name):
            name = f"key{len(group_keys)}"
        used_names.add(name)
        domain = derive_domain(bound, scope.values) or _range_domain(bound, scope)
        group_keys.append(GroupKey(name=name, column=col, domain=domain, sql=render(_display(bound))))
        replacements.append((bound, exp.column(name, quoted=True)))
        canonical_keys.append((bound, exp.column(col)))
        key_cols.append((col, render(bound)))

    aggs = _Aggregates(scope, sql)
    has_aggregates = any(i.node.find(exp.AggFunc) for i in items) or select.args.get("having") is not None \
        or any(o.find(exp.AggFunc) for o in (select.args["order"].expressions if select.args.get("order") else []))
    outputs: list[OutputColumn] = []
    canonical_outputs: list[str] = []
    output_nodes: dict[str, exp.Expression] = {}
    for index, item in enumerate(items):
        node = replace_terms(item.node, replacements, aggs.add, scope, has_aggregates=has_aggregates)
        canon = replace_terms(item.node, canonical_keys, aggs.add, scope, has_aggregates=has_aggregates)
        name = item.label if item.name is None else item.name
        if name in output_nodes:
            suffix = 2
            while f"{name}_{suffix}" in output_nodes:
                suffix += 1
            name = f"{name}_{suffix}"
        output_nodes[name] = node
        used = tuple(sorted({c.name for c in node.find_all(exp.Column) if c.name in aggs.keys.values()}))
        is_key = isinstance(node, exp.Column) and any(node == r for _, r in replacements)
        outputs.append(OutputColumn(name=name, expr=render(node), aggregates=used, is_key=is_key))
        canonical_outputs.append(render(canon))
    having = order_by = None
    canonical_post: list[str] = []
    if select.args.get("having") is not None:
        bound = _bind_post(select.args["having"].this, scope, output_nodes, items)
        having = render(replace_terms(bound, replacements, aggs.add, scope, has_aggregates=True))
        canonical_post.append(render(replace_terms(bound, canonical_keys, aggs.add, scope, has_aggregates=True)))
    if select.args.get("order") is not None:
        parts, canon_parts = [], []
        for ordered in select.args["order"].expressions:
            target = ordered.this
            text = canon = None
            if isinstance(target, exp.Literal) and not target.is_string and str(target.this).isdigit():
                index = int(target.this)
                if not 1 <= index <= len(outputs):
                    raise reject("invalid_order_by", f"ORDER BY position {index} is not in the select list",
                                 sql, target)
                text, canon = outputs[index - 1].expr, canonical_outputs[index - 1]
            else:
                bound = _bind_post(target, scope, output_nodes, items)
                text = render(replace_terms(bound, replacements, aggs.add, scope, has_aggregates=True))
                canon = render(replace_terms(bound, canonical_keys, aggs.add, scope, has_aggregates=True))
            suffix = (" DESC" if ordered.args.get("desc") else "") + \
                (" NULLS FIRST" if ordered.args.get("nulls_first") else "")
            parts.append(text + suffix)
            canon_parts.append(canon + suffix)
        order_by = ", ".join(parts)
        canonical_post.append(", ".join(canon_parts))
    if not aggs.list:
        raise reject("no_aggregate", "the query has no aggregate: row-level output is not allowed", sql,
                     select.expressions[0] if select.expressions else select)
    limit = None
    if select.args.get("limit") is not None:
        node = select.args["limit"].expression
        if not (isinstance(node, exp.Literal) and not node.is_string and str(node.this).isdigit()):
            raise reject("invalid_limit", "LIMIT must be a whole number", sql, node)
        limit = int(node.this)

    # contribution bounds
    plan_rows = _limits(max_rows, rs.max_rows, "max_rows", sql)
    plan_groups = _limits(max_groups, rs.max_groups, "max_groups", sql)
    notes: list[str] = []
    partition_selection = any(k.domain is None for k in group_keys)
    if not group_keys:
        plan_groups = 1
    elif not partition_selection:
        plan_groups = min(plan_groups, math.prod(len(k.domain) for k in group_keys))
    skip = rs.one_per_unit
    if skip:
        plan_rows, plan_groups = 1, 1
        notes.append("bounding skipped: rows_per_unit = 1")
    key_filter = domain_filter([(c, k.domain) for (c, _), k in zip(key_cols, group_keys)])
    units_column = "units" if partition_selection else None
    where_sql = render(rs.where) if rs.where is not None else None
    rows = rows_layer(rs.unit_sql, key_cols + aggs.values, rs.from_sql, where_sql)
    if skip:
        shape = "rows"
    elif any(a.kind == "quantile" for a in aggs.list):
        shape = "sample"
    else:
        shape = "units"
    # the group limit binds only when a unit could reach more groups than it
    groups_possible = math.prod(len(k.domain) for k in group_keys) if not partition_selection else None
    group_limit = plan_groups if group_keys and (groups_possible is None or plan_groups < groups_possible) \
        else None
    if shape != "rows" and group_keys and group_limit is None:
        notes.append(f"group limit not binding: max_groups = {plan_groups} covers every group")
    bounded_sql = build_bounded_sql(rows, [c for c, _ in key_cols], aggs.measured, shape=shape,
                                    key_filter=key_filter, max_rows=plan_rows, max_groups=group_limit,
                                    units_column=units_column)
    if rs.fan_out > 1:
        notes.append(f"join fan-out {rs.fan_out} folded into max_rows")
    fingerprint = plan_fingerprint(policy.name, bounded_sql, canonical_outputs, canonical_post, limit)
    return BoundedPlan(
        dataset=policy.name, tables=tuple(sorted(rs.tables)), group_keys=tuple(group_keys),
        aggregates=tuple(aggs.list), outputs=tuple(outputs), bounded_sql=bounded_sql,
        max_groups=plan_groups, max_rows=plan_rows, fingerprint=fingerprint, params={"salt": salt},
        partition_selection=partition_selection, units_column=units_column, having=having,
        order_by=order_by, limit=limit, fan_out=rs.fan_out, sql=sql, notes=tuple(notes),
    )


def _reserved(name: str) -> bool:
    return name in ("units", "__unit") or (name[:1] == "a" and name[1:].isdigit()) or \
        (name[:1] == "g" and name[1:].isdigit())


def _bind_post(node: exp.Expression, scope: Scope, outputs: dict[str, exp.Expression], items) -> exp.Expression:
    """Bind a HAVING/ORDER BY expression: select aliases first, then columns."""
    aliases = {i.name: i.node for i in items if i.name is not None and isinstance(i.source, exp.Alias)}
    return bind(node, scope, identifiers=None, aliases=aliases)


def _range_domain(bound: exp.Expression, scope: Scope) -> tuple[int, ...] | None:
    """Integers a key can take by its own semantics (EXTRACT(month ...) → 1..12)."""
    if isinstance(bound, exp.Column):
        return None
    iv = interval_of(bound, scope.interval)
    if iv.integer and iv.finite and 0 <= iv.hi - iv.lo < 1000:
        return tuple(range(int(iv.lo), int(iv.hi) + 1))
    return None
