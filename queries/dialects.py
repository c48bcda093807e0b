"""The bounded SQL for each execution engine, from one sqlglot tree.

The planner builds the bounded SQL for DuckDB (``BoundedPlan.bounded_sql``). For
another engine the same tree is parsed once (DuckDB dialect), rewritten node by
node where the two engines' semantics differ, and emitted with that engine's
sqlglot dialect. Nothing here formats SQL text for an engine: every change is a
tree transform, and the text appears only at ``.sql(dialect=...)``.

Spark (ANSI mode off, the session the Spark engine opens) against DuckDB:

==========================  ==========================================  ==================
difference                  DuckDB                                      Spark rewrite
==========================  ==========================================  ==================
``TRY(expr)``               errors inside become NULL                   ANSI off + ``try_add``/
                                                                        ``try_subtract``/
                                                                        ``try_multiply``/
                                                                        ``try_divide`` for
                                                                        arithmetic inside
integer overflow of ``SUM`` HUGEINT (no overflow)                       ``SUM`` of DECIMAL(38,0)
``CAST(.. AS HUGEINT)``     128-bit integer                             DECIMAL(38,0)
``isfinite(x)``             NULL for NULL, false for NaN/±inf           ``ABS(x) < inf``
                                                                        (NaN sorts above inf)
``hash(...)`` (row choice)  64-bit hash                                 ``xxhash64(...)``
``DAYOFWEEK``               Sunday = 0                                  ``DAYOFWEEK - 1``
``FLOOR``/``CEIL`` of ``/`` DOUBLE                                      cast back to DOUBLE
NULL order                  NULLS LAST                                  explicit (sqlglot)
``CONCAT`` with NULL        skips NULL                                  COALESCE (sqlglot)
``STRFTIME``                C format                                    ``date_format``
                                                                        (sqlglot)
``INTERVAL (col) DAY``       interval from a column                      ``make_dt_interval``
``$salt``                   named parameter                             ``:salt`` parameter
==========================  ==========================================  ==================

The row chosen by the keyed hash differs between engines, so bounded aggregates
are equal only where no unit exceeds a per-unit row or group limit; both
selections are valid bounding with the same sensitivity.

Constructs with no equal Spark form are refused with ``spark_unsupported`` and
the construct's name: lists and ranges (the quantile layers), ``FILTER``
clauses, casts of floating values to text (Spark prints ``1.0E10``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from queries.errors import QueryRejected
from queries.vocabulary import Engine

_TRY_ARITHMETIC: dict[type[exp.Expr], str] = {
    exp.Add: "try_add", exp.Sub: "try_subtract", exp.Mul: "try_multiply", exp.Div: "try_divide",
}

_REFUSED: dict[type[exp.Expr], str] = {
    exp.Array: "list literal", exp.Explode: "unnest", exp.GenerateSeries: "range", exp.Filter: "FILTER",
    exp.ArrayAgg: "list", exp.Unnest: "unnest",
}
# DuckDB's date parts are BIGINT, Spark's INT
_DATE_PARTS = (exp.Year, exp.Month, exp.Day, exp.Quarter, exp.Extract, exp.DayOfMonth, exp.DayOfYear, exp.Week)
_REFUSED_NAMES = {"list": "list", "range": "range", "unnest": "unnest"}


@dataclass(frozen=True)
class EmittedQuery:
    """The bounded SQL of one plan for one engine, and the names of the tables it reads."""

    engine: Engine
    sql: str
    tables: tuple[str, ...]


def _refuse(construct: str) -> QueryRejected:
    return QueryRejected("spark_unsupported", f"this query uses {construct}, which the Spark engine does not "
                         "run with DuckDB's semantics", construct=construct)


def _is_hugeint(node: exp.Expr) -> bool:
    return isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128


def _decimal() -> exp.DataType:
    return exp.DataType.build("DECIMAL(38, 0)")


_DAY_TIME = {"DAY": 0, "HOUR": 1, "MINUTE": 2, "SECOND": 3}
_YEAR_MONTH = {"YEAR": 0, "MONTH": 1}


def _column_interval(node: exp.Interval) -> exp.Expr:
    """``INTERVAL (n) DAY`` with a column ``n`` (DuckDB) as ``make_dt_interval`` /
    ``make_ym_interval``; a count out of INT range is NULL (``try_cast``), as under TRY."""
    unit = node.unit.name.upper() if node.unit is not None else ""
    count = exp.TryCast(this=node.this.unnest(), to=exp.DataType.build("INT"), safe=True)
    if unit in _DAY_TIME:
        args: list[exp.Expr] = [exp.Literal.number(0)] * 4
        args[_DAY_TIME[unit]] = count
        return exp.Anonymous(this="make_dt_interval", expressions=args)
    if unit in _YEAR_MONTH:
        ym: list[exp.Expr] = [exp.Literal.number(0)] * 2
        ym[_YEAR_MONTH[unit]] = count
        return exp.Anonymous(this="make_ym_interval", expressions=ym)
    raise _refuse(f"INTERVAL of a column in {unit or 'this unit'}")


def _spark_node(node: exp.Expr) -> exp.Expr:
    for klass, name in _REFUSED.items():
        if isinstance(node, klass):
            raise _refuse(name)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in _REFUSED_NAMES:
            raise _refuse(_REFUSED_NAMES[name])
        if name == "hash":
            return exp.Anonymous(this="xxhash64", expressions=node.expressions)
        if name == "isfinite":
            inf = exp.Cast(this=exp.Literal.string("Infinity"), to=exp.DataType.build("DOUBLE"))
            return exp.paren(exp.LT(this=exp.Abs(this=node.expressions[0]), expression=inf), copy=False)
    if isinstance(node, exp.Try):
        inner = node.this.transform(_spark_node, copy=False)
        for sub in list(inner.find_all(*_TRY_ARITHMETIC)):
            fn = exp.Anonymous(this=_TRY_ARITHMETIC[type(sub)], expressions=[sub.this, sub.expression])
            if sub is inner:
                inner = fn
            else:
                sub.replace(fn)
        return inner
    if isinstance(node, exp.DataType) and _is_hugeint(node):
        return _decimal()
    if isinstance(node, exp.Cast) and _is_hugeint(node.to):
        for total in node.this.find_all(exp.Sum):
            total.set("this", exp.Cast(this=total.this, to=_decimal()))
    if isinstance(node, exp.DayOfWeek):
        shifted = exp.Sub(this=node.copy(), expression=exp.Literal.number(1))
        return exp.Cast(this=shifted, to=exp.DataType.build("BIGINT"))
    if isinstance(node, _DATE_PARTS) and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))
    if isinstance(node, (exp.Floor, exp.Ceil)) and node.this.find(exp.Div) is not None \
            and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
    if isinstance(node, exp.Interval) and not isinstance(node.this, exp.Literal):
        return _column_interval(node)
    if isinstance(node, exp.Table) and node.db:
        return exp.Table(this=exp.to_identifier(node.name), alias=node.args.get("alias"))
    return node


def emit_bounded(bounded_sql: str, engine: Engine) -> EmittedQuery:
    """The bounded SQL of a plan (DuckDB text from ``BoundedPlan.bounded_sql``) for
    ``engine``; raises ``QueryRejected`` (``spark_unsupported``) where the engine
    cannot compute the same exact aggregates."""
    tree = sqlglot.parse_one(bounded_sql, dialect="duckdb", error_level=ErrorLevel.RAISE)
    tables = tuple(sorted({t.name for t in tree.find_all(exp.Table) if t.db}))
    if engine is Engine.DUCKDB:
        return EmittedQuery(engine, bounded_sql, tables)
    for cte in tree.find_all(exp.CTE):
        cte.set("materialized", None)
    rewritten = tree.transform(_spark_node, copy=True)
    for cast in rewritten.find_all(exp.Cast, exp.TryCast):
        if cast.to.is_type(*exp.DataType.TEXT_TYPES) and cast.this.find(exp.Div):
            raise _refuse("cast of a fraction to text")
    return EmittedQuery(engine, rewritten.sql(dialect="spark", comments=False), tables)
