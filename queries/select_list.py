"""The select list and GROUP BY of one SELECT: stars expanded, aliases and
positions resolved, aggregates and group keys replaced by what stands for them.

Every name is resolved before anything is judged, so ``*``, ``GROUP BY ALL``,
``GROUP BY 1``/``#1`` and select aliases cannot smuggle a column past a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from sqlglot import exp

from queries.parse import reject, span_of
from queries.scope import Scope, bind, bound_column, fold
from queries.vocabulary import ColumnClass


@dataclass
class Item:
    name: str | None          # folded output name (alias, or the column's name)
    label: str                # display name as written
    node: exp.Expr      # bound expression
    source: exp.Expr    # the original node, for spans


def expand_items(select: exp.Select, scope: Scope) -> list[Item]:
    sql = scope.sql
    items: list[Item] = []
    for raw in select.expressions:
        node = raw.this if isinstance(raw, exp.Alias) else raw
        star_rel = None
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            star_rel = scope.relation_named(fold(node.table))
            if star_rel is None:
                raise reject("unknown_table", f"no table or alias '{node.table}' in this FROM clause", sql, node,
                             table=node.table)
            node = node.this
        if isinstance(node, exp.Star):
            for key in ("replace", "rename"):
                if node.args.get(key):
                    raise reject("unsupported_syntax", f"* {key.upper()} is not allowed", sql, raw)
            excluded = {fold(e.name) for e in node.args.get("except_") or []}
            for rel in ([star_rel] if star_rel else scope.relations):
                for column, info in rel.columns.items():
                    if column in excluded or (star_rel is None and scope.merged.get(column, rel) is not rel):
                        continue
                    items.append(Item(column, column, bound_column(rel, info, raw), raw))
            continue
        if isinstance(raw, exp.Alias):
            label = raw.alias
            name = fold(label)
        elif isinstance(node, exp.Column):
            label, name = node.name, fold(node.name)
        else:
            span = span_of(sql, raw)
            label, name = (sql[span.start:span.end].strip() or raw.sql(dialect="duckdb")), None
        items.append(Item(name, label, bind(node, scope, identifiers=None), raw))
    return items


def group_expressions(select: exp.Select, items: list[Item], scope: Scope, *,
                      identifiers: str | None = "identifier_in_group") -> list[tuple[exp.Expr, exp.Expr]]:
    """(bound key, original node) per GROUP BY entry."""
    sql = scope.sql
    group = select.args.get("group")
    if group is None:
        return []
    for key in ("grouping_sets", "cube", "rollup", "totals"):
        if group.args.get(key):
            raise reject("unsupported_syntax", f"GROUP BY {key.upper()} is not allowed", sql, group)
    out: list[tuple[exp.Expr, exp.Expr]] = []
    if group.args.get("all"):
        for item in items:
            if not item.node.find(exp.AggFunc):
                _check_identifiers(item.node, scope, identifiers, item.source)
                out.append((item.node, item.source))
    for node in group.expressions:
        position = None
        if isinstance(node, exp.PositionalColumn):
            position = node.this
        elif isinstance(node, exp.Literal) and not node.is_string:
            position = node
        if position is not None:
            text = str(position.this)
            index = int(text) if text.isdigit() else 0
            if not 1 <= index <= len(items):
                raise reject("invalid_group_by", f"GROUP BY position {text} is not in the select list", sql, node)
            item = items[index - 1]
            if item.node.find(exp.AggFunc):
                raise reject("aggregate_in_group_by", "cannot group by an aggregate", sql, node)
            _check_identifiers(item.node, scope, identifiers, node)
            out.append((item.node, node))
            continue
        if node.find(exp.AggFunc):
            raise reject("aggregate_in_group_by", "cannot group by an aggregate", sql, node)
        if isinstance(node, exp.Column) and not node.table:
            name = fold(node.name)
            known = any(name in r.columns for r in scope.relations)
            alias_item = next((i for i in items if i.name == name and isinstance(i.source, exp.Alias)), None)
            if not known and alias_item is not None:
                if alias_item.node.find(exp.AggFunc):
                    raise reject("aggregate_in_group_by", "cannot group by an aggregate", sql, node)
                _check_identifiers(alias_item.node, scope, identifiers, node)
                out.append((alias_item.node, node))
                continue
        out.append((bind(node, scope, identifiers=identifiers, allow_aggregates=False), node))
    return out


def _check_identifiers(node: exp.Expr, scope: Scope, code: str | None, where: exp.Expr) -> None:
    if code is None:
        return
    for col in node.find_all(exp.Column):
        info = scope.info(col)
        if info is not None and info.cls == ColumnClass.IDENTIFIER:
            raise reject(code, f"identifier column {info.origin} cannot be a group key", scope.sql, where, **info.names)


def replace_terms(node: exp.Expr, keys: list[tuple[exp.Expr, exp.Expr]],
                  on_aggregate: Callable[[exp.AggFunc], exp.Expr], scope: Scope, *,
                  has_aggregates: bool) -> exp.Expr:
    """``node`` with its aggregates and group keys replaced; any other column is
    an error (not grouped, or row-level output)."""
    from queries.scope import rebuild

    def visit(n: exp.Expr) -> exp.Expr | None:
        if isinstance(n, exp.AggFunc):
            return on_aggregate(n)
        for bound, replacement in keys:
            if n == bound:
                return replacement.copy()
        if isinstance(n, exp.Column):
            info = scope.info(n)
            if info is not None and info.cls == ColumnClass.IDENTIFIER:
                raise reject("identifier_in_output", f"identifier column {info.origin} cannot appear in the output",
                             scope.sql, n, **info.names)
            if not has_aggregates:
                raise reject("no_aggregate", "row-level output is not allowed: aggregate with COUNT, SUM, AVG, ...",
                             scope.sql, n)
            name = info.origin if info is not None else n.name
            raise reject("not_grouped", f"column {name} must be in GROUP BY or inside an aggregate", scope.sql, n,
                         **(info.names if info is not None else {"column": n.name}))
        return None

    return rebuild(node, visit)
