"""The execution-engine interface: where a plan's bounded SQL runs.

Both engines take the same input — a stored version (the AES-GCM file of
``sandbox.execution.storage``, its data key unwrapped by the master key) and the
plan's bounded SQL — and return the same output: the exact bounded aggregates as
Arrow, or one of the same errors (``query_invalid`` before any row is read,
``run_failed`` with a fixed message afterwards). The privacy layer, the ledger,
products and the audit log never learn which engine ran, except from the
``engine`` field of the run's audit records.

* :class:`DuckDBEngine` is the isolated worker pool, unchanged.
* :class:`SparkVersionEngine` reads the version's Parquet copy, encrypted with
  Parquet modular encryption under a key derived from the version's data key
  (``sandbox.execution.spark_store``), making the copy first if the version has
  none yet. The clear data exists only in a private temporary folder (0700,
  under ``DPS_WORKER_TEMP_ROOT``) while that copy is made.

The engine of a dataset is its policy's ``engine`` key, else the instance's
``DPS_ENGINE``: :func:`engine_of`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from queries.dialects import emit_bounded
from queries.policy import DatasetPolicy
from queries.resources import ResourceNeed
from queries.vocabulary import Engine
from queries.errors import SandboxError
from sandbox.execution.spark import SparkEngine, _cause, _failure, require_spark
from sandbox.execution.spark_store import ParquetKey, ParquetVersion, make_copy
from sandbox.execution.worker import RUN_FAILED_MESSAGE


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


def check_runnable(engine: Engine, bounded_sql: str, rows: ResourceNeed, max_rows_read: int) -> None:
    """Before any budget is reserved: raise ``spark_unsupported`` for a plan that
    Spark cannot run with DuckDB's semantics, ``rows_read_exceeded`` when the rows
    the tables it names may hold pass ``DPS_SPARK_MAX_ROWS_READ``, or
    ``spark_missing_*`` when PySpark, Java or a Java compiler is missing. Nothing
    to check for DuckDB.

    ``rows`` is the plan's :class:`queries.resources.ResourceNeed`: the tables'
    sizes are their declared ``rows_bound`` (public tables: their row count), so
    the refusal is a function of the SQL, the policy, public tables and the
    setting; an unknown need (a private table without a bound) is not refused."""
    if engine is Engine.SPARK:
        emitted = emit_bounded(bounded_sql, engine)
        if rows.known:
            total = sum(int(rows.rows_read.get(t, 0)) for t in emitted.tables)
            if total > max_rows_read:
                raise SandboxError(
                    f"the query may read {total:,} stored rows (from the tables' declared sizes), more than "
                    f"DPS_SPARK_MAX_ROWS_READ = {max_rows_read:,} allows; query fewer tables or ask the "
                    "dataset's owner about its rows_bound", code="rows_read_exceeded", status=422,
                    limit=max_rows_read, need_rows=total)
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


class SparkVersionEngine:
    """Stored versions on Spark, from their encrypted Parquet copies."""

    name = Engine.SPARK

    def __init__(self, spark: SparkEngine, temp_root: Path | None = None) -> None:
        self.spark, self.temp_root = spark, temp_root

    def prepare(self, version_path: Path, data_key: bytes) -> ParquetVersion:
        """The version's encrypted Parquet copy, made now if it has none."""
        return make_copy(self.spark.session(), Path(version_path), data_key, self.temp_root)

    def execute(self, version_path: Path, data_key: bytes, sql: str, params: dict | None = None, *,
                timeout_s: float | None = None, fingerprint: str | None = None) -> pa.Table:
        emit_bounded(sql, Engine.SPARK)                  # refuse before touching the version
        try:
            copy = self.prepare(version_path, data_key)
        except SandboxError:
            raise
        except Exception as exc:                         # Spark failed writing the copy: one outcome
            raise _failure("run_failed", RUN_FAILED_MESSAGE, _cause(exc), fingerprint) from None
        return self.spark.execute(copy.tables(), sql, params, key=ParquetKey.of(data_key), rows=copy.rows,
                                  timeout_s=timeout_s, fingerprint=fingerprint)

    def close(self) -> None:
        self.spark.stop()
