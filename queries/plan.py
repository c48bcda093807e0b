"""``plan_query``: SQL text + dataset policy → ``BoundedPlan``."""

from __future__ import annotations

import math
from collections.abc import Mapping

from sqlglot import exp

from queries.allowlist import PRIVATE_AGGREGATES, check_allowed, literal_quantile
from queries.bounds import MAX_EXACT, Interval, interval_of
from queries.domains import derive_domain
from queries.errors import QueryRejected
from queries.fingerprint import plan_fingerprint
from queries.model import Aggregate, BoundedPlan, GroupKey, OutputColumn, PublicTableStats
from queries.parse import parse_select, reject, whole_span
from queries.policy import DatasetPolicy
from queries.relations import Context, check_clauses, collect_ctes, row_source
from queries.measures import Measured, bounded_sql as build_bounded_sql
from queries.rewrite import candidate_grid, clamp, domain_filter, render, rows_layer
from queries.scope import Scope, bind
from queries.select_list import expand_items, group_expressions, replace_terms
from queries.total import typed_membership
from queries.vocabulary import COUNT_KINDS, VARIANCE_KINDS, AggregateKind, Classification

MEASURES: dict[AggregateKind, tuple[str, ...]] = {
    AggregateKind.COUNT: ("count",), AggregateKind.COUNT_UNITS: ("count",), AggregateKind.SUM: ("sum",),
    AggregateKind.AVG: ("sum", "count"),
    **{kind: ("sum", "sumsq", "count") for kind in VARIANCE_KINDS},
    AggregateKind.QUANTILE: ("lt", "gt"),
}

# Generated integer sums are HUGEINT over fewer than 2^63 rows (DuckDB counts rows
# in BIGINT): a unit's clamped contribution must stay within 2^62 for a sum, and a
# unit's sum of squares within 2^60 (the raw squares rebuilt from the centred ones
# add a few such terms), so no total can reach 2^127.
MAX_UNIT_SUM = 2**62
MAX_UNIT_SQUARES = 2**60


class _Aggregates:
    """The private aggregates of one query, deduplicated, with their measures."""

    def __init__(self, ctx: Context, scope: Scope, sql: str) -> None:
        self.ctx, self.scope, self.sql = ctx, scope, sql
        self.nodes: list[exp.Expr] = []       # the aggregate as written, for spans
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

    def add(self, agg: exp.AggFunc) -> exp.Expr:
        scope, sql = self.scope, self.sql
        kind = PRIVATE_AGGREGATES.get(type(agg))
        if kind is None:
            raise reject("aggregate_not_allowed", f"{agg.key.upper()} is not a private aggregate "
                         "(allowed: COUNT, SUM, AVG, VAR, STDDEV, MEDIAN, QUANTILE_CONT)", sql, agg,
                         function=agg.key.upper())
        arg = agg.this
        if arg is not None and arg.find(exp.AggFunc):
            raise reject("nested_aggregate", "aggregates cannot be nested", sql, agg)
        distinct = isinstance(arg, exp.Distinct)
        lower, upper, integer, q, value = 0.0, 1.0, True, None, None
        if kind == AggregateKind.COUNT:
            if distinct:
                target = arg.expressions[0] if len(arg.expressions) == 1 else None
                info = scope.info(target) if isinstance(target, exp.Column) else None
                if info is None or not info.is_unit:
                    raise reject("distinct_not_allowed", "COUNT(DISTINCT ...) is only allowed on the privacy unit "
                                 f"({_unit_name(scope)})", sql, agg)
                kind = AggregateKind.COUNT_UNITS
            elif arg is not None and not isinstance(arg, exp.Star):
                if not isinstance(arg, exp.Column):
                    self._no_identifiers(arg)
                value = self.value(self.ctx.scalars.emit(arg, scope.type_of))
        else:
            if distinct:
                raise reject("distinct_not_allowed", "DISTINCT is only allowed as COUNT(DISTINCT <unit>)", sql, agg)
            self._no_identifiers(arg)
            iv = interval_of(arg, scope.interval)
            if not iv.finite:
                infos = [scope.info(c) for c in arg.find_all(exp.Column)]
                origins = sorted({i.origin for i in infos if i is not None})
                names = ", ".join(origins) or "the argument"
                raise reject("unbounded_aggregate", f"{agg.key.upper()} needs bounds: {names} has no declared "
                             "min/max; clamp it with LEAST(GREATEST(x, lo), hi)", sql, agg,
                             function=agg.key.upper(), columns=origins)
            lower, upper, integer = float(iv.lo), float(iv.hi), iv.integer
            info = scope.info(arg) if isinstance(arg, exp.Column) else None
            if max(abs(iv.lo), abs(iv.hi)) > MAX_EXACT:
                raise reject("bounds_too_large", f"{agg.key.upper()} needs bounds within ±2^53 "
                             f"(about 9.0e15); its argument lies in [{iv.lo:g}, {iv.hi:g}]: clamp it with "
                             "LEAST(GREATEST(x, lo), hi)", sql, agg, function=agg.key.upper())
            text = self.ctx.scalars.emit(arg, scope.type_of)
            value = self.value(clamp(text, iv, integer_column=info is not None and info.sql_integer))
            if kind == AggregateKind.QUANTILE:
                q = 0.5 if isinstance(agg, exp.Median) else literal_quantile(agg, sql)
        canonical = f"{kind}|{value}|{q}"
        if canonical in self.keys:
            return exp.column(self.keys[canonical])
        name = f"a{len(self.list)}"
        self.keys[canonical] = name
        columns = {role: f"{name}_{role}" for role in MEASURES[kind]}
        candidates: tuple[float, ...] = ()
        step, base = 1.0, 0
        if kind == AggregateKind.QUANTILE:
            step, base, candidates = candidate_grid(Interval(lower, upper, integer))
        agg_ = Aggregate(name=name, kind=kind, columns=columns, lower=lower, upper=upper, integer=integer,
                         quantile=q, candidates=candidates, sql=render(_display(agg)),
                         counts_rows=kind == AggregateKind.COUNT and value is None)
        self.list.append(agg_)
        self.nodes.append(agg)
        self.measured.append(Measured(agg_, value, step, base))
        return exp.column(name)

    def _no_identifiers(self, node: exp.Expr) -> None:
        for col in node.find_all(exp.Column):
            info = self.scope.info(col)
            if info is not None and info.cls == "identifier":
                raise reject("identifier_in_aggregate", f"identifier column {info.origin} can only be counted",
                             self.sql, col, **info.names)


def _unit_name(scope: Scope) -> str:
    for rel in scope.relations:
        for info in rel.columns.values():
            if info.is_unit:
                return info.origin
    return "the privacy unit"


def _display(agg: exp.Expr) -> exp.Expr:
    """The aggregate as written, with generated table aliases dropped."""
    def strip(n: exp.Expr) -> exp.Expr | None:
        if isinstance(n, exp.Column):
            return exp.column(n.name)
        return None
    from queries.scope import rebuild
    return rebuild(agg, strip)


def _limits(value: int | None, policy_value: int, what: str, sql: str) -> int:
    if value is None:
        return policy_value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QueryRejected("invalid_limit", f"{what} must be a positive integer", whole_span(sql))
    return min(value, policy_value)


def plan_query(sql: str, policy: DatasetPolicy, *, tables: frozenset[str] | None = None,
               max_groups: int | None = None, max_rows: int | None = None, salt: str = "",
               public_stats: Mapping[str, PublicTableStats] | None = None,
               max_fan_out: int | None = None) -> BoundedPlan:
    """Check ``sql`` against ``policy`` and plan it; raises only ``QueryRejected``.

    With ``max_fan_out``, joins with public tables may turn one private row into at
    most that many rows, bounded from ``public_stats`` (``queries.fan_out``); a
    public table without statistics is then refused."""
    try:
        return _plan(sql, policy, tables, max_groups, max_rows, salt, public_stats, max_fan_out)
    except QueryRejected:
        raise
    except RecursionError:
        raise QueryRejected("too_complex", "the query is nested too deeply",
                            whole_span(sql) if isinstance(sql, str) else None) from None


def _plan(sql: str, policy: DatasetPolicy, tables: frozenset[str] | None, max_groups: int | None,
          max_rows: int | None, salt: str, public_stats: Mapping[str, PublicTableStats] | None,
          max_fan_out: int | None) -> BoundedPlan:
    select = parse_select(sql)
    if max_fan_out is not None and (isinstance(max_fan_out, bool) or not isinstance(max_fan_out, int)
                                    or max_fan_out < 1):
        raise QueryRejected("invalid_limit", "max_fan_out must be a positive integer", whole_span(sql))
    if policy.classification == Classification.RESTRICTED:
        raise QueryRejected("dataset_restricted", f"dataset '{policy.name}' is restricted: it cannot be queried",
                            whole_span(sql), dataset=policy.name)
    if not policy.privacy_unit:
        raise QueryRejected("no_private_table", f"dataset '{policy.name}' has no privacy unit: download its "
                            "tables from the catalog instead", whole_span(sql), dataset=policy.name)
    check_allowed(sql, select)
    check_clauses(select, sql, top=True)
    licensed = frozenset(t.name for t in policy.tables) if tables is None else frozenset(tables)
    ctx = Context(sql=sql, policy=policy, licensed=licensed, public_stats=public_stats, max_fan_out=max_fan_out)
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
    replacements: list[tuple[exp.Expr, exp.Expr]] = []
    canonical_keys: list[tuple[exp.Expr, exp.Expr]] = []
    key_cols: list[tuple[str, str]] = []
    used_names: set[str] = set()
    for bound, _ in keys_raw:
        if any(bound == b for b, _ in replacements):
            continue
        col = f"g{len(group_keys)}"
        item = next((i for i in items if i.node == bound and i.name), None)
        if item is not None and item.name:
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
        key_cols.append((col, ctx.scalars.emit(bound, scope.type_of)))

    aggs = _Aggregates(ctx, scope, sql)
    has_aggregates = any(i.node.find(exp.AggFunc) for i in items) or select.args.get("having") is not None \
        or any(o.find(exp.AggFunc) for o in (select.args["order"].expressions if select.args.get("order") else []))
    outputs: list[OutputColumn] = []
    canonical_outputs: list[str] = []
    output_nodes: dict[str, exp.Expr] = {}
    for item in items:
        node = replace_terms(item.node, replacements, aggs.add, scope, has_aggregates=has_aggregates)
        canon = replace_terms(item.node, canonical_keys, aggs.add, scope, has_aggregates=has_aggregates)
        name = item.label if item.name is None else item.name
        # an output may not take an aggregate's name (a0, a1, ...) for something else:
        # HAVING and ORDER BY over the noisy table would read the output instead
        if name in output_nodes or (_aggregate_like(name) and render(node) != name.lower()):
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
            if isinstance(target, exp.Literal) and not target.is_string and str(target.this).isdigit():
                position = int(target.this)
                if not 1 <= position <= len(outputs):
                    raise reject("invalid_order_by", f"ORDER BY position {position} is not in the select list",
                                 sql, target, position=position)
                order_text, order_canon = outputs[position - 1].expr, canonical_outputs[position - 1]
            else:
                bound = _bind_post(target, scope, output_nodes, items)
                order_text = render(replace_terms(bound, replacements, aggs.add, scope, has_aggregates=True))
                order_canon = render(replace_terms(bound, canonical_keys, aggs.add, scope, has_aggregates=True))
            direction = (" DESC" if ordered.args.get("desc") else "") + \
                (" NULLS FIRST" if ordered.args.get("nulls_first") else "")
            parts.append(order_text + direction)
            canon_parts.append(order_canon + direction)
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
        plan_groups = min(plan_groups, math.prod(len(k.domain or ()) for k in group_keys))
    skip = rs.one_per_unit
    if skip:
        plan_rows, plan_groups = 1, 1
        notes.append("bounding skipped: rows_per_unit = 1")
    elif group_keys and plan_groups > 1 and (sources := _keys_follow_unit(canonical_keys, scope)):
        plan_groups = 1
        notes.append(f"one group per unit: the group keys are columns of {', '.join(sources)} (one row per unit), "
                     "so max_groups = 1, still enforced")
    plan_total = None if skip else rs.max_total
    if plan_total is not None:
        # a unit's rows across all groups bound its rows in each group and the groups it reaches
        plan_rows, plan_groups = min(plan_rows, plan_total), min(plan_groups, plan_total)
        if plan_total >= plan_rows * plan_groups:
            plan_total = None                       # implied by the other two bounds: nothing to enforce
        else:
            notes.append(f"at most {plan_total} rows per unit in total (max_total_rows_per_unit), "
                         f"{plan_rows} in one group, {plan_groups} groups")
    _check_magnitudes(aggs, plan_rows, sql)
    key_filter = domain_filter([(c, k.domain, k.domain is not None and typed_membership(bound, k.domain, scope.type_of))
                                for (c, _), k, (bound, _) in zip(key_cols, group_keys, canonical_keys)])
    units_column = "units" if partition_selection else None
    where_sql = ctx.scalars.emit(rs.where, scope.type_of, condition=True) if rs.where is not None else None
    rows = rows_layer(rs.unit_sql, key_cols + aggs.values, rs.from_sql, where_sql)
    if skip:
        shape = "rows"
    elif any(a.kind == AggregateKind.QUANTILE for a in aggs.list):
        shape = "sample"
    else:
        shape = "units"
    # the group limit binds only when a unit could reach more groups than it
    groups_possible = math.prod(len(k.domain or ()) for k in group_keys) if not partition_selection else None
    group_limit = plan_groups if group_keys and (groups_possible is None or plan_groups < groups_possible) \
        else None
    if shape != "rows" and group_keys and group_limit is None:
        notes.append(f"group limit not binding: max_groups = {plan_groups} covers every group")
    if shape == "units" and plan_total is not None and group_limit is None \
            and all((a.max_rows if a.max_rows is not None else plan_rows) >= plan_total for a in aggs.list):
        # each (unit, group) keeps at most plan_total rows, so the per-unit clamps would change nothing
        shape = "total"
    bounded_sql = build_bounded_sql(rows, [c for c, _ in key_cols], aggs.measured, shape=shape,
                                    key_filter=key_filter, max_rows=plan_rows, max_groups=group_limit,
                                    units_column=units_column, max_total=plan_total)
    if rs.fan_out > 1:
        notes.append(f"join fan-out {rs.fan_out} folded into max_rows")
    fingerprint = plan_fingerprint(policy.name, bounded_sql, canonical_outputs, canonical_post, limit)
    return BoundedPlan(
        dataset=policy.name, tables=tuple(sorted(rs.tables)), group_keys=tuple(group_keys),
        aggregates=tuple(aggs.list), outputs=tuple(outputs), bounded_sql=bounded_sql,
        max_groups=plan_groups, max_rows=plan_rows, fingerprint=fingerprint, params={"salt": salt},
        partition_selection=partition_selection, units_column=units_column, having=having,
        order_by=order_by, limit=limit, fan_out=rs.fan_out, sql=sql, notes=tuple(notes),
        user_scalars=tuple(ctx.scalars.texts), public_fan_out=rs.public_fan_out, max_total=plan_total,
    )


def _check_magnitudes(aggs: _Aggregates, max_rows: int, sql: str) -> None:
    """Refuse bounds whose generated sums could overflow (see MAX_UNIT_SUM)."""
    for agg, node in zip(aggs.list, aggs.nodes):
        if agg.kind in COUNT_KINDS:
            continue
        r = int(agg.max_rows if agg.max_rows is not None else max_rows)
        b = max(abs(agg.lower), abs(agg.upper))
        if r * b > MAX_UNIT_SUM:
            raise reject("bounds_too_large", f"{agg.sql}: up to {r} rows per unit of values within ±{b:g} could "
                         "sum beyond 2^62; narrow the bounds", sql, node)
        if agg.integer and agg.kind in VARIANCE_KINDS and r * b * b > MAX_UNIT_SQUARES:
            raise reject("bounds_too_large", f"{agg.sql}: up to {r} rows per unit of integers within ±{b:g} have "
                         "squares beyond 2^60; narrow the bounds or compute over CAST(x AS DOUBLE)", sql, node)


def _aggregate_like(name: str) -> bool:
    return name[:1].lower() == "a" and name[1:].isdigit()


def _keys_follow_unit(keys: list[tuple[exp.Expr, exp.Expr]], scope: Scope) -> list[str]:
    """The tables whose columns every group key is built from, when each is a private
    relation with one row per unit (a ``rows_per_unit = 1`` table, or a subquery
    aggregated per unit); otherwise none.

    Private relations are joined on the unit, so every joined row of a unit sees
    that unit's one row of such a relation: a key computed from its columns alone
    takes one value per unit, and each unit is in one group. The planner then
    charges ``max_groups = 1``; the bounded SQL still keeps at most one group per
    unit (the keyed-hash window), so the bound holds even where the inference would
    not. A key with a column of any other relation (a table with several rows per
    unit, or a public table) leaves the policy's bound."""
    by_alias = {r.alias: r for r in scope.relations}
    sources: list[str] = []
    for bound, _ in keys:
        for column in bound.find_all(exp.Column):
            rel = by_alias.get(column.table)
            if rel is None or not (rel.private and rel.one_per_unit):
                return []
            label = "/".join(sorted(rel.tables))
            if label not in sources:
                sources.append(label)
    return sources


def _reserved(name: str) -> bool:
    return name in ("units", "__unit") or (name[:1] == "a" and name[1:].isdigit()) or \
        (name[:1] == "g" and name[1:].isdigit())


def _bind_post(node: exp.Expr, scope: Scope, outputs: dict[str, exp.Expr], items) -> exp.Expr:
    """Bind a HAVING/ORDER BY expression: select aliases first, then columns."""
    aliases = {i.name: i.node for i in items if i.name is not None and isinstance(i.source, exp.Alias)}
    return bind(node, scope, identifiers=None, aliases=aliases)


def _range_domain(bound: exp.Expr, scope: Scope) -> tuple[int, ...] | None:
    """Integers a key can take by its own semantics (EXTRACT(month ...) → 1..12)."""
    if isinstance(bound, exp.Column):
        return None
    iv = interval_of(bound, scope.interval)
    if iv.integer and iv.finite and 0 <= iv.hi - iv.lo < 1000:
        return tuple(range(int(iv.lo), int(iv.hi) + 1))
    return None
