"""Name resolution: which relation and which policy column every name means.

Each relation in a FROM clause gets a generated alias (``t0``, ``t1``, ...); every
column reference is *bound*: rewritten to ``tN."column"`` with the canonical name,
and looked up to a ``ColumnInfo`` that carries the owner's facts (class, bounds,
domain, whether it is the privacy unit). Names compare after ASCII case-folding
only, so a look-alike in another script is an unknown name, as in DuckDB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from sqlglot import exp

from queries.bounds import UNBOUNDED, Interval
from queries.parse import reject
from queries.vocabulary import ColumnClass

CLASS_ORDER = {ColumnClass.PUBLIC: 0, ColumnClass.QUASI: 1, ColumnClass.SENSITIVE: 2, ColumnClass.IDENTIFIER: 3}
UNIT = "__unit"


def fold(name: str) -> str | None:
    """The case-folded name, or None for names that can match nothing."""
    if not name or not name.isascii():
        return None
    return name.lower()


@dataclass(frozen=True)
class ColumnInfo:
    name: str                      # the column's name in its relation's SQL
    cls: ColumnClass
    is_unit: bool = False
    lower: float | None = None
    upper: float | None = None
    integer: bool = False
    domain: tuple[Any, ...] | None = None
    origin: str = ""               # table.column, for messages
    sql_integer: bool = False      # its SQL type is an integer type (no NaN/inf)
    type: str | None = None        # the policy's type of its values, when it is a column's

    @property
    def names(self) -> dict[str, str]:
        """The table and column it comes from, as the fields of an error about it."""
        table, _, column = self.origin.rpartition(".")
        return {"table": table, "column": column} if table else {"column": column or self.name}

    @property
    def interval(self) -> Interval:
        if self.lower is None or self.upper is None:
            return Interval(-math.inf, math.inf, self.integer)
        return Interval(self.lower, self.upper, self.integer)


@dataclass
class Relation:
    name: str | None               # folded name the query uses for it
    alias: str                     # generated alias in the bounded SQL
    source_sql: str                # what goes in FROM (ds.table or (subquery))
    columns: dict[str, ColumnInfo]  # folded visible name -> info, in order
    private: bool
    unit: str | None               # SQL column holding the privacy unit
    max_rows: int = 1
    one_per_unit: bool = False
    max_groups: int = 1
    tables: frozenset[str] = frozenset()
    max_total: int | None = None   # rows of one unit across all groups (None: not declared)
    # public fan-out (``queries.fan_out``): rows of a public relation (None: unknown),
    # the most rows sharing one value of each of its SQL columns, and for a derived
    # relation the fan-out of the public joins inside it
    public_rows: int | None = None
    per_value: dict[str, int] = field(default_factory=dict)
    fan_out: int = 1


@dataclass
class Scope:
    sql: str
    relations: list[Relation] = field(default_factory=list)
    merged: dict[str, Relation] = field(default_factory=dict)   # USING columns -> left relation
    infos: dict[tuple[str, str], ColumnInfo] = field(default_factory=dict)

    def add(self, rel: Relation) -> None:
        if rel.name is not None and any(r.name == rel.name for r in self.relations):
            raise reject("duplicate_alias", f"the name '{rel.name}' is used for two tables in one FROM", self.sql,
                         alias=rel.name)
        self.relations.append(rel)
        for info in rel.columns.values():
            self.infos[(rel.alias, info.name)] = info

    def relation_named(self, name: str | None) -> Relation | None:
        for rel in self.relations:
            if rel.name is not None and rel.name == name:
                return rel
        return None

    def resolve(self, col: exp.Column) -> tuple[Relation, ColumnInfo]:
        if col.args.get("db") is not None or col.args.get("catalog") is not None:
            raise reject("unknown_column", f"unknown column '{col.sql(dialect='duckdb')}'", self.sql, col,
                         column=col.name)
        name = fold(col.name)
        qualifier = col.table
        if qualifier:
            rel = self.relation_named(fold(qualifier))
            if rel is None:
                raise reject("unknown_table", f"no table or alias '{qualifier}' in this FROM clause", self.sql, col,
                             table=qualifier)
            info = rel.columns.get(name) if name else None
            if info is None:
                raise reject("unknown_column", f"unknown column '{col.name}' in '{qualifier}'", self.sql, col,
                             column=col.name, table=qualifier)
            return rel, info
        if name in self.merged:
            rel = self.merged[name]
            return rel, rel.columns[name]
        found = [r for r in self.relations if name is not None and name in r.columns]
        if name is None or not found:
            raise reject("unknown_column", f"unknown column '{col.name}'", self.sql, col, column=col.name)
        if len(found) > 1:
            raise reject("ambiguous_column", f"column '{col.name}' is ambiguous: qualify it with a table name",
                         self.sql, col, column=col.name)
        return found[0], found[0].columns[name]

    def info(self, col: exp.Column) -> ColumnInfo | None:
        """The info of an already bound column."""
        return self.infos.get((col.table, col.name))

    def type_of(self, col: exp.Column) -> str | None:
        """The policy type of a bound column (None when computed or unknown)."""
        info = self.info(col)
        return info.type if info is not None else None

    def interval(self, col: exp.Column) -> Interval:
        info = self.info(col)
        return info.interval if info is not None else UNBOUNDED

    def values(self, col: exp.Column) -> tuple[Any, ...] | None:
        """Public values of a bound column (its domain, or a short integer range)."""
        info = self.info(col)
        if info is None or info.cls == ColumnClass.IDENTIFIER:
            return None
        if info.domain is not None:
            return info.domain
        if info.integer and info.lower is not None and info.upper is not None:
            lo, hi = math.ceil(info.lower), math.floor(info.upper)
            if 0 <= hi - lo < 1000:
                return tuple(range(lo, hi + 1))
        return None


def rebuild(node: exp.Expr, fn: Callable[[exp.Expr], exp.Expr | None]) -> exp.Expr:
    """A copy of ``node`` in which ``fn`` may replace subtrees (top-down; a
    replaced subtree is not descended into). Token positions are kept."""
    out = fn(node)
    if out is not None:
        return out
    args: dict[str, Any] = {}
    for key, value in node.args.items():
        if isinstance(value, exp.Expression):
            args[key] = rebuild(value, fn)
        elif isinstance(value, list):
            args[key] = [rebuild(v, fn) if isinstance(v, exp.Expression) else v for v in value]
        else:
            args[key] = value
    new = node.__class__(**args)
    meta = getattr(node, "_meta", None)
    if meta:
        new._meta = dict(meta)
    return new


def bound_column(rel: Relation, info: ColumnInfo, like: exp.Expr | None = None) -> exp.Column:
    col = exp.Column(this=exp.Identifier(this=info.name, quoted=True), table=exp.Identifier(this=rel.alias))
    meta = getattr(like, "_meta", None) if like is not None else None
    if meta:
        col._meta = dict(meta)
    elif like is not None:
        # keep a span: borrow the first located identifier under the original
        for ident in like.find_all(exp.Identifier):
            if ident_meta := getattr(ident, "_meta", None):
                col._meta = dict(ident_meta)
                break
    return col


def bind(node: exp.Expr, scope: Scope, *, identifiers: str | None,
         allow_aggregates: bool = True, aliases: dict[str, exp.Expr] | None = None) -> exp.Expr:
    """Bind every column under ``node``. ``identifiers`` is the refusal code used
    when an identifier-class column appears (None allows them)."""
    sql = scope.sql

    def visit(n: exp.Expr) -> exp.Expr | None:
        if isinstance(n, exp.Column):
            if isinstance(n.this, exp.Star):
                raise reject("unsupported_syntax", "'*' is only allowed in a SELECT list or COUNT(*)", sql, n)
            if aliases and not n.table:
                name = fold(n.name)
                if name in aliases and not any(name in r.columns for r in scope.relations):
                    return aliases[name].copy()
            rel, info = scope.resolve(n)
            if identifiers is not None and info.cls == ColumnClass.IDENTIFIER:
                raise reject(identifiers, _IDENTIFIER_MESSAGES[identifiers].format(name=info.origin), sql, n,
                             **info.names)
            return bound_column(rel, info, n)
        if isinstance(n, exp.AggFunc) and not allow_aggregates:
            raise reject("aggregate_not_allowed", "aggregates are not allowed here", sql, n)
        return None

    out = rebuild(node, visit)
    return harden(out)


def harden(node: exp.Expr) -> exp.Expr:
    """Casts become TRY_CAST and divisors NULLIF(d, 0): the bounded SQL never
    fails because of a value in the data."""
    def visit(n: exp.Expr) -> exp.Expr | None:
        if type(n) is exp.Cast:
            return exp.TryCast(this=harden(n.this), to=n.to.copy())
        if isinstance(n, (exp.Div, exp.IntDiv, exp.Mod)):
            divisor = n.expression
            if not (isinstance(divisor, exp.Literal) and not divisor.is_string and _nonzero(divisor.this)):
                if not isinstance(divisor, exp.Nullif):
                    divisor = exp.Nullif(this=harden(divisor), expression=exp.Literal.number(0))
            kwargs = dict(n.args)
            kwargs["this"] = harden(n.this)
            kwargs["expression"] = divisor if isinstance(divisor, exp.Nullif) else harden(divisor)
            new = n.__class__(**kwargs)
            if n_meta := getattr(n, "_meta", None):
                new._meta = dict(n_meta)
            return new
        return None
    return rebuild(node, visit)


def _nonzero(text: str) -> bool:
    try:
        return float(text) != 0
    except ValueError:
        return False


_IDENTIFIER_MESSAGES = {
    "identifier_in_output": "identifier column {name} cannot appear in the output",
    "identifier_in_filter": "identifier column {name} cannot be used in a filter",
    "identifier_in_group": "identifier column {name} cannot be a group key",
    "identifier_in_aggregate": "identifier column {name} can only be counted",
    "identifier_in_expression": "identifier column {name} cannot be used in an expression",
}


def widest_class(infos: list[ColumnInfo]) -> ColumnClass:
    if not infos:
        return ColumnClass.PUBLIC
    return max((i.cls for i in infos), key=lambda c: CLASS_ORDER.get(c, 2))
