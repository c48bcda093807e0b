"""The allow-list: which sqlglot node classes and function names a query may use.

Anything not listed is refused. The check walks the whole tree (every CTE and
subquery too) before any name is resolved, so an unknown construct is refused
with its own code wherever it hides.
"""

from __future__ import annotations

from sqlglot import exp

from queries.parse import reject

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
)

# Functions sqlglot leaves as exp.Anonymous that are plain, data-independent scalars.
ANONYMOUS_SCALARS = frozenset({"date_part", "datepart", "minute", "second", "dayname", "yearweek", "isoyear",
                               "even", "ltrim", "rtrim"})

# Aggregates a query may release, by node class → plan kind.
PRIVATE_AGGREGATES: dict[type, str] = {
    exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg",
    exp.VariancePop: "var_pop", exp.Variance: "var_samp",
    exp.StddevPop: "stddev_pop", exp.StddevSamp: "stddev_samp", exp.Stddev: "stddev_samp",
    exp.Median: "quantile", exp.PercentileCont: "quantile", exp.Quantile: "quantile",
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


def function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    try:
        return node.sql_name().lower()
    except Exception:
        return node.key.lower()


def is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, exp.AggFunc)


def check_allowed(sql: str, root: exp.Expression) -> None:
    """Refuse the first node (in source order, roughly) that is not on the allow-list."""
    for node in root.walk(bfs=False):
        if isinstance(node, exp.Window):
            raise reject("window_function", "window functions are not allowed", sql, node)
        if isinstance(node, exp.SetOperation):
            raise reject("set_operation", f"{node.key.upper()} is not allowed: one SELECT only", sql, node)
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
        if isinstance(node, STRUCTURE) or isinstance(node, SCALARS):
            continue
        if isinstance(node, exp.Anonymous):
            name = function_name(node)
            if name in ANONYMOUS_SCALARS:
                continue
            if name in SYSTEM_NAMES or name.startswith(SYSTEM_PREFIXES):
                raise reject("system_function", f"system function {name}() is not allowed", sql, node)
            if name in NAMED_AGGREGATES:
                raise reject("aggregate_not_allowed", f"aggregate {name}() is not supported", sql, node)
            raise reject("function_not_allowed", f"function {name}() is not allowed", sql, node)
        if isinstance(node, exp.AggFunc):
            if type(node) in PRIVATE_AGGREGATES or isinstance(node, PER_UNIT_AGGREGATES):
                continue
            raise reject("aggregate_not_allowed", f"aggregate {function_name(node)}() is not supported", sql, node)
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
            raise reject("function_not_allowed", f"function {function_name(node)}() is not allowed", sql, node)
        raise reject("unsupported_syntax", f"{node.key.upper()} is not allowed", sql, node)
