"""Mock data from a policy alone: the shape of a dataset, none of its values.

Operators write and test their SQL against mock data before spending budget.
Every value comes from the policy (types, bounds, domains) and the row number,
through a fixed integer hash (splitmix64): the same policy always gives the same
bytes, and no real value is ever read. Identifiers are fresh sequences starting
at ``ID_BASE`` (so they look like no real key), strings without a domain are
placeholders like ``city_3``. Columns shared by name between tables (the privacy
unit, join keys) draw from the same pool, so joins match.

Types come from ``ColumnPolicy.type`` (filled in from the stored version with
``DatasetPolicy.with_types``); without one, bounds mean numbers, a domain its
values' type, and anything else a placeholder string.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from queries.errors import InvalidInput
from queries.policy import ColumnPolicy, DatasetPolicy, TablePolicy

ID_BASE = 10**12
PLACEHOLDERS = 20          # distinct placeholder strings per non-identifier column
_MASK = (1 << 64) - 1


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fixed bijection of uint64 (deterministic, not noise)."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniform(label: str, n: int) -> np.ndarray:
    """n numbers in [0, 1) determined by ``label`` and the row number."""
    seed = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big")
    rows = np.arange(n, dtype=np.uint64) ^ np.uint64(seed)
    return (_mix(rows) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _kind(col: ColumnPolicy) -> str:
    if col.type:
        return col.type
    if col.domain is not None:
        first = col.domain[0]
        if isinstance(first, bool):
            return "boolean"
        if isinstance(first, int):
            return "integer"
        if isinstance(first, float):
            return "float"
        return "string"
    if col.min is not None and col.max is not None:
        return "integer" if float(col.min).is_integer() and float(col.max).is_integer() else "float"
    if col.cls == "identifier":
        return "integer"
    return "string"


def _column(policy: DatasetPolicy, table: TablePolicy, col: ColumnPolicy, n: int, rows: int) -> pa.Array:
    label = f"{policy.name}.{table.name}.{col.name}"
    u = _uniform(label, n)
    kind = _kind(col)
    if col.cls == "identifier":
        shared = col.name == policy.privacy_unit or _is_join_key(policy, col.name)
        if shared and not (table.rows_per_unit == 1 and col.name == policy.privacy_unit):
            index = np.floor(u * rows).astype(np.int64)
        else:
            index = np.arange(n, dtype=np.int64)
        if kind == "string":
            return pa.array([f"{col.name}_{i + 1}" for i in index], pa.string())
        return pa.array(ID_BASE + index + 1, pa.int64())
    if col.domain is not None:
        values = [col.domain[int(i)] for i in np.floor(u * len(col.domain)).astype(np.int64)]
        return pa.array(values, _arrow_type(kind)) if kind != "date" else pa.array(
            [date.fromisoformat(v) if isinstance(v, str) else v for v in values], pa.date32())
    if kind in ("integer", "float"):
        lo, hi = (float(col.min), float(col.max)) if col.min is not None and col.max is not None else (0.0, 100.0)
        if kind == "integer":
            return pa.array(np.floor(lo + u * (hi - lo + 1)).clip(lo, hi).astype(np.int64), pa.int64())
        return pa.array(np.round(lo + u * (hi - lo), 2), pa.float64())
    if kind == "boolean":
        return pa.array(u < 0.5, pa.bool_())
    if kind == "date":
        return pa.array([date(2000, 1, 1) + timedelta(days=int(d)) for d in np.floor(u * 3650)], pa.date32())
    if kind == "timestamp":
        return pa.array([datetime(2000, 1, 1) + timedelta(seconds=int(s)) for s in np.floor(u * 3650 * 86400)],
                        pa.timestamp("us"))
    if table.public:
        index = np.arange(n, dtype=np.int64) % PLACEHOLDERS
    else:
        index = np.floor(u * PLACEHOLDERS).astype(np.int64)
    return pa.array([f"{col.name}_{i + 1}" for i in index], pa.string())


def _is_join_key(policy: DatasetPolicy, name: str) -> bool:
    return sum(1 for t in policy.tables if t.column(name) is not None) > 1


def _arrow_type(kind: str) -> pa.DataType:
    return {"integer": pa.int64(), "float": pa.float64(), "string": pa.string(), "boolean": pa.bool_(),
            "date": pa.date32(), "timestamp": pa.timestamp("us")}[kind]


def mock_tables(policy: DatasetPolicy, rows: int = 1000) -> dict[str, pa.Table]:
    """Each table of the policy as mock Arrow data: ``rows`` rows for tables of
    the privacy unit, one row per placeholder for public lookup tables."""
    if rows < 1:
        raise InvalidInput("mock data needs at least one row")
    tables = {}
    for table in policy.tables:
        n = min(rows, PLACEHOLDERS) if table.public else rows
        tables[table.name] = pa.table({c.name: _column(policy, table, c, n, rows) for c in table.columns})
    return tables


def write_mock(policy: DatasetPolicy, out: Path, rows: int = 1000,
               fmt: Literal["duckdb", "parquet"] = "duckdb") -> Path:
    """Write mock data: one DuckDB file holding every table (``fmt="duckdb"``, ``out``
    is the file) or one ``<table>.parquet`` per table (``out`` is a folder)."""
    if fmt not in ("duckdb", "parquet"):
        raise InvalidInput("format must be duckdb or parquet", code="bad_format")
    tables = mock_tables(policy, rows)
    out = Path(out)
    if fmt == "parquet":
        out.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            pq.write_table(table, out / f"{name}.parquet")
        return out
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dps-mock-", dir=out.parent))
    try:
        con = duckdb.connect(str(work / "mock.duckdb"))
        try:
            for name, table in tables.items():
                con.register("arrow_source", table)
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM arrow_source')
                con.unregister("arrow_source")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        shutil.move(work / "mock.duckdb", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
