"""SQL text → one checked ``SELECT`` AST, or ``QueryRejected``.

Parsing is where hostile text first meets the system, so every way it can go
wrong ends in a refusal with a span: parse errors, several statements, anything
that is not a query, inputs too large or too deeply nested (sqlglot recurses, so
depth is capped and ``RecursionError`` is caught), and syntax that sqlglot would
re-emit with a different meaning than DuckDB gives the operator's text.
"""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import TokenType

from queries.errors import QueryRejected, Span

MAX_SQL_CHARS = 20_000
MAX_TOKENS = 4_000
MAX_NODES = 4_000
MAX_DEPTH = 60

_DIALECT = DuckDB()
_FUNC_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\(\s*(?:DISTINCT\s+|ALL\s+)?$", re.IGNORECASE)
_CLOSE = re.compile(r"^\s*\)")


def whole_span(sql: str) -> Span:
    """The span of the whole statement (leading/trailing blanks excluded)."""
    stripped = sql.strip()
    start = sql.find(stripped) if stripped else 0
    return Span.from_offsets(sql, start, start + len(stripped))


def _offsets(node: exp.Expr) -> tuple[int, int] | None:
    start, end = None, None
    stack = [node]
    while stack:
        n = stack.pop()
        meta = getattr(n, "_meta", None)
        if meta and "start" in meta and "end" in meta:
            s, e = meta["start"], meta["end"] + 1
            start = s if start is None else min(start, s)
            end = e if end is None else max(end, e)
        stack.extend(n.iter_expressions())
    return None if start is None or end is None else (start, end)


def span_of(sql: str, node: exp.Expr | None) -> Span:
    """Best-effort span of ``node`` in ``sql``: the union of the token positions
    sqlglot recorded under it, widened to a function's name and parentheses;
    the nearest ancestor's span when none is recorded; else the whole text."""
    current = node
    while current is not None:
        found = _offsets(current)
        if found is not None:
            start, end = found
            if isinstance(current, exp.Func) and not isinstance(current, exp.Column):
                head = _FUNC_HEAD.search(sql, 0, start)
                if head and head.end() == start:
                    start = head.start()
            text = sql[start:end]
            missing = text.count("(") - text.count(")")
            while missing > 0:
                close = _CLOSE.match(sql[end:])
                if not close:
                    break
                end += close.end()
                missing -= 1
            return Span.from_offsets(sql, start, end)
        current = current.parent
    return whole_span(sql)


def reject(code: str, message: str, sql: str, node: exp.Expr | None = None, **fields: Any) -> QueryRejected:
    """A refusal with the span of ``node`` and ``fields``: the names of the
    tables, columns and functions it is about (never a literal of the query)."""
    return QueryRejected(code, message, span_of(sql, node), **fields)


def _token_span(sql: str, token) -> Span:
    return Span.from_offsets(sql, token.start, token.end + 1)


def _check_tokens(sql: str) -> None:
    try:
        tokens = _DIALECT.tokenize(sql)
    except (TokenError, ValueError) as exc:
        raise QueryRejected("parse_error", f"cannot read the SQL text: {str(exc)[:200]}", whole_span(sql)) from None
    if len(tokens) > MAX_TOKENS:
        raise QueryRejected("too_complex", f"the query has more than {MAX_TOKENS} tokens", whole_span(sql))
    for prev, token in zip(tokens, tokens[1:]):
        # 'a' 'b' is refused by DuckDB but re-emitted by sqlglot as CONCAT('a', 'b').
        if prev.token_type == TokenType.STRING and token.token_type == TokenType.STRING:
            raise QueryRejected("ambiguous_syntax", "adjacent string literals are not allowed; use || or CONCAT",
                                _token_span(sql, token))


def _parse_error_span(sql: str, exc: ParseError) -> Span:
    errors = getattr(exc, "errors", None) or []
    if errors:
        line, col = errors[0].get("line"), errors[0].get("col")
        if isinstance(line, int) and isinstance(col, int) and line >= 1:
            lines = sql.split("\n")
            if line <= len(lines):
                offset = sum(len(x) + 1 for x in lines[: line - 1]) + max(col - 1, 0)
                return Span.from_offsets(sql, offset, offset + 1)
    return whole_span(sql)


def check_size(sql: str, root: exp.Expr) -> None:
    """Refuse trees with too many nodes or nested too deeply (iteratively)."""
    count = 0
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise reject("too_complex", f"the query is nested more than {MAX_DEPTH} levels deep", sql, node)
        if count > MAX_NODES:
            raise reject("too_complex", f"the query has more than {MAX_NODES} syntax nodes", sql)
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def _statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def parse_select(sql: str) -> exp.Select:
    """Parse ``sql`` (DuckDB dialect) and return its single ``SELECT``."""
    if not isinstance(sql, str):
        raise QueryRejected("parse_error", "the query must be SQL text", None)
    if not sql.strip():
        raise QueryRejected("not_select", "the query is empty", Span.from_offsets(sql, 0, len(sql)))
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRejected("too_complex", f"the query is longer than {MAX_SQL_CHARS} characters", whole_span(sql))
    try:
        _check_tokens(sql)
        statements = sqlglot.parse(sql, dialect="duckdb", error_level=ErrorLevel.RAISE)
    except QueryRejected:
        raise
    except ParseError as exc:
        first = str(exc).split("\n", 1)[0][:200]
        raise QueryRejected("parse_error", f"not valid SQL: {first}", _parse_error_span(sql, exc)) from None
    except RecursionError:
        raise QueryRejected("too_complex", "the query is nested too deeply", whole_span(sql)) from None
    except Exception as exc:  # sqlglot raises assorted errors on odd input
        raise QueryRejected("parse_error", f"not valid SQL ({type(exc).__name__})", whole_span(sql)) from None
    found = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
    if not found:
        raise QueryRejected("not_select", "the text holds no statement", whole_span(sql))
    if len(found) > 1:
        raise reject("multiple_statements", "only one statement is allowed", sql, found[1])
    root = found[0]
    while isinstance(root, exp.Subquery) and not root.args.get("alias") and isinstance(root.this, exp.Query):
        root = root.this
    if isinstance(root, exp.SetOperation):
        raise reject("set_operation", f"{root.key.upper()} is not allowed: one SELECT only", sql, root,
                     operation=root.key.upper())
    if not isinstance(root, exp.Select):
        raise QueryRejected("not_select", f"only SELECT queries are allowed, not {_statement_name(root)}",
                            whole_span(sql))
    check_size(sql, root)
    try:
        emitted = root.sql(dialect="duckdb", comments=False)
        again = sqlglot.parse_one(emitted, dialect="duckdb", error_level=ErrorLevel.RAISE)
    except RecursionError:
        raise QueryRejected("too_complex", "the query is nested too deeply", whole_span(sql)) from None
    except Exception:
        raise QueryRejected("ambiguous_syntax", "the query does not survive a round trip through the parser",
                            whole_span(sql)) from None
    if again.sql(dialect="duckdb", comments=False) != emitted:
        raise QueryRejected("ambiguous_syntax", "the query does not survive a round trip through the parser",
                            whole_span(sql))
    return root
