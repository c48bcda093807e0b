"""Interval arithmetic over checked expressions: the value range of an aggregate's
argument, derived from the owner's column bounds and the operator's clamps.

The bounded SQL clamps every summed value to the interval found here, so this
module decides *which* clamp is used, never *whether* one is: an interval that is
too wide costs accuracy, not privacy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

from sqlglot import exp

INF = math.inf
# Largest bound magnitude of a released or clamped value: integers up to 2^53 are
# exact as DOUBLE, so clamping through DOUBLE and casting back to BIGINT is exact
# and cannot overflow.
MAX_EXACT = 2**53
_T = exp.DataType.Type
INTEGER_TYPES = {_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT, _T.INT128, _T.UTINYINT, _T.USMALLINT, _T.UINT,
                 _T.UBIGINT, _T.MEDIUMINT}
FLOAT_TYPES = {_T.FLOAT, _T.DOUBLE, _T.DECIMAL}
_PART_RANGES = {
    "month": (1, 12), "day": (1, 31), "quarter": (1, 4), "dayofweek": (0, 6), "dow": (0, 6),
    "isodow": (1, 7), "dayofweekiso": (1, 7), "dayofmonth": (1, 31), "dayofyear": (1, 366), "doy": (1, 366),
    "week": (1, 53), "hour": (0, 23), "minute": (0, 59), "second": (0, 59),
}
_BOOLEAN_NODES = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.And, exp.Or, exp.Not, exp.Is,
                  exp.In, exp.Between, exp.Like, exp.ILike, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Boolean,
                  exp.StartsWith, exp.Contains)


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    integer: bool = False

    @property
    def finite(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def union(self, other: Interval) -> Interval:
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi), self.integer and other.integer)


UNBOUNDED = Interval(-INF, INF, False)


def _mul(a: float, b: float) -> float:
    if a == 0 or b == 0:
        return 0.0
    return a * b


def _product(a: Interval, b: Interval) -> Interval:
    values = [_mul(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return Interval(min(values), max(values), a.integer and b.integer)


def _quotient(a: Interval, b: Interval) -> Interval | None:
    if b.lo <= 0 <= b.hi:
        return None
    values = [x / y if math.isfinite(y) else 0.0 for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return Interval(min(values), max(values), False)


def _floor_ceil(i: Interval) -> Interval:
    return Interval(math.floor(i.lo) if math.isfinite(i.lo) else i.lo,
                    math.ceil(i.hi) if math.isfinite(i.hi) else i.hi, True)


def _literal(node: exp.Literal) -> Interval:
    if node.is_string:
        return UNBOUNDED
    try:
        text = node.this
        value = float(text)
    except (TypeError, ValueError):
        return UNBOUNDED
    if not math.isfinite(value):
        return UNBOUNDED
    integer = all(c.isdigit() or c == "-" for c in str(text))
    return Interval(value, value, integer)


def interval_of(node: exp.Expr, column: Callable[[exp.Column], Interval],
                override: Callable[[exp.Expr], Interval | None] | None = None) -> Interval:
    """The range of values ``node`` can take (``UNBOUNDED`` when unknown)."""
    if override is not None:
        found = override(node)
        if found is not None:
            return found
    rec = lambda n: interval_of(n, column, override)  # noqa: E731
    if isinstance(node, exp.Column):
        return column(node)
    if isinstance(node, exp.Literal):
        return _literal(node)
    if isinstance(node, exp.Paren):
        return rec(node.this)
    if isinstance(node, _BOOLEAN_NODES):
        return Interval(0, 1, True)
    if isinstance(node, exp.Neg):
        inner = rec(node.this)
        return Interval(-inner.hi, -inner.lo, inner.integer)
    if isinstance(node, exp.Add):
        a, b = rec(node.this), rec(node.expression)
        return Interval(a.lo + b.lo, a.hi + b.hi, a.integer and b.integer)
    if isinstance(node, exp.Sub):
        a, b = rec(node.this), rec(node.expression)
        return Interval(a.lo - b.hi, a.hi - b.lo, a.integer and b.integer)
    if isinstance(node, exp.Mul):
        return _product(rec(node.this), rec(node.expression))
    if isinstance(node, (exp.Div, exp.IntDiv)):
        divisor = node.expression
        if isinstance(divisor, exp.Nullif):
            divisor = divisor.this
        q = _quotient(rec(node.this), rec(divisor))
        if q is None:
            return UNBOUNDED
        if isinstance(node, exp.IntDiv):
            return _floor_ceil(q)
        return q
    if isinstance(node, exp.Mod):
        a = rec(node.this)
        divisor = node.expression.this if isinstance(node.expression, exp.Nullif) else node.expression
        b = rec(divisor)
        m = max(abs(b.lo), abs(b.hi))
        if not math.isfinite(m):
            return Interval(min(a.lo, 0), max(a.hi, 0), a.integer and b.integer) if a.finite else UNBOUNDED
        lo = 0 if a.lo >= 0 else -m
        return Interval(lo, m, a.integer and b.integer)
    if isinstance(node, exp.Abs):
        i = rec(node.this)
        if i.lo >= 0:
            return i
        if i.hi <= 0:
            return Interval(-i.hi, -i.lo, i.integer)
        return Interval(0, max(-i.lo, i.hi), i.integer)
    if isinstance(node, exp.Length):
        return Interval(0, INF, True)
    if isinstance(node, exp.Sign):
        return Interval(-1, 1, True)
    if isinstance(node, (exp.Floor, exp.Ceil, exp.Trunc)):
        return _floor_ceil(rec(node.this))
    if isinstance(node, exp.Round):
        i = rec(node.this)
        if node.args.get("decimals") is not None:
            return Interval(i.lo - 1, i.hi + 1, False) if i.finite else UNBOUNDED
        return _floor_ceil(i)
    if isinstance(node, (exp.Least, exp.Greatest)):
        parts = [rec(node.this), *(rec(e) for e in node.expressions)]
        pick = min if isinstance(node, exp.Least) else max
        return Interval(pick(p.lo for p in parts), pick(p.hi for p in parts), all(p.integer for p in parts))
    if isinstance(node, exp.Case):
        branches = [rec(i.args["true"]) for i in node.args.get("ifs") or []]
        if node.args.get("default") is not None:
            branches.append(rec(node.args["default"]))
        return _union(branches)
    if isinstance(node, exp.If):
        branches = [rec(node.args["true"])]
        if node.args.get("false") is not None:
            branches.append(rec(node.args["false"]))
        return _union(branches)
    if isinstance(node, exp.Coalesce):
        return _union([rec(node.this), *(rec(e) for e in node.expressions)])
    if isinstance(node, exp.Nullif):
        return rec(node.this)
    if isinstance(node, exp.Null):
        return Interval(INF, -INF, True)  # empty: contributes nothing to a union
    if isinstance(node, exp.Cast):
        target = node.to.this if isinstance(node.to, exp.DataType) else None
        inner = rec(node.this)
        if target in INTEGER_TYPES:
            return _floor_ceil(inner) if inner.finite else Interval(-INF, INF, True)
        if target in FLOAT_TYPES:
            return Interval(inner.lo, inner.hi, False)
        if target == exp.DataType.Type.BOOLEAN:
            return Interval(0, 1, True)
        return UNBOUNDED
    part = _date_part(node)
    if part is not None and part in _PART_RANGES:
        lo, hi = _PART_RANGES[part]
        return Interval(lo, hi, True)
    return UNBOUNDED


def _date_part(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Extract):
        return str(node.this.name).lower()
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in ("date_part", "datepart"):
        first = node.expressions[0] if node.expressions else None
        return str(first.name).lower() if isinstance(first, exp.Literal) else None
    if isinstance(node, (exp.Month, exp.Day, exp.Quarter, exp.Week, exp.DayOfWeek, exp.DayOfWeekIso,
                         exp.DayOfMonth, exp.DayOfYear, exp.Hour, exp.Minute, exp.Second)):
        return node.key.lower()
    return None


def _union(parts: list[Interval]) -> Interval:
    if not parts:
        return UNBOUNDED
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    if out.lo > out.hi:  # only NULL branches
        return UNBOUNDED
    return out
