"""Exact SQL under a sharing grant: SQL text + granted columns → checked DuckDB SQL.

A department holding a grant may ask exact questions of the columns it was
granted. The text goes through the same front end as DP queries
(:func:`queries.parse.parse_select`: one SELECT, size and depth caps, a round trip
through the parser), then:

1. every node must be on the allow-list (the structure and scalar nodes of
   :mod:`queries.allowlist`, plus exact aggregates), so no table function, setting,
   system function or file access can appear;
2. every table must be a granted table, named without a catalog or schema;
3. columns are qualified with sqlglot against a schema that holds *only the granted
   columns*, and every column reference is then resolved through its scope to a
   granted column of a granted table (or to an output of a CTE or subquery built
   from them). A row-as-struct reference (``SELECT people FROM people``) or a
   column that was not granted is refused.

The SQL that runs is emitted from the checked, qualified tree with every table
read from the worker's ``ds`` catalog — never the operator's string. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from queries.allowlist import ANONYMOUS_SCALARS, SCALARS, STRUCTURE
from queries.errors import QueryRejected
from queries.parse import parse_select, reject, whole_span

CATALOG = "ds"

EXACT_AGGREGATES = (
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Median, exp.Quantile, exp.PercentileCont,
    exp.Variance, exp.VariancePop, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.CountIf,
)
ALLOWED = STRUCTURE + SCALARS + EXACT_AGGREGATES

SQL_TYPES = {"integer": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "date": "DATE",
             "timestamp": "TIMESTAMP", "boolean": "BOOLEAN"}


@dataclass(frozen=True)
class SharedScope:
    """What a grant lets its holder read: table → {column: type category}."""

    tables: Mapping[str, Mapping[str, str | None]]

    def schema(self) -> dict[str, object]:
        """Table -> column -> SQL type, as sqlglot's qualify reads it."""
        return {t: {c: SQL_TYPES.get(k or "", "VARCHAR") for c, k in cols.items()} for t, cols in self.tables.items()}


@dataclass(frozen=True)
class CheckedSharedQuery:
    sql: str                          # DuckDB SQL over ds.<table>, emitted from the checked tree
    tables: tuple[str, ...]
    columns: tuple[str, ...]          # table.column names read


def _check_nodes(sql: str, root: exp.Expr) -> None:
    for node in root.walk():
        if isinstance(node, exp.Anonymous):
            if str(node.this).lower() not in ANONYMOUS_SCALARS:
                raise reject("function_not_allowed", f"function '{node.this}' is not allowed", sql, node,
                             function=str(node.this))
            continue
        if not isinstance(node, ALLOWED):
            raise reject("construct_not_allowed", f"{node.key.upper()} is not allowed in shared queries", sql, node)


def _check_tables(sql: str, root: exp.Expr, scope: SharedScope) -> None:
    ctes = {cte.alias_or_name for cte in root.find_all(exp.CTE)}
    for table in root.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog"):
            raise reject("table_not_granted", "name shared tables without a catalog or schema", sql, table)
        if table.name in ctes:
            continue
        if table.name not in scope.tables:
            raise reject("table_not_granted", f"table '{table.name}' is not part of this grant", sql, table,
                         table=table.name)


def _outputs(source: Scope) -> set[str]:
    return set(source.expression.named_selects) if isinstance(source.expression, exp.Query) else set()


def _resolve(sql: str, root: exp.Select, scope: SharedScope) -> set[str]:
    """Every column reference → a granted column; returns the table.column names read."""
    for whole in root.find_all(exp.TableColumn):
        raise reject("column_not_granted", f"'{whole.name}' names a whole row; name granted columns", sql, whole,
                     table=whole.name)
    read: set[str] = set()
    scopes = {id(sc.expression): sc for sc in traverse_scope(root)}
    for column in root.find_all(exp.Column):
        if column.args.get("db") or column.args.get("catalog"):
            raise reject("column_not_granted", "nested column references are not allowed", sql, column)
        select = column.find_ancestor(exp.Select)
        if not column.table:
            in_order = column.find_ancestor(exp.Order) is not None
            if in_order and select is not None and column.name in select.named_selects:
                continue
            raise reject("column_not_granted", f"'{column.name}' is not a granted column", sql, column,
                         column=column.name)
        source, current = None, scopes.get(id(select))
        while current is not None and source is None:
            source = current.sources.get(column.table)
            current = current.parent
        if isinstance(source, exp.Table) and source.name in scope.tables:
            if column.name not in scope.tables[source.name]:
                raise reject("column_not_granted", f"column '{column.name}' is not part of this grant", sql, column,
                             table=source.name, column=column.name)
            read.add(f"{source.name}.{column.name}")
        elif isinstance(source, Scope) and column.name in _outputs(source):
            continue
        else:
            raise reject("column_not_granted", f"'{column.table}.{column.name}' is not a granted column", sql, column,
                         table=column.table, column=column.name)
    return read


def _qualified(sql: str, root: exp.Select, scope: SharedScope) -> exp.Select:
    try:
        out = qualify(root.copy(), schema=scope.schema(), dialect="duckdb", validate_qualify_columns=True,
                      quote_identifiers=True)
    except OptimizeError as exc:
        text = str(exc).split(". Line", 1)[0]
        code = "column_not_granted" if "could not be resolved" in text else "ambiguous_column"
        raise QueryRejected(code, f"{text[:200]} (only granted columns can be read)", whole_span(sql)) from None
    assert isinstance(out, exp.Select)
    return out


def _to_catalog(tree: exp.Select, scope: SharedScope) -> exp.Select:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name in scope.tables and table.name not in ctes:
            table.set("db", exp.to_identifier(CATALOG, quoted=True))
    return tree


def check_shared_sql(sql: str, scope: SharedScope, *, max_rows: int | None = None) -> CheckedSharedQuery:
    """Check ``sql`` against the granted scope and emit what the worker runs.
    With ``max_rows``, the emitted query returns at most ``max_rows + 1`` rows (so the
    caller can tell that the answer was cut)."""
    root = parse_select(sql)
    _check_nodes(sql, root)
    _check_tables(sql, root, scope)
    qualified = _qualified(sql, root, scope)
    read = _resolve(sql, qualified, scope)
    _check_nodes(sql, qualified)
    tables = tuple(sorted({c.split(".", 1)[0] for c in read}))
    tree = _to_catalog(qualified, scope)
    if max_rows is not None:
        tree = exp.select("*").from_(tree.subquery("shared_result")).limit(max_rows + 1)
    return CheckedSharedQuery(tree.sql(dialect="duckdb"), tables, tuple(sorted(read)))


def check_filter(where: str, scope: SharedScope, table: str) -> exp.Expr:
    """An extract's row filter: a boolean expression over the table's granted
    columns, checked like a query's WHERE clause. Returns the qualified condition."""
    if table not in scope.tables:
        raise QueryRejected("table_not_granted", f"table '{table}' is not part of this grant", None, table=table)
    text = f'SELECT 1 FROM "{table}" WHERE {where}'
    root = parse_select(text)
    extra = [k for k, v in root.args.items() if v and k not in ("expressions", "from", "from_", "where")]
    from_ = root.args.get("from_") or root.args.get("from")
    source = from_.this if from_ else None
    if extra or not isinstance(source, exp.Table) or source.name != table:
        raise QueryRejected("bad_filter", "a filter is one boolean expression over the table's columns",
                            whole_span(where))
    if any(isinstance(n, exp.Subquery | exp.Select) and n is not root for n in root.walk()):
        raise QueryRejected("bad_filter", "a filter cannot hold a subquery", whole_span(where))
    _check_nodes(text, root)
    if any(isinstance(n, EXACT_AGGREGATES) for n in root.walk()):
        raise QueryRejected("bad_filter", "a filter cannot hold an aggregate", whole_span(where))
    qualified = _qualified(text, root, SharedScope({table: scope.tables[table]}))
    _resolve(text, qualified, SharedScope({table: scope.tables[table]}))
    return qualified.args["where"].this


def extract_sql(table: str, columns: tuple[str, ...], condition: exp.Expr | None,
                first_row: int, end_row: int) -> str:
    """One batch of an extract: the granted columns of rows [first_row, end_row)
    that pass the filter, in storage order."""
    source = exp.Table(this=exp.to_identifier(table, quoted=True), db=exp.to_identifier(CATALOG, quoted=True),
                       alias=exp.TableAlias(this=exp.to_identifier(table, quoted=True)))
    rowid = exp.column("rowid", table=exp.to_identifier(table, quoted=True))
    where = exp.and_(exp.GTE(this=rowid.copy(), expression=exp.Literal.number(first_row)),
                     exp.LT(this=rowid.copy(), expression=exp.Literal.number(end_row)))
    if condition is not None:
        where = exp.and_(where, exp.Paren(this=condition.copy()))
    select = exp.select(*[exp.column(c, table=exp.to_identifier(table, quoted=True), quoted=True) for c in columns])
    return select.from_(source).where(where).sql(dialect="duckdb")
