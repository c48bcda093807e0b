"""The golden corpus on both engines over the same data: the exact bounded
aggregates before noise are equal for integers and group keys, and within the
fixed-point step of the aggregate's bound for floats. Per-unit limits are the
loose policy's (never reached by the demo data), so the engines' different
keyed hashes choose no rows differently.

The default tier runs a subset in ``local[2]``; the ``spark`` tier (``-m spark``)
runs every accepted query on a standalone cluster. Queries the Spark engine
refuses are listed in docs/scale.md; each is refused by code, never by a failure.
"""

from __future__ import annotations

import datetime
import decimal
import math
import secrets
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from queries import plan_query
from queries.centring import fixed_point_step
from queries.dialects import emit_bounded
from queries.errors import QueryRejected
from privacy import PrivacyLoss, release
from queries.vocabulary import Engine
from sandbox.execution.spark_store import ParquetKey, write_encrypted

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sql"

SALT = "golden-salt"
# refused on Spark with spark_unsupported (docs/scale.md): the quantile layers use DuckDB lists
REFUSED_ON_SPARK = {"median_age", "quantile_cost_by_kind", "many_aggregates", "codelab_median_spend"}
# the default tier's subset: a count, an average, a date key, a string key and a refused quantile
SUBSET = {"count_by_sex", "avg_income_by_sex", "codelab_total_cost_per_day_of_week", "strftime_month_key",
          "median_age"}


def _accepted() -> list[dict]:
    """Each block's name and query (the ``--`` lines are fields or comments)."""
    blocks = []
    for raw in (FIXTURES / "accepted.sql").read_text(encoding="utf-8").split("\n\n"):
        lines = raw.strip("\n").splitlines()
        names = [line[len("-- name:"):].strip() for line in lines if line.startswith("-- name:")]
        body = "\n".join(line for line in lines if not line.startswith("--")).strip()
        if names and body:
            blocks.append({"name": names[0], "sql": body.removesuffix(";")})
    return blocks


ACCEPTED = _accepted()


def _params():
    out = []
    for block in ACCEPTED:
        marks = [] if block["name"] in SUBSET else [pytest.mark.spark]
        out.append(pytest.param(block, id=block["name"], marks=marks))
    return out


@dataclass(frozen=True)
class EncryptedTables:
    """The demo tables as Spark reads a stored version: Parquet encrypted under a
    version's key (``sandbox.execution.spark_store``), with their row counts."""

    tables: dict[str, Path]
    rows: dict[str, int]
    key: ParquetKey


@pytest.fixture(scope="session")
def spark_tables(health_db, tmp_path_factory, spark_engine) -> EncryptedTables:
    clear_folder = tmp_path_factory.mktemp("spark-health-clear")
    folder = tmp_path_factory.mktemp("spark-health")
    clear, rows = {}, {}
    for name in ("people", "visits", "clinics"):
        clear[name] = clear_folder / f"{name}.parquet"
        health_db.execute(f"COPY ds.{name} TO '{clear[name]}' (FORMAT parquet)")
        rows[name] = health_db.execute(f"SELECT COUNT(*) FROM ds.{name}").fetchone()[0]
    key = ParquetKey.of(secrets.token_bytes(32))
    write_encrypted(spark_engine.session(), clear, folder, key)
    return EncryptedTables({name: folder / name for name in clear}, rows, key)


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype) or (pa.types.is_decimal(dtype) and dtype.scale == 0):
        return "integer"
    return str(dtype)


def _step(plan, column: str) -> float:
    for agg in plan.aggregates:
        if column in agg.columns.values():
            return fixed_point_step(max(abs(agg.lower), abs(agg.upper)))
    return 0.0


def _key(row) -> tuple:
    return tuple((v is None, str(v)) for v in row)


@pytest.mark.parametrize("block", _params())
def test_bounded_aggregates_equal_on_duckdb_and_spark(block, loose_policy, health_db, spark_engine, spark_tables):
    plan = plan_query(block["sql"], loose_policy, salt=SALT)
    if block["name"] in REFUSED_ON_SPARK:
        with pytest.raises(QueryRejected) as info:
            emit_bounded(plan.bounded_sql, Engine.SPARK)
        assert info.value.code == "spark_unsupported"
        return
    duck = health_db.cursor().sql(plan.bounded_sql, params=plan.params if "$salt" in plan.bounded_sql else None)
    expected = duck.to_arrow_table()
    got = spark_engine.execute(spark_tables.tables, plan.bounded_sql, plan.params, key=spark_tables.key,
                               rows=spark_tables.rows)
    assert got.column_names == expected.column_names
    assert [_kind(t) for t in got.schema.types] == [_kind(t) for t in expected.schema.types]
    assert got.num_rows == expected.num_rows > 0
    keys = [k.column for k in plan.group_keys]
    rows_e = sorted(expected.to_pylist(), key=lambda r: _key([r[k] for k in keys]))
    rows_g = sorted(got.to_pylist(), key=lambda r: _key([r[k] for k in keys]))
    for e, g in zip(rows_e, rows_g, strict=True):
        for column, value in e.items():
            other = g[column]
            if isinstance(value, float) and column not in keys:
                assert other is not None and math.isclose(value, other, rel_tol=0,
                                                          abs_tol=max(_step(plan, column), 1e-9)), column
            else:
                assert type(value) in (int, str, bool, decimal.Decimal, datetime.date, datetime.datetime,
                                       float, type(None))
                assert value == other, column
    # the released noise: the same mechanisms, scales and loss from either engine's aggregates
    loss = PrivacyLoss(epsilon=1.0, delta=1e-7)
    from_duck, from_spark = release(plan, expected, loss), release(plan, got, loss)
    assert from_spark.mechanisms == from_duck.mechanisms and from_spark.loss == from_duck.loss
    assert from_spark.columns == from_duck.columns
