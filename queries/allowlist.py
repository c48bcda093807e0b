"""The allow-list: which sqlglot node classes and function names a query may use,
and how their arguments may be given.

Anything not listed is refused. The check walks the whole tree (every CTE and
subquery too) before any name is resolved, so an unknown construct is refused
with its own code wherever it hides.

Arguments that steer a function rather than feed it data are literals only: date
units and parts (``DATE_TRUNC``, ``DATE_DIFF``, ``DATE_PART``, ``EXTRACT``) must be
known DuckDB date parts, formats (``STRFTIME``, ``STRPTIME``) string literals
(``non_literal_argument``); a unit read from a column would make the run's success
depend on a value. Functions whose cost grows with an argument's value
(``LPAD``/``RPAD`` lengths, ``REPEAT`` counts) take a literal under a cap
(``query_too_costly``); range and list builders are not allowed at all.
No identifier may start with ``__``: that prefix is the rewrite's (``reserved_name``).
"""

from __future__ import annotations

import math

from sqlglot import exp

from queries.parse import reject
from queries.vocabulary import AggregateKind

# Clause and structure nodes.
STRUCTURE = (
    exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered,
    exp.Limit, exp.With, exp.CTE, exp.TableAlias, exp.Table, exp.Subquery, exp.Alias,
    exp.Identifier, exp.Star, exp.Column, exp.Distinct, exp.Tuple,
)

# Scalar expressions allowed anywhere an expression is.
SCALARS = (
    exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.DataType, exp.DataTypeParam, exp.Var,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between,
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast, exp.TryCast,
    exp.Least, exp.Greatest, exp.Abs, exp.Sign, exp.Floor, exp.Ceil, exp.Round, exp.Trunc,
    exp.Lower, exp.Upper, exp.Substring, exp.Length, exp.Like, exp.ILike, exp.Trim,
    exp.Concat, exp.DPipe, exp.Left, exp.Right, exp.StartsWith, exp.Contains,
    exp.TimestampTrunc, exp.DateTrunc, exp.Extract, exp.Year, exp.Quarter, exp.Month,
    exp.Week, exp.Day, exp.DayOfWeek, exp.DayOfWeekIso, exp.DayOfMonth, exp.DayOfYear,
    exp.Hour, exp.Interval, exp.DateFromParts, exp.DateDiff, exp.Monthname,
    exp.TimeToStr, exp.StrToTime, exp.Pad, exp.Repeat, exp.Minute, exp.Second, exp.Dayname,
)

# Date parts DuckDB knows (as sqlglot emits them, lower-cased).
DATE_PARTS = frozenset("""
    century centuries c cent day days d dayofmonth decade decades dec decs hour hours h hr hrs microseconds
    microsecond us usec usecs millennium millennia mil mils millenium milliseconds millisecond ms msec msecs
    minute minutes m min mins month months mon mons quarter quarters second seconds s sec secs year years y yr
    yrs week weeks w weekofyear dow dayofweek weekday isodow doy dayofyear yearweek isoyear era julian epoch
    timezone timezone_hour timezone_minute
""".split())
# Literal size arguments: (node class, argument, cap, what).
SIZE_ARGUMENTS = ((exp.Pad, "expression", 1_000, "a padded length"), (exp.Repeat, "times", 100, "a repeat count"))
RESERVED_PREFIX = "__"

# Functions sqlglot leaves as exp.Anonymous that are plain, data-independent scalars.
ANONYMOUS_SCALARS = frozenset({"date_part", "datepart", "minute", "second", "dayname", "yearweek", "isoyear",
                               "even", "ltrim", "rtrim"})

# Aggregates a query may release, by node class → plan kind.
PRIVATE_AGGREGATES: dict[type, AggregateKind] = {
    exp.Count: AggregateKind.COUNT, exp.Sum: AggregateKind.SUM, exp.Avg: AggregateKind.AVG,
    exp.VariancePop: AggregateKind.VAR_POP, exp.Variance: AggregateKind.VAR_SAMP,
    exp.StddevPop: AggregateKind.STDDEV_POP, exp.StddevSamp: AggregateKind.STDDEV_SAMP,
    exp.Stddev: AggregateKind.STDDEV_SAMP, exp.Median: AggregateKind.QUANTILE,
    exp.PercentileCont: AggregateKind.QUANTILE, exp.Quantile: AggregateKind.QUANTILE,
}
# Extra aggregates allowed only inside a per-unit pre-aggregation (one unit's rows).
PER_UNIT_AGGREGATES = (exp.Min, exp.Max)

SYSTEM_PREFIXES = ("duckdb_", "pragma_", "sqlite_", "pg_")
SYSTEM_NAMES = frozenset({
    "current_setting", "getenv", "query", "query_table", "json_execute_serialized_sql", "version",
    "current_database", "current_schema", "current_schemas", "current_user", "current_role", "user",
    "session_user", "current_catalog", "which_secret", "nextval", "currval", "setseed", "read_csv",
    "read_csv_auto", "read_parquet", "read_json", "read_json_auto", "read_text", "read_blob", "glob",
    "parquet_scan", "parquet_metadata", "parquet_schema", "sniff_csv", "error", "enable_logging",
    "checkpoint", "force_checkpoint", "summary", "test_all_types", "txid_current", "has_table_privilege",
})
NAMED_AGGREGATES = frozenset({
    "product", "mode", "histogram", "entropy", "bit_or", "bit_and", "bit_xor", "fsum", "sumkahan", "kahan_sum",
    "favg", "arg_min", "arg_max", "min_by", "max_by", "bitstring_agg", "reservoir_quantile", "approx_quantile",
    "mad", "regr_slope", "corr", "covar_pop", "covar_samp", "list", "array_agg", "string_agg", "first", "last",
})


def function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        try:
            return node.sql_name().lower()
        except Exception:
            pass
    return node.key.lower()


def _unit_name(node: exp.Expr | None) -> str | None:
    if isinstance(node, exp.Var) or (isinstance(node, exp.Literal) and node.is_string):
        return str(node.this).lower()
    return None


def _function_label(node: exp.Expr) -> str:
    if isinstance(node, exp.Pad):
        return "LPAD" if node.args.get("is_left") else "RPAD"
    return function_name(node).upper()


def check_arguments(sql: str, node: exp.Expr) -> None:
    """Units, parts and formats are literals; size arguments literals under a cap."""
    unit = None
    if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc, exp.DateDiff)):
        unit = node.args.get("unit")
    elif isinstance(node, exp.Extract):
        unit = node.this
    elif isinstance(node, exp.Anonymous) and function_name(node) in ("date_part", "datepart"):
        unit = node.expressions[0] if node.expressions else node
        if not (isinstance(unit, exp.Literal) and unit.is_string):
            raise reject("non_literal_argument", f"the date part of {_function_label(node)} must be a literal "
                         "such as 'month'", sql, unit, function=_function_label(node))
    if unit is not None and _unit_name(unit) not in DATE_PARTS:
        shown = _unit_name(unit) or render_short(unit)
        raise reject("non_literal_argument", f"the unit of {_function_label(node)} must be a literal date part "
                     f"such as 'month', not {shown}", sql, node, function=_function_label(node))
    if isinstance(node, (exp.TimeToStr, exp.StrToTime)):
        fmt = node.args.get("format")
        if not (isinstance(fmt, exp.Literal) and fmt.is_string):
            raise reject("non_literal_argument", f"the format of {_function_label(node)} must be a string literal",
                         sql, fmt or node, function=_function_label(node))
    for cls, arg, cap, what in SIZE_ARGUMENTS:
        if isinstance(node, cls):
            size = node.args.get(arg)
            text = str(size.this) if isinstance(size, exp.Literal) and not size.is_string else ""
            if not (text.isdigit() and int(text) <= cap):
                raise reject("query_too_costly", f"{_function_label(node)} needs {what} given as a whole number "
                             f"literal of at most {cap}", sql, size or node, function=_function_label(node))


def render_short(node: exp.Expr) -> str:
    return node.sql(dialect="duckdb")[:40]


def check_names(sql: str, node: exp.Expr) -> None:
    if isinstance(node, exp.Identifier) and str(node.this).startswith(RESERVED_PREFIX):
        raise reject("reserved_name", f"names starting with {RESERVED_PREFIX} are reserved: rename "
                     f"'{node.this}'", sql, node, name=str(node.this))


def literal_quantile(agg: exp.Expr, sql: str) -> float:
    """The q of ``QUANTILE_CONT(x, q)``: a number literal between 0 and 1."""
    q = agg.args.get("expression")
    if isinstance(q, exp.Literal) and not q.is_string:
        try:
            value = float(q.this)
        except ValueError:
            value = math.nan
        if 0 <= value <= 1:
            return value
    raise reject("invalid_quantile", "the quantile must be a number between 0 and 1", sql, q or agg)


def check_allowed(sql: str, root: exp.Expr) -> None:
    """Refuse the first node (in source order, roughly) that is not on the allow-list,
    names a reserved identifier, or passes a non-literal unit, format or size."""
    for node in root.walk(bfs=False):
        check_names(sql, node)
        check_arguments(sql, node)
        if isinstance(node, exp.Window):
            raise reject("window_function", "window functions are not allowed", sql, node)
        if isinstance(node, exp.SetOperation):
            raise reject("set_operation", f"{node.key.upper()} is not allowed: one SELECT only", sql, node,
                         operation=node.key.upper())
        if isinstance(node, (exp.Values, exp.Unnest, exp.Lateral)):
            raise reject("table_function", f"{node.key.upper()} cannot be used as a table", sql, node)
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise reject("table_function", "table functions are not allowed in FROM", sql, node)
            continue
        if isinstance(node, exp.Select):
            continue
        if isinstance(node, (exp.Subquery, exp.Exists)) or (isinstance(node, exp.Query) and node.parent is not None
                                                           and not isinstance(node.parent, (exp.Subquery, exp.CTE))):
            if not isinstance(node, exp.Subquery) or not isinstance(node.parent, (exp.From, exp.Join, exp.CTE)):
                raise reject("subquery_not_allowed", "subqueries are only allowed in FROM and WITH", sql, node)
            continue
        if isinstance(node, exp.Is) and not isinstance(node.expression, (exp.Null, exp.Boolean)):
            # sqlglot reads `x IS 10`, which DuckDB cannot parse back
            raise reject("unsupported_syntax", "IS takes NULL, TRUE or FALSE; use = for values", sql, node)
        if isinstance(node, STRUCTURE) or isinstance(node, SCALARS):
            continue
        if isinstance(node, exp.Anonymous):
            name = function_name(node)
            if name in ANONYMOUS_SCALARS:
                continue
            if name in SYSTEM_NAMES or name.startswith(SYSTEM_PREFIXES):
                raise reject("system_function", f"system function {name}() is not allowed", sql, node, function=name)
            if name in NAMED_AGGREGATES:
                raise reject("aggregate_not_allowed", f"aggregate {name}() is not supported", sql, node, function=name)
            raise reject("function_not_allowed", f"function {name}() is not allowed", sql, node, function=name)
        if isinstance(node, exp.AggFunc):
            if type(node) in PRIVATE_AGGREGATES or isinstance(node, PER_UNIT_AGGREGATES):
                continue
            raise reject("aggregate_not_allowed", f"aggregate {function_name(node)}() is not supported", sql, node,
                         function=function_name(node))
        if isinstance(node, (exp.IgnoreNulls, exp.RespectNulls)):
            raise reject("aggregate_not_allowed", "IGNORE/RESPECT NULLS aggregates are not supported", sql, node)
        if isinstance(node, exp.Columns):
            raise reject("unsupported_syntax", "COLUMNS(...) is not allowed: name the columns", sql, node)
        if isinstance(node, exp.PositionalColumn):
            continue  # resolved later against the select list
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            raise reject("unsupported_syntax", "query parameters are not allowed", sql, node)
        if isinstance(node, exp.Filter):
            raise reject("unsupported_syntax", "aggregate FILTER clauses are not supported; use CASE", sql, node)
        if isinstance(node, exp.Func):
            raise reject("function_not_allowed", f"function {function_name(node)}() is not allowed", sql, node,
                         function=function_name(node))
        raise reject("unsupported_syntax", f"{node.key.upper()} is not allowed", sql, node)
