"""Public domains of group keys.

A key over one or more columns whose values are public (a declared ``domain``,
or a small range of integers between declared bounds) has a public domain too:
evaluate the key expression on every combination of those values. The
evaluator covers a small, exact subset of SQL; anything else gives no domain
and the key goes through partition selection.

The bounded SQL keeps only rows whose key is in the domain, so an evaluator that
missed a value would lose rows (accuracy), never leak a key.
"""

from __future__ import annotations

import itertools
import math
from typing import Any
from collections.abc import Callable

from sqlglot import exp

MAX_DOMAIN = 1_000
MAX_EVALUATIONS = 10_000


class _NoDomain(Exception):
    pass


def _num(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _NoDomain
    return v


def _compare(node: exp.Expr, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        raise _NoDomain
    if isinstance(a, bool) or isinstance(b, bool):
        raise _NoDomain
    ops: dict[type[exp.Expr], bool] = {exp.EQ: a == b, exp.NEQ: a != b, exp.GT: a > b, exp.GTE: a >= b,
                                       exp.LT: a < b, exp.LTE: a <= b}
    return ops[type(node)]


def evaluate(node: exp.Expr, env: dict[tuple[str, str], Any]) -> Any:
    """Evaluate a bound key expression for one assignment of its columns."""
    ev = lambda n: evaluate(n, env)  # noqa: E731
    if isinstance(node, exp.Column):
        return env[(node.table, node.name)]
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = str(node.this)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if isinstance(node, exp.Paren):
        return ev(node.this)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)):
        a = ev(node.this)
        divisor = node.expression.this if isinstance(node.expression, exp.Nullif) else node.expression
        b = ev(divisor)
        if a is None or b is None:
            return None
        a, b = _num(a), _num(b)
        if isinstance(node, exp.Add):
            return a + b
        if isinstance(node, exp.Sub):
            return a - b
        if isinstance(node, exp.Mul):
            return a * b
        if b == 0:
            return None
        if isinstance(node, exp.Div):
            return a / b
        if a < 0 or b < 0 or not isinstance(a, int) or not isinstance(b, int):
            raise _NoDomain
        return a // b if isinstance(node, exp.IntDiv) else a % b
    if isinstance(node, exp.Neg):
        v = ev(node.this)
        return None if v is None else -_num(v)
    if isinstance(node, (exp.Floor, exp.Ceil)):
        if node.args.get("decimals") is not None:
            raise _NoDomain
        v = ev(node.this)
        if v is None:
            return None
        v = _num(v)
        if isinstance(v, int):
            return v
        return float(math.floor(v) if isinstance(node, exp.Floor) else math.ceil(v))
    if isinstance(node, exp.Abs):
        v = ev(node.this)
        return None if v is None else abs(_num(v))
    if isinstance(node, (exp.Least, exp.Greatest)):
        values = [ev(node.this), *(ev(e) for e in node.expressions)]
        values = [_num(v) for v in values if v is not None]
        if not values:
            return None
        return min(values) if isinstance(node, exp.Least) else max(values)
    if isinstance(node, (exp.Lower, exp.Upper)):
        v = ev(node.this)
        if v is None:
            return None
        if not isinstance(v, str) or not v.isascii():
            raise _NoDomain
        return v.lower() if isinstance(node, exp.Lower) else v.upper()
    if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return _compare(node, ev(node.this), ev(node.expression))
    if isinstance(node, exp.And):
        a, b = ev(node.this), ev(node.expression)
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if isinstance(node, exp.Or):
        a, b = ev(node.this), ev(node.expression)
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    if isinstance(node, exp.Not):
        v = ev(node.this)
        return None if v is None else not v
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return ev(node.this) is None
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise _NoDomain
        v = ev(node.this)
        if v is None:
            return None
        results = [_compare(exp.EQ(), v, ev(e)) for e in node.expressions]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if isinstance(node, exp.Between):
        v, lo, hi = ev(node.this), ev(node.args["low"]), ev(node.args["high"])
        a, b = _compare(exp.GTE(), v, lo), _compare(exp.LTE(), v, hi)
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if isinstance(node, exp.Case):
        subject = node.this
        for branch in node.args.get("ifs") or []:
            cond = branch.this
            hit = _compare(exp.EQ(), ev(subject), ev(cond)) if subject is not None else ev(cond)
            if hit is True:
                return ev(branch.args["true"])
        default = node.args.get("default")
        return ev(default) if default is not None else None
    if isinstance(node, exp.If):
        if ev(node.this) is True:
            return ev(node.args["true"])
        false = node.args.get("false")
        return ev(false) if false is not None else None
    if isinstance(node, exp.Coalesce):
        for part in (node.this, *node.expressions):
            v = ev(part)
            if v is not None:
                return v
        return None
    raise _NoDomain


def derive_domain(node: exp.Expr,
                  values_of: Callable[[exp.Column], tuple[Any, ...] | None]) -> tuple[Any, ...] | None:
    """The public domain of a bound key expression, or None."""
    columns: dict[tuple[str, str], tuple[Any, ...]] = {}
    for col in node.find_all(exp.Column):
        values = values_of(col)
        if values is None:
            return None
        columns[(col.table, col.name)] = values
    if not columns:
        return None
    if isinstance(node, exp.Column):
        return columns[(node.table, node.name)]
    keys = list(columns)
    total = math.prod(len(columns[k]) for k in keys)
    if total > MAX_EVALUATIONS:
        return None
    out: dict[Any, None] = {}
    try:
        for combo in itertools.product(*(columns[k] for k in keys)):
            value = evaluate(node, dict(zip(keys, combo)))
            if value is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                return None
            out.setdefault(value, None)
            if len(out) > MAX_DOMAIN:
                return None
    except (_NoDomain, KeyError, TypeError, ValueError, OverflowError, RecursionError):
        return None
    ordered = list(out)
    try:
        ordered.sort()
    except TypeError:
        pass
    return tuple(ordered) or None
