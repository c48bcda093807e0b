"""Total execution: no value in the data can make the bounded SQL fail.

Every user scalar expression that reaches the bounded SQL (group keys, aggregate
arguments, ``WHERE``, ``JOIN ... ON``, everything inside CTEs and subqueries) goes
through :func:`total` on its way to text. The transform is one rule, not a list of
known-bad functions:

* a node on the allow-list of **total nodes** (column, literal, ``NULL``, boolean,
  ``AND``/``OR``/``NOT``, parentheses, ``IS [NOT] NULL``) is kept, and its children
  are transformed in turn;
* a **typed comparison** is kept too (see below), its operands transformed in turn;
* any other node is evaluated under DuckDB's ``TRY(...)``: a runtime error of the
  node or of anything under it becomes ``NULL`` for that row.

Where a value is read as a condition (``WHERE``, ``ON``, ``HAVING``, the operands of
``AND``/``OR``/``NOT``), DuckDB casts it to ``BOOLEAN`` outside any ``TRY``, and that
cast fails on ``'abc'``; so there, anything not known to be boolean is evaluated as
``TRY(CAST(x AS BOOLEAN))``.

Typed comparisons keep hash joins and filter pushdown (``TRY(a = b)`` turns a hash
join into a nested-loop join and hides ``col = 'x'`` from zone maps). A comparison
(``=``, ``<>``, ``<``, ..., ``IS [NOT] DISTINCT FROM``, ``IN (list)``, ``BETWEEN``,
``LIKE``/``ILIKE`` without ``ESCAPE``) stays unwrapped only when every operand
belongs to the same *safe family* and the comparison therefore performs no per-row
cast:

* ``string``: VARCHAR columns, string literals, and string functions (their result
  is VARCHAR whatever their input);
* ``integer``: integer columns, non-negative integer literals that fit BIGINT, and
  date parts (``YEAR(d)``, ``EXTRACT(month FROM d)``, ...: BIGINT). Integer types
  widen to a common type without a check that can fail; the one exception in
  DuckDB, an unsigned 128-bit column against a signed value, cannot arise: data is
  ingested from CSV and Parquet, which have no such type;
* ``date``: DATE columns and typed constants ``DATE '...'``;
* ``boolean``: BOOLEAN columns and ``TRUE``/``FALSE``.

Floats (DOUBLE or DECIMAL, a comparison of which can cast a DECIMAL and overflow),
timestamps (of several precisions), a string literal against a date column (cast
per row when the literal is not a valid date) and anything of unknown type are
wrapped.

``UserScalars`` records the exact text of every user scalar placed in the bounded
SQL, and :func:`unwrapped_user_scalars` walks them again: the test suite runs it on
every accepted golden query.
"""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Callable

import sqlglot
from sqlglot import exp

TypeOf = Callable[[exp.Column], "str | None"]

# Node kinds that cannot fail by themselves; their children are transformed in turn.
TOTAL_NODES: tuple[type, ...] = (exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.And, exp.Or, exp.Not,
                                 exp.Paren)
# ``x IS NULL`` (``IS NOT NULL`` is ``NOT (x IS NULL)``) is total too: see _is_null_test.

COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
PATTERNS = (exp.Like, exp.ILike)
SAFE_FAMILIES = frozenset({"string", "integer", "date", "boolean"})
# Functions whose DuckDB result is VARCHAR whatever the type of their arguments.
STRING_RESULTS = (exp.Lower, exp.Upper, exp.Trim, exp.Concat, exp.DPipe, exp.Substring, exp.Left, exp.Right,
                  exp.Monthname, exp.Dayname, exp.Pad, exp.Repeat, exp.TimeToStr)
# Functions whose DuckDB result is BIGINT.
INTEGER_RESULTS = (exp.Year, exp.Quarter, exp.Month, exp.Week, exp.Day, exp.DayOfWeek, exp.DayOfWeekIso,
                   exp.DayOfMonth, exp.DayOfYear, exp.Hour, exp.Minute, exp.Second, exp.Length)
INTEGER_PARTS = frozenset({"year", "month", "day", "quarter", "week", "dayofweek", "dow", "isodow", "dayofyear",
                           "doy", "hour", "minute", "second", "decade", "century", "millennium", "yearweek",
                           "isoyear", "dayofmonth", "weekday", "era"})
# Results that are BOOLEAN, so a condition needs no cast.
BOOLEAN_RESULTS = (*COMPARISONS, *PATTERNS, exp.In, exp.Between, exp.Is, exp.StartsWith, exp.Contains, exp.And,
                   exp.Or, exp.Not, exp.Boolean)
_MAX_BIGINT = 2**63 - 1


def _is_null_test(node: exp.Expr) -> bool:
    return isinstance(node, exp.Is) and isinstance(node.expression, exp.Null)


def _literal_family(node: exp.Literal) -> str | None:
    if node.is_string:
        return "string"
    text = str(node.this)
    if text.isdigit() and int(text) <= _MAX_BIGINT:
        return "integer"
    return None


def family(node: exp.Expr, type_of: TypeOf) -> str | None:
    """The safe family of an operand's DuckDB type, or None when not known to be safe."""
    if isinstance(node, exp.Paren):
        return family(node.this, type_of)
    if isinstance(node, exp.Column):
        found = type_of(node)
        return found if found in SAFE_FAMILIES else None
    if isinstance(node, exp.Literal):
        return _literal_family(node)
    if isinstance(node, exp.Boolean):
        return "boolean"
    if isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.this, exp.Literal) and node.this.is_string \
            and isinstance(node.to, exp.DataType) and node.to.this == exp.DataType.Type.DATE:
        return "date"   # DATE '2025-01-01': a constant, folded before any row is read
    if isinstance(node, STRING_RESULTS):
        return "string"
    if isinstance(node, INTEGER_RESULTS):
        return "integer"
    if isinstance(node, exp.Extract) and str(node.this.name).lower() in INTEGER_PARTS:
        return "integer"
    return None


def _operands(node: exp.Expr) -> list[exp.Expr] | None:
    if isinstance(node, COMPARISONS):
        return [node.this, node.expression]
    if isinstance(node, PATTERNS):
        if node.args.get("escape") is not None:
            return None
        return [node.this, node.expression]
    if isinstance(node, exp.In):
        if any(node.args.get(k) is not None for k in ("query", "unnest", "field")) or not node.expressions:
            return None
        return [node.this, *node.expressions]
    if isinstance(node, exp.Between):
        if node.args.get("symmetric"):
            return None
        return [node.this, node.args["low"], node.args["high"]]
    return None


def typed_comparison(node: exp.Expr, type_of: TypeOf) -> bool:
    """True when ``node`` compares operands of one safe family (no per-row cast)."""
    operands = _operands(node)
    if operands is None:
        return False
    families = {family(o, type_of) for o in operands}
    if len(families) != 1:
        return False
    (found,) = families
    if found is None:
        return False
    return found == "string" if isinstance(node, PATTERNS) else True


def _value_literal(value: object) -> exp.Expr | None:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, int) and value >= 0:
        return exp.Literal.number(value)
    return None


def typed_membership(node: exp.Expr, values: tuple[object, ...], type_of: TypeOf) -> bool:
    """True when ``node IN (values)`` (a public domain's values) is a typed comparison."""
    literals = [_value_literal(v) for v in values]
    if not literals or any(lit is None for lit in literals):
        return False
    return typed_comparison(exp.In(this=node, expressions=literals), type_of)


def _with_children(node: exp.Expr, fn: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    args: dict[str, Any] = {}
    for key, value in node.args.items():
        if isinstance(value, exp.Expression):
            args[key] = fn(value)
        elif isinstance(value, list):
            args[key] = [fn(v) if isinstance(v, exp.Expression) else v for v in value]
        else:
            args[key] = value
    return node.__class__(**args)


def _as_boolean(node: exp.Expr) -> exp.Expr:
    return exp.Try(this=exp.Cast(this=node, to=exp.DataType.build("BOOLEAN")))


def total(node: exp.Expr, type_of: TypeOf, *, condition: bool = False) -> exp.Expr:
    """A copy of ``node`` that no value can make fail (see the module docstring).
    ``condition`` marks a position DuckDB reads as BOOLEAN."""
    if isinstance(node, exp.Paren):
        return exp.Paren(this=total(node.this, type_of, condition=condition))
    if isinstance(node, (exp.And, exp.Or, exp.Not)):
        return _with_children(node, lambda child: total(child, type_of, condition=True))
    if _is_null_test(node):
        return _with_children(node, lambda child: total(child, type_of))
    if isinstance(node, (exp.Column, exp.Literal, exp.Null, exp.Boolean)):
        if condition and not isinstance(node, (exp.Null, exp.Boolean)) and family(node, type_of) != "boolean":
            return _as_boolean(node.copy())
        return node.copy()
    if typed_comparison(node, type_of):
        return _with_children(node, lambda child: total(child, type_of))
    if condition and not isinstance(node, BOOLEAN_RESULTS):
        return _as_boolean(node.copy())
    return exp.Try(this=node.copy())


def render(node: exp.Expr) -> str:
    return node.sql(dialect="duckdb", comments=False)


class UserScalars:
    """The text of every user scalar placed in the bounded SQL, made total."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def emit(self, node: exp.Expr, type_of: TypeOf, *, condition: bool = False) -> str:
        return self.column(render(total(node, type_of, condition=condition)))

    def column(self, text: str) -> str:
        """Record ``text`` (also used for the privacy-unit column the rewrite places)."""
        if text not in self.texts:
            self.texts.append(text)
        return text


# --- the check --------------------------------------------------------------------

_USER_COLUMN = re.compile(r'\bt\d+\."(?:[^"]|"")*"')


def _plain_operand(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, (exp.Column, exp.Literal, exp.Boolean, exp.Try))


def _unwrapped(node: exp.Expr) -> list[exp.Expr]:
    """Nodes of a rendered user scalar that may fail and are not under ``TRY``."""
    if isinstance(node, (exp.Try, exp.Column, exp.Literal, exp.Null, exp.Boolean)):
        return []
    if isinstance(node, TOTAL_NODES) or _is_null_test(node):
        children = list(node.iter_expressions())
    else:
        operands = _operands(node)
        if operands is None or not all(_plain_operand(o) for o in operands):
            return [node]
        children = operands
    return [bad for child in children for bad in _unwrapped(child)]


def unwrapped_user_scalars(plan) -> list[str]:
    """Every place where a user scalar of ``plan`` reaches its bounded SQL without
    the protection of :func:`total`; empty when the plan is total.

    Walks each recorded scalar as a tree: a node that is not a total node, not a
    comparison of plain operands and not under ``TRY`` is reported. Also reports a
    recorded scalar missing from the bounded SQL, and any reference to a user
    relation's column (``tN."..."``) outside the recorded scalars."""
    problems: list[str] = []
    sql = plan.bounded_sql
    for text in plan.user_scalars:
        if text not in sql:
            problems.append(f"not in the bounded SQL: {text}")
        tree = sqlglot.parse_one(f"SELECT {text}", read="duckdb").expressions[0]
        problems += [render(bad) for bad in _unwrapped(tree)]
    rest = sql
    for text in sorted(set(plan.user_scalars), key=len, reverse=True):
        rest = rest.replace(text, " ")
    problems += [f"user column outside a checked scalar: {m}" for m in _USER_COLUMN.findall(rest)]
    return problems
