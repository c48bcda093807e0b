"""The Spark engine's refusals that come before any Spark job: a missing Java (or
Java compiler) is named with a stable code, and a query that would read more
stored rows than the bound is refused from the tables' declared sizes alone."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from queries.errors import SandboxError
from queries.resources import ResourceNeed
from queries.vocabulary import Engine
from sandbox.execution.engine import check_runnable
from sandbox.execution.spark import SparkEngine, SparkLimits

PROBE = ("from queries.errors import SandboxError\n"
         "from sandbox.execution.spark import require_spark\n"
         "try:\n    require_spark()\nexcept SandboxError as exc:\n    print(exc.code, exc.fields['missing'])\n")


def test_missing_java_is_named(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=str(tmp_path),
                         env={"PATH": str(tmp_path), "PYTHONPATH": ":".join(sys.path)}, check=True)
    assert out.stdout.split() == ["spark_missing_java", "java"]


def test_rows_read_bound_refuses_before_spark_starts(tmp_path):
    path = tmp_path / "people.parquet"
    duckdb.sql(f"COPY (SELECT range AS person_id FROM range(100)) TO '{path}' (FORMAT parquet)")
    engine = SparkEngine("local[1]", limits=SparkLimits(max_rows_read=99))
    with pytest.raises(SandboxError) as info:
        engine.execute({"people": path}, "SELECT COUNT(*) AS n FROM ds.people AS t0")
    assert info.value.code == "rows_read_exceeded"
    assert engine._spark is None


JAVAC_PROBE = ("from queries.errors import SandboxError\n"
               "from sandbox.execution.spark_store import kms_jar\n"
               "try:\n    kms_jar()\nexcept SandboxError as exc:\n    print(exc.code, exc.fields['missing'])\n")


def test_missing_java_compiler_is_named_when_the_key_service_must_be_built(tmp_path):
    """The key service of encrypted versions is compiled once per source: with no
    cached jar and no ``javac``, the code names the JDK's compiler."""
    out = subprocess.run([sys.executable, "-c", JAVAC_PROBE], capture_output=True, text=True, cwd=str(tmp_path),
                         env={"PATH": str(tmp_path), "PYTHONPATH": ":".join(sys.path), "HOME": str(tmp_path),
                              "XDG_CACHE_HOME": str(tmp_path / "cache")}, check=True)
    assert out.stdout.split() == ["spark_missing_javac", "javac"]


def test_rows_read_bound_refuses_before_any_budget_is_reserved():
    """The service checks the bound from the plan's need (the tables' declared
    rows_bound), before it reserves: only the tables the query names count."""
    sql = "SELECT COUNT(*) AS n FROM ds.people AS t0"
    rows = ResourceNeed(known=True, rows_read={"people": 100, "visits": 10_000})
    check_runnable(Engine.SPARK, sql, rows, max_rows_read=100)        # visits is not read
    with pytest.raises(SandboxError) as info:
        check_runnable(Engine.SPARK, sql, rows, max_rows_read=99)
    assert info.value.code == "rows_read_exceeded" and info.value.fields["limit"] == 99
    check_runnable(Engine.DUCKDB, sql, rows, max_rows_read=99)       # DuckDB has no such bound
