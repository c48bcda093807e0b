"""The Spark engine: the bounded SQL on Apache Spark through PySpark.

One ``SparkSession`` per instance (``DPS_SPARK_MASTER``: ``local[N]`` runs Spark
inside this process's JVM, ``spark://host:port`` a standalone cluster). Each
query runs in a fresh child session (``newSession``): its temporary views — one
per table the query reads, over that version's Parquet files — and its SQL
configuration never outlive it. The session runs with ANSI mode off, so a cast
or a division that fails on a value yields NULL as DuckDB's ``TRY`` does, and
the SQL it runs is the plan's tree emitted for Spark (``queries.dialects``).

The same observables contract as the DuckDB worker holds:

* a query is first run on empty tables of the same schema; what fails there is
  refused as ``query_invalid`` before any row is read;
* every failure on the data — a Spark error, the time limit (the query's job group
  is cancelled) — is one outcome, ``run_failed``, with the worker's fixed message
  and a random ``error_id``; the log holds the Java exception's class name and
  the plan fingerprint, never Spark's message (which can quote values);
* the rows the query may read are bounded before it runs: the stored row counts
  of the tables it names (Parquet footers) against ``DPS_SPARK_MAX_ROWS_READ``,
  refused as ``rows_read_exceeded`` (a function of the stored version and the
  setting, known before the run, so it never depends on the query's outcome).

PySpark is an optional extra and Java 17 or newer must be on ``PATH`` (or in
``JAVA_HOME``): :func:`require_spark` names what is missing with a stable code.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import secrets
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from queries.dialects import emit_bounded
from queries.errors import ExecutionFailed, SandboxError
from queries.vocabulary import Engine
from sandbox.execution.spark_store import ParquetKey, SparkUnavailable, find_jdk_tool, kms_jar
from sandbox.execution.worker import RUN_FAILED_MESSAGE, QueryInvalid

log = logging.getLogger("dp_sandbox.spark")

MIN_JAVA = 17

# What every session runs with; DPS_SPARK_CONF adds to it but cannot change these.
FIXED_CONF: dict[str, str] = {
    "spark.sql.ansi.enabled": "false",          # TRY semantics: a failing cast or division is NULL
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.sql.parquet.enableVectorizedReader": "true",
}
DEFAULT_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",            # a cluster on other hosts sets the driver's routable address
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "2g",
}


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def require_spark() -> None:
    """Raise :class:`SparkUnavailable` naming what is missing: ``spark_missing_pyspark``
    (install the ``spark`` extra), ``spark_missing_java``, ``spark_java_too_old``, or
    ``spark_missing_javac`` (the key service of encrypted versions is compiled once)."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailable("the Spark engine needs PySpark: pip install 'dp-sandbox[spark]'",
                               code="spark_missing_pyspark", missing="pyspark")
    java = find_jdk_tool("java")
    if java is None:
        raise SparkUnavailable(f"the Spark engine needs Java {MIN_JAVA} or newer on PATH or in JAVA_HOME",
                               code="spark_missing_java", missing="java")
    major = _java_major(java)
    if major is None or major < MIN_JAVA:
        raise SparkUnavailable(f"the Spark engine needs Java {MIN_JAVA} or newer; {java} is older",
                               code="spark_java_too_old", missing="java", found=major)
    kms_jar()                                   # spark_missing_javac when it must be built and cannot


def parse_conf(text: str) -> dict[str, str]:
    """``DPS_SPARK_CONF`` (``spark.a=1,spark.b=x``) as a mapping."""
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    return {k.strip(): v.strip() for k, v in pairs}


@dataclass(frozen=True)
class SparkLimits:
    timeout_s: float = 120.0
    max_rows_read: int = 1_000_000_000


def _failure(code: str, message: str, cause: str, fingerprint: str | None) -> ExecutionFailed:
    """One fixed outcome per code, its cause only in the log."""
    error_id = secrets.token_hex(8)
    log.warning("spark query failed: %s error_id=%s fingerprint=%s", cause, error_id, fingerprint)
    return ExecutionFailed(message, code=code, error_id=error_id)


def _cause(exc: BaseException) -> str:
    """The Java exception's class name (or Python's), never its message."""
    java = getattr(exc, "getErrorClass", None)
    try:
        name = java() if callable(java) else None
    except Exception:
        name = None
    return str(name or type(exc).__name__)


class SparkEngine:
    """Runs bounded SQL on Spark; thread-safe, one ``SparkSession`` for the engine."""

    name = Engine.SPARK

    def __init__(self, master: str = "local[2]", conf: Mapping[str, str] | None = None,
                 limits: SparkLimits = SparkLimits(), app_name: str = "dp-sandbox") -> None:
        self.master, self.limits, self.app_name = master, limits, app_name
        self.conf = {**DEFAULT_CONF, **dict(conf or {}), **FIXED_CONF}
        self._spark: Any = None
        self._owned = False
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The engine's SparkSession, started on first use."""
        with self._lock:
            if self._spark is None:
                require_spark()
                from pyspark import SparkContext
                from pyspark.sql import SparkSession

                self._owned = SparkContext._active_spark_context is None   # stop only what this engine started
                jar = str(kms_jar())                     # the key service of encrypted versions
                conf = {**self.conf, "spark.driver.extraClassPath": jar, "spark.executor.extraClassPath": jar}
                builder = SparkSession.builder.master(self.master).appName(self.app_name)
                for key, value in conf.items():
                    builder = builder.config(key, value)
                self._spark = builder.getOrCreate()
                self._spark.sparkContext.setLogLevel("ERROR")
            return self._spark

    def stop(self) -> None:
        with self._lock:
            if self._spark is not None and self._owned:
                self._spark.stop()
            self._spark = None

    @staticmethod
    def rows_stored(tables: Mapping[str, Path]) -> int:
        total = 0
        for path in tables.values():
            files = sorted(Path(path).glob("*.parquet")) if Path(path).is_dir() else [Path(path)]
            total += sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        return total

    def execute(self, tables: Mapping[str, Path], bounded_sql: str, params: Mapping[str, Any] | None = None, *,
                key: ParquetKey | None = None, rows: Mapping[str, int] | None = None,
                timeout_s: float | None = None, fingerprint: str | None = None) -> pa.Table:
        """Run one plan's bounded SQL (DuckDB text) over ``tables`` (name → Parquet
        file or folder) and return the exact bounded aggregates as Arrow.

        ``key`` reads files encrypted under a version's Parquet key
        (``sandbox.execution.spark_store``); ``rows`` are their stored row counts
        (an encrypted footer cannot be read without the key)."""
        emitted = emit_bounded(bounded_sql, Engine.SPARK)   # QueryRejected(spark_unsupported) before anything
        missing = [t for t in emitted.tables if t not in tables]
        if missing:
            raise SandboxError("the version holds no such table", code="unknown_table", status=422, tables=missing)
        read = (sum(rows[t] for t in emitted.tables) if rows is not None
                else self.rows_stored({t: tables[t] for t in emitted.tables}))
        if read > self.limits.max_rows_read:
            raise SandboxError("the query would read more stored rows than DPS_SPARK_MAX_ROWS_READ allows",
                               code="rows_read_exceeded", status=422, limit=self.limits.max_rows_read)
        spark = self.session().newSession()
        for name, value in (key.read_settings() if key else {}).items():
            spark.conf.set(name, value)
        args = {k: v for k, v in dict(params or {}).items() if f":{k}" in emitted.sql}
        frames = {t: spark.read.parquet(str(tables[t])) for t in emitted.tables}
        try:                                  # the empty twin: same schema, no rows
            for name, frame in frames.items():
                frame.limit(0).createOrReplaceTempView(name)
            spark.sql(emitted.sql, args=args).toArrow()
        except Exception as exc:
            error = _failure("query_invalid", "", _cause(exc), fingerprint)
            raise QueryInvalid(error.error_id) from None
        for name, frame in frames.items():
            frame.createOrReplaceTempView(name)
        return self._run(spark, emitted.sql, args, timeout_s or self.limits.timeout_s, fingerprint)

    def _run(self, spark: Any, sql: str, args: dict[str, Any], timeout: float, fingerprint: str | None) -> pa.Table:
        group = "dps-" + secrets.token_hex(8)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                spark.sparkContext.setJobGroup(group, "dp-sandbox bounded query", interruptOnCancel=True)
                box["table"] = spark.sql(sql, args=args).toArrow()
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=work, name=group, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            spark.sparkContext.cancelJobGroup(group)
            thread.join(30)
            raise _failure("run_failed", RUN_FAILED_MESSAGE, "query_timeout", fingerprint)
        if "error" in box:
            raise _failure("run_failed", RUN_FAILED_MESSAGE, _cause(box["error"]), fingerprint)
        return _naive_timestamps(box["table"])


def _naive_timestamps(table: pa.Table) -> pa.Table:
    """Spark's timestamps arrive tagged UTC (the session's zone); DuckDB's are naive."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz else f
              for f in table.schema]
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table
