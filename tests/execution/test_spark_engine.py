"""The Spark engine's refusals that come before any Spark job: a missing Java is
named with a stable code, and a query that would read more stored rows than the
bound is refused from the Parquet footers alone."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from queries.errors import SandboxError
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
