"""Mock data is made from the policy alone and never carries a real value."""

from __future__ import annotations

import duckdb
import pytest

from queries.errors import InvalidInput
from queries.policy import parse_policy
from sandbox.demo.data import HEALTH_POLICY
from sandbox.execution.mock import ID_BASE, mock_tables, write_mock


@pytest.fixture(scope="module")
def typed_policy(version):
    return parse_policy(HEALTH_POLICY).with_types(version.types)


def test_mock_is_deterministic(typed_policy, tmp_path):
    a = write_mock(typed_policy, tmp_path / "a", rows=300, fmt="parquet")
    b = write_mock(typed_policy, tmp_path / "b", rows=300, fmt="parquet")
    for name in ("people", "visits", "clinics"):
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes()
    assert mock_tables(typed_policy, 50)["people"].equals(mock_tables(typed_policy, 50)["people"])


def test_mock_follows_types_bounds_and_domains(typed_policy, tmp_path):
    path = write_mock(typed_policy, tmp_path / "mock.duckdb", rows=2000)
    con = duckdb.connect(str(path), read_only=True)
    try:
        types = {(t, c): d for t, c, d in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns()").fetchall()}
        assert types[("people", "age")] == "BIGINT"
        assert types[("visits", "cost")] == "DOUBLE"
        assert types[("visits", "visit_date")] == "DATE"
        lo, hi, n = con.execute("SELECT min(income), max(income), count(*) FROM people").fetchall()[0]
        assert 0 <= lo and hi <= 200_000 and n == 2000
        assert con.execute("SELECT max(age) <= 120 AND min(age) >= 0 FROM people").fetchall()[0][0]
        assert {r[0] for r in con.execute("SELECT DISTINCT sex FROM people").fetchall()} == {"F", "M"}
        assert {r[0] for r in con.execute("SELECT DISTINCT kind FROM clinics").fetchall()} <= {
            "hospital", "gp", "specialist"}
        # the privacy unit is unique in people and its visits join back; clinics join too
        assert con.execute("SELECT count(DISTINCT person_id) FROM people").fetchall()[0][0] == 2000
        joined = con.execute("SELECT count(*) FROM visits JOIN people USING (person_id) "
                             "JOIN clinics USING (clinic)").fetchall()[0][0]
        assert joined == con.execute("SELECT count(*) FROM visits").fetchall()[0][0]
    finally:
        con.close()


def test_mock_holds_no_identifier_or_sensitive_value_of_the_real_data(typed_policy, health_dir, tmp_path):
    mock = write_mock(typed_policy, tmp_path / "m", rows=5_000, fmt="parquet")
    con = duckdb.connect()
    try:
        def values(sql: str) -> set:
            return {r[0] for r in con.execute(sql).fetchall()}

        real_people, real_visits = health_dir / "people.parquet", health_dir / "visits.csv"
        for table, column, real in [("people", "person_id", real_people), ("visits", "person_id", real_visits),
                                    ("visits", "visit_id", real_visits)]:
            assert values(f"SELECT {column} FROM '{mock / (table + '.parquet')}'").isdisjoint(
                values(f"SELECT {column} FROM '{real}'"))
        # sensitive strings without a domain are placeholders, never real codes
        assert values(f"SELECT diagnosis FROM '{mock / 'people.parquet'}'").isdisjoint(
            values(f"SELECT diagnosis FROM '{real_people}'"))
        # no real person's record appears, even restricted to the non-identifier columns
        shared = con.execute(f"""
            SELECT count(*) FROM (
              SELECT age, sex, income, city, diagnosis FROM '{mock / 'people.parquet'}'
              INTERSECT
              SELECT age, sex, income, city, diagnosis FROM '{real_people}')""").fetchall()[0][0]
        assert shared == 0
        assert min(values(f"SELECT person_id FROM '{mock / 'people.parquet'}'")) > ID_BASE
    finally:
        con.close()


def test_mock_refuses_bad_arguments(tmp_path):
    policy = parse_policy(HEALTH_POLICY)
    with pytest.raises(InvalidInput):
        write_mock(policy, tmp_path / "x", rows=0)
    with pytest.raises(InvalidInput):
        write_mock(policy, tmp_path / "x", fmt="xlsx")
