"""The execution-engine interface: where a plan's bounded SQL runs.

Both engines take the same input — a stored version (the AES-GCM file of
``sandbox.execution.storage``, its data key unwrapped by the master key) and the
plan's bounded SQL — and return the same output: the exact bounded aggregates as
Arrow, or one of the same errors (``query_invalid`` before any row is read,
``run_failed`` with a fixed message afterwards). The privacy layer, the ledger,
products and the audit log never learn which engine ran, except from the
``engine`` field of the run's audit records.

* :class:`DuckDBEngine` is the isolated worker pool, unchanged.
* :class:`SparkVersionEngine` decrypts the version into a private temporary
  folder (0700, under ``DPS_WORKER_TEMP_ROOT``; tmpfs keeps it off disk), writes
  each table as Parquet, runs the query on Spark and removes the folder. The
  version stays encrypted at rest; the clear Parquet lives only for the run.
  That holds where the driver and the executors share the folder (``local[N]``,
  a standalone cluster on one host); docs/scale.md says what several machines need.

The engine of a dataset is its policy's ``engine`` key, else the instance's
``DPS_ENGINE``: :func:`engine_of`.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from queries.dialects import emit_bounded
from queries.policy import DatasetPolicy
from queries.vocabulary import Engine
from sandbox.execution.spark import SparkEngine, require_spark
from sandbox.execution.storage import decrypt_file


class ExecutionEngine(Protocol):
    """Runs one plan's bounded SQL over one stored version."""

    name: Engine

    def execute(self, version_path: Path, data_key: bytes, sql: str, params: dict | None = None, *,
                timeout_s: float | None = None, fingerprint: str | None = None) -> pa.Table: ...

    def close(self) -> None: ...


def engine_of(policy: DatasetPolicy, default: str) -> Engine:
    """The engine of a dataset: its policy's, else the instance's setting."""
    return policy.engine if policy.engine is not None else Engine(default)


@functools.cache
def _spark_checked() -> bool:
    require_spark()
    return True


def check_runnable(engine: Engine, bounded_sql: str) -> None:
    """Before any budget is reserved: raise ``spark_unsupported`` for a plan that
    Spark cannot run with DuckDB's semantics, or ``spark_missing_*`` when PySpark or
    Java is missing. Nothing to check for DuckDB."""
    if engine is Engine.SPARK:
        emit_bounded(bounded_sql, engine)
        _spark_checked()


class DuckDBEngine:
    """The hardened DuckDB worker pool (``sandbox.execution.worker``)."""

    name = Engine.DUCKDB

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def execute(self, version_path: Path, data_key: bytes, sql: str, params: dict | None = None, *,
                timeout_s: float | None = None, fingerprint: str | None = None) -> pa.Table:
        table: pa.Table = self.pool.execute(version_path, data_key, sql, params, timeout_s=timeout_s,
                                            fingerprint=fingerprint)
        return table

    def close(self) -> None:
        self.pool.close()


def write_parquet_tables(database: Path, folder: Path) -> dict[str, Path]:
    """Each table of a clear version database as ``<folder>/<table>.parquet``."""
    con = duckdb.connect(str(database), read_only=True,
                         config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        out = {}
        for name in names:
            path = folder / f"{name}.parquet"
            quoted = '"' + name.replace('"', '""') + '"'
            con.execute(f"COPY (SELECT * FROM {quoted}) TO ? (FORMAT parquet)", [str(path)])
            out[name] = path
        return out
    finally:
        con.close()


class SparkVersionEngine:
    """Stored versions on Spark: decrypt, write Parquet, run, remove."""

    name = Engine.SPARK

    def __init__(self, spark: SparkEngine, temp_root: Path | None = None) -> None:
        self.spark, self.temp_root = spark, temp_root

    def execute(self, version_path: Path, data_key: bytes, sql: str, params: dict | None = None, *,
                timeout_s: float | None = None, fingerprint: str | None = None) -> pa.Table:
        emit_bounded(sql, Engine.SPARK)                  # refuse before decrypting anything
        work = Path(tempfile.mkdtemp(prefix="dps-spark-", dir=self.temp_root))
        os.chmod(work, 0o700)
        try:
            decrypt_file(Path(version_path), data_key, work / "ds.duckdb")
            tables = write_parquet_tables(work / "ds.duckdb", work)
            (work / "ds.duckdb").unlink()
            return self.spark.execute(tables, sql, params, timeout_s=timeout_s, fingerprint=fingerprint)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        self.spark.stop()
