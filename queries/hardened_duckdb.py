"""The one DuckDB recipe for SQL derived from an operator's query.

Every DuckDB database that runs such SQL is opened by :func:`open_hardened` and
queried through :func:`run_select` or :func:`select_rows`: the query worker's
copy of a dataset version and its empty twin (``sandbox/execution/worker.py``),
and the in-memory database that post-processes noisy results
(``privacy/postprocess.py``).

Opening: no external access (no file or URL readers, ``COPY``, ``ATTACH`` of
files, ``INSTALL``/``LOAD``, Python replacement scans), no extension
auto-install or auto-load, no community extensions, memory, thread and time
limits; then, once open, the local file system disabled and
``lock_configuration`` set last, so no statement can undo any of it. A file is
opened read-only.

Spilling. By default nothing spills (``temp_directory=''``): a query over its
memory limit fails. A database opened on a file may instead be given a
:class:`Spill` — a private directory and a size cap — so that joins, sorts and
aggregates larger than ``memory_limit`` spill there. Verified on DuckDB 2.0.1:

* spilling works with ``enable_external_access=false`` when ``temp_directory``
  and ``max_temp_directory_size`` are in the connect config (and locked after);
* it does **not** work with ``disabled_filesystems='LocalFileSystem'``: temp
  files go through the same file system as every reader ("File system
  LocalFileSystem has been disabled by configuration"), and no other setting
  lets them through alone.

So a spilling database is the one place that keeps the local file system
enabled: the narrowest working combination. What that gives back is small,
because with external access off DuckDB reaches only its ``allowed_directories``
and ``allowed_paths``, which it fills itself at start-up (they cannot be set in
the connect config nor changed while external access is off): the spill
directory and the database file with its WAL names. Every other path, URL,
``ATTACH`` and ``COPY`` is still refused by DuckDB. Reaching those two takes a
file-reading table function (``read_blob``, ``read_text``, ``glob``, …) that the
SQL front end refuses and, for writing, a statement other than ``SELECT``
(``COPY``) that :func:`run_select` refuses; and what they hold is the same
version the SQL may read anyway, as a file. The in-memory database (``path``
``None``, used to post-process noisy results) never spills and keeps the local
file system disabled.

Running: exactly one ``SELECT`` statement (DuckDB's own parser counts them), on a
fresh cursor, so temp macros, temp views, variables and registered tables never
outlive the call. DuckDB's settings are defence in depth, not the boundary: the
bounded SQL runs in a separate worker process with OS limits.

The recipe lives in ``queries/`` rather than ``privacy/``: both of its users
already import ``queries``, while importing ``privacy`` would load OpenDP and
polars into every worker process (about 550 MB more address space under its
``RLIMIT_AS``).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Mapping

import duckdb
import pyarrow as pa

__all__ = ["EngineLimits", "LOCKED_DOWN", "Spill", "StatementRefused", "open_hardened", "parameter_names",
           "run_select", "select_rows"]

# What must be in the connect config (some settings cannot be changed once a
# database is open; enable_external_access cannot be switched back on at all).
LOCKED_DOWN: Mapping[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "temp_directory": "",
}


@dataclass(frozen=True)
class Spill:
    """Where a database may spill intermediate results, and how much: the
    directory must exist, be private (0700) and belong to this database alone."""

    directory: Path
    max_mb: int


@dataclass(frozen=True)
class EngineLimits:
    """DuckDB's own limits for one database."""

    memory_mb: int = 1024           # memory_limit
    threads: int = 1                # threads
    timeout_s: float = 30.0         # max_execution_time


class StatementRefused(Exception):
    """The SQL is not exactly one SELECT statement (internal: never shown to a caller)."""


def open_hardened(path: Path | None, limits: EngineLimits, spill: Spill | None = None) -> duckdb.DuckDBPyConnection:
    """Open the database file at ``path`` read-only (or, with ``None``, a private
    in-memory database) and lock it down. Settings that must be in place before
    the first query go into the connect config; the rest are set globally, and
    ``lock_configuration`` last. With ``spill`` (a file only, ``max_mb`` > 0), the
    database spills into ``spill.directory`` up to ``spill.max_mb`` and keeps the
    local file system enabled (see the module docstring)."""
    if spill is not None and path is None:
        raise ValueError("an in-memory database never spills")
    spills = spill is not None and spill.max_mb > 0
    config = {
        **LOCKED_DOWN,
        "memory_limit": f"{int(limits.memory_mb)}MB",
        "threads": int(limits.threads),
        "max_execution_time": max(1, int(limits.timeout_s * 1000)),
    }
    if spill is not None and spills:
        config["temp_directory"] = str(spill.directory)
        config["max_temp_directory_size"] = f"{int(spill.max_mb)}MB"
    db = duckdb.connect(":memory:" if path is None else str(path), read_only=path is not None, config=config)
    try:
        if not spills:
            db.execute("SET GLOBAL disabled_filesystems = 'LocalFileSystem'")
        db.execute("SET GLOBAL lock_configuration = true")
    except BaseException:
        db.close()
        raise
    return db


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parameter_names(sql: str) -> set[str]:
    """The ``$name`` parameters a statement uses (case-folded), from DuckDB's own
    tokenizer, so a ``$`` inside a string literal or a comment does not count."""
    tokens = duckdb.tokenize(sql)
    names = set()
    for (offset, kind), (following, _) in zip(tokens, tokens[1:]):
        if kind == duckdb.token_type.operator and sql[offset] == "$" and following == offset + 1:
            match = _NAME.match(sql, following)
            if match:
                names.add(match.group().lower())
    return names


@contextmanager
def _one_select(db: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None,
                tables: Mapping[str, pa.Table] | None) -> Iterator[duckdb.DuckDBPyRelation]:
    statements = db.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise StatementRefused(f"{len(statements)} statement(s) of type(s) {[s.type.name for s in statements]}")
    used = parameter_names(sql) if params else set()
    bound = {k: v for k, v in (params or {}).items() if k.lower() in used}
    cur = db.cursor()
    try:
        for name, table in (tables or {}).items():
            cur.register(name, table)
        yield cur.sql(sql, params=bound or None)
    finally:
        cur.close()


def run_select(db: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None, *,
               tables: Mapping[str, pa.Table] | None = None) -> pa.Table:
    """Run one SELECT statement on a fresh cursor of ``db``, with ``tables``
    registered on that cursor alone; anything else raises :class:`StatementRefused`.
    Parameters the statement does not use are dropped (DuckDB refuses extras, and
    a plan carries ``salt`` whether or not its SQL needs it)."""
    with _one_select(db, sql, params, tables) as relation:
        return relation.to_arrow_table()


def select_rows(db: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None, *,
                tables: Mapping[str, pa.Table] | None = None) -> list[tuple[Any, ...]]:
    """:func:`run_select`, as Python rows."""
    with _one_select(db, sql, params, tables) as relation:
        return relation.fetchall()
