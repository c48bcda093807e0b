"""Shared fixtures: the demo health data in a real DuckDB as schema ``ds``, and
the health policy with column types filled in from that data."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from queries.policy import DatasetPolicy, parse_policy
from sandbox.demo.data import HEALTH_POLICY, write_health

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sql"

_TYPES = {"BIGINT": "integer", "INTEGER": "integer", "SMALLINT": "integer", "TINYINT": "integer",
          "HUGEINT": "integer", "DOUBLE": "float", "FLOAT": "float", "VARCHAR": "string", "DATE": "date",
          "TIMESTAMP": "timestamp", "BOOLEAN": "boolean"}


FIELDS = ("name", "ref", "code", "note", "tables")


def read_golden(name: str) -> list[dict]:
    """Blocks separated by blank lines; ``-- key: value`` lines are fields, the
    rest is the SQL (a trailing ``;`` is kept out)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    blocks = []
    for raw in text.split("\n\n"):
        fields, sql_lines = {}, []
        for line in raw.strip("\n").splitlines():
            key, _, value = line[3:].partition(":")
            key = key.strip()
            if line.startswith("-- ") and key in FIELDS and not sql_lines:
                fields[key] = (fields[key] + " " + value.strip()) if key in fields else value.strip()
            elif line.startswith("--") and not sql_lines:
                continue
            elif line.strip():
                sql_lines.append(line)
        if sql_lines and ("name" in fields or "code" in fields):
            sql = "\n".join(sql_lines).strip()
            fields["sql"] = sql[:-1] if sql.endswith(";") and fields.get("keep_semicolon") is None else sql
            blocks.append(fields)
    return blocks


@pytest.fixture(scope="session")
def health_db(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    folder = tmp_path_factory.mktemp("health")
    write_health(folder, people=20_000)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ds")
    con.execute(f"CREATE TABLE ds.people AS SELECT * FROM read_parquet('{folder / 'people.parquet'}')")
    con.execute(f"CREATE TABLE ds.visits AS SELECT * FROM read_csv('{folder / 'visits.csv'}')")
    con.execute(f"CREATE TABLE ds.clinics AS SELECT * FROM read_csv('{folder / 'clinics.csv'}')")
    return con


def typed(policy: DatasetPolicy, con: duckdb.DuckDBPyConnection) -> DatasetPolicy:
    types: dict[str, dict[str, str]] = {}
    for table, column, dtype in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'ds'").fetchall():
        types.setdefault(table, {})[column] = _TYPES.get(dtype, "string")
    return policy.with_types(types)


@pytest.fixture(scope="session")
def policy(health_db) -> DatasetPolicy:
    return typed(parse_policy(HEALTH_POLICY), health_db)


@pytest.fixture(scope="session")
def loose_policy(health_db) -> DatasetPolicy:
    """Same policy with per-unit limits that the demo data never reaches, so the
    bounded result equals the plain query's result (clamping aside)."""
    text = HEALTH_POLICY.replace("max_groups_per_unit = 5", "max_groups_per_unit = 400") \
                        .replace("max_groups_per_unit = 1\n", "max_groups_per_unit = 400\n")
    return typed(parse_policy(text), health_db)


def pytest_generate_tests(metafunc):
    for fixture, name in (("accepted_block", "accepted.sql"), ("rejected_block", "rejected.sql")):
        if fixture in metafunc.fixturenames:
            blocks = read_golden(name)
            metafunc.parametrize(fixture, blocks, ids=[b.get("name") or f"{i}:{b.get('code')}"
                                                       for i, b in enumerate(blocks)])


@pytest.fixture(scope="session")
def accepted_blocks() -> list[dict]:
    return read_golden("accepted.sql")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def small_dataset(policy_text: str, *statements: str) -> tuple[DatasetPolicy, duckdb.DuckDBPyConnection]:
    """A small dataset for exact checks: ``statements`` create and fill tables in
    schema ``ds`` of a fresh in-memory DuckDB; the policy gets their column types."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ds")
    for statement in statements:
        con.execute(statement)
    return typed(parse_policy(policy_text), con), con


def run_bounded(plan, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    params = {"salt": plan.params.get("salt", "")} if "$salt" in plan.bounded_sql else None
    return con.cursor().execute(plan.bounded_sql, params).fetchall()
