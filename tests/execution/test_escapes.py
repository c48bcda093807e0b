"""Hostile SQL handed straight to a live worker is refused or contained.

The SQL front end never emits any of this; these tests show the worker holds
even if it did. Two layers are checked: the live worker (statement check +
hardened database + process), and the hardened database alone with the
statement check bypassed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from queries.errors import ExecutionFailed
from sandbox.execution.storage import decrypt_file
from sandbox.execution.worker import WorkerLimits, open_hardened

from .conftest import CITIES, log_record

TARGET = "/tmp/dps-escape-target"


def _vectors(version_path: Path) -> list[str]:
    v = str(version_path)
    readers = [f"SELECT * FROM {fn}('{path}')" for fn in (
        "read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_ndjson", "read_json_objects",
        "read_text", "read_blob", "read_parquet", "parquet_metadata", "parquet_schema",
        "parquet_file_metadata", "parquet_kv_metadata", "sniff_csv", "glob") for path in ("/etc/passwd", v)]
    return readers + [
        "SELECT * FROM '/etc/passwd'",
        f"SELECT * FROM '{v}'",
        "SELECT * FROM read_csv(['/etc/passwd', '/etc/hostname'])",
        "SELECT * FROM read_text('/proc/self/environ')",
        "SELECT * FROM glob('/tmp/*')",
        # URLs
        "SELECT * FROM read_csv('https://example.com/data.csv')",
        "SELECT * FROM 'http://example.com/data.parquet'",
        "SELECT * FROM read_parquet('s3://bucket/data.parquet')",
        # writing and exporting
        f"COPY ds.people TO '{TARGET}.csv'",
        f"COPY (SELECT * FROM ds.people) TO '{TARGET}.parquet' (FORMAT parquet)",
        f"EXPORT DATABASE '{TARGET}'",
        # other databases, extensions
        f"ATTACH '{TARGET}.duckdb' AS other",
        "ATTACH ':memory:' AS other",
        "DETACH ds",
        "INSTALL httpfs",
        "LOAD httpfs",
        "FORCE INSTALL httpfs FROM 'http://example.com'",
        "SELECT * FROM iceberg_scan('x')",
        # settings
        "SET enable_external_access = true",
        "SET GLOBAL lock_configuration = false",
        "SET disabled_filesystems = ''",
        "SET memory_limit = '100GB'",
        "RESET memory_limit",
        "PRAGMA disable_optimizer",
        "PRAGMA threads = 64",
        "SET VARIABLE secret = 1",
        "SELECT * FROM enable_logging(storage = 'file', storage_path = '/tmp/dps-escape-log')",
        "CALL enable_logging(storage = 'file', storage_path = '/tmp/dps-escape-log')",
        # shadowing built-ins and tables, writes
        "CREATE TEMP MACRO least(a, b) AS a",
        "CREATE TEMP VIEW people AS SELECT 1 AS person_id",
        "CREATE TABLE ds.people2 AS SELECT * FROM ds.people",
        "DELETE FROM ds.people",
        "UPDATE ds.people SET income = 0",
        "DROP TABLE ds.people",
        "INSERT INTO ds.clinics VALUES ('X', 'North', 'gp')",
        # statements around a SELECT
        "SELECT 1; SELECT 2",
        f"SELECT 1; COPY ds.people TO '{TARGET}.csv'",
        "EXPLAIN ANALYZE SELECT count(*) FROM ds.people",
        "PREPARE p AS SELECT 1",
        "CHECKPOINT",
        "VACUUM",
        "USE system",
        # SQL inside strings
        "SELECT * FROM query('COPY ds.people TO ''/tmp/dps-escape-target.csv''')",
        "SELECT * FROM query('CREATE TEMP MACRO least(a, b) AS a')",
        "SELECT * FROM query('SET enable_external_access = true')",
        "SELECT * FROM query_table('/etc/passwd')",
        "SELECT * FROM json_execute_serialized_sql('{}')",
    ]


@pytest.fixture(scope="module")
def vectors(version) -> list[str]:
    return _vectors(version.path)


def test_every_escape_vector_is_refused_on_a_live_worker(pool, version, data_key, vectors, worker_home):
    outcomes = {}
    for sql in vectors:
        try:
            pool.execute(version.path, data_key, sql, {})
        except ExecutionFailed as exc:
            outcomes[sql] = (exc.code, log_record(worker_home / "log", exc.error_id)["cause"])
            assert exc.error_id in str(exc)
        else:
            outcomes[sql] = ("RAN", "")
    assert [sql for sql, (code, _) in outcomes.items() if code == "RAN"] == []
    # every vector fails on the empty twin already: refused before any data is read
    assert {code for code, _ in outcomes.values()} == {"query_invalid"}
    assert {cause for _, cause in outcomes.values()} <= {"statement_refused", "query_failed"}
    # the refused-at-the-door group never reached DuckDB
    for sql in ("SET VARIABLE secret = 1", "CREATE TEMP MACRO least(a, b) AS a", "SELECT 1; SELECT 2",
                f"COPY ds.people TO '{TARGET}.csv'", "INSTALL httpfs", "PRAGMA disable_optimizer"):
        assert outcomes[sql][1] == "statement_refused", sql
    # nothing was written anywhere, the data are intact, the worker still answers
    for suffix in ("", ".csv", ".parquet", ".duckdb"):
        assert not Path(TARGET + suffix).exists()
    assert not Path("/tmp/dps-escape-log").exists()
    got = pool.execute(version.path, data_key, "SELECT count(*) AS n FROM ds.people", {})
    assert got.column("n").to_pylist() == [5_000]
    assert pool.execute(version.path, data_key, "SELECT least(3, 4) AS m", {}).column("m").to_pylist() == [3]


def test_contained_sql_inside_strings(pool, version, data_key):
    """``query()`` runs SQL from a string; it is limited to a SELECT on the same locked, read-only
    database, so all it can reach is what the bounded SQL could reach anyway."""
    got = pool.execute(version.path, data_key, "SELECT * FROM query('SELECT count(*) AS n FROM ds.visits')", {})
    assert got.column("n").to_pylist() == [version.row_counts["visits"]]


def test_errors_quote_no_data_and_the_log_only_codes(pool, version, data_key, worker_home):
    with pytest.raises(ExecutionFailed) as err:
        pool.execute(version.path, data_key, "SELECT CAST(city AS INTEGER) FROM ds.people", {})
    assert err.value.code == "run_failed"
    text = json.dumps(err.value.to_dict())
    for city in CITIES:
        assert city not in text
    log = worker_home / "log" / "worker-errors.log"
    assert log.stat().st_mode & 0o777 == 0o600
    record = log_record(worker_home / "log", err.value.error_id)
    assert record["cause"] == "query_failed" and record["stage"] == "run"
    assert set(record) == {"time", "error_id", "outcome", "stage", "cause", "fingerprint"}
    assert "Conversion" not in log.read_text()
    with pytest.raises(ExecutionFailed) as err:
        pool.execute(version.path, data_key, "SELECT error(diagnosis) FROM ds.people", {})
    assert "J06" not in str(err.value) and "I10" not in str(err.value)


def test_failed_and_successful_responses_look_alike(pool, version, data_key):
    ok = pool.execute(version.path, data_key, "SELECT 1 AS x", {})
    assert ok.num_rows == 1
    with pytest.raises(ExecutionFailed) as first:
        pool.execute(version.path, data_key, "SELECT age // (age - age) AS x FROM ds.people", {})
    with pytest.raises(ExecutionFailed) as second:
        pool.execute(version.path, data_key, "SELECT CAST(diagnosis AS DATE) FROM ds.people", {})
    # one shape, one code, one message: only the id differs
    assert set(first.value.to_dict()) == set(second.value.to_dict()) == {"code", "message", "error_id"}
    assert first.value.code == second.value.code == "run_failed"
    assert str(first.value).replace(first.value.error_id, "") == str(second.value).replace(second.value.error_id, "")


@pytest.fixture()
def hardened(version, data_key, tmp_path):
    plain = tmp_path / "ds.duckdb"
    decrypt_file(version.path, data_key, plain)
    db = open_hardened(plain, WorkerLimits(memory_mb=256, timeout_s=5))
    yield db
    db.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("sql", [
    f"COPY ds.people TO '{TARGET}.csv'",
    f"EXPORT DATABASE '{TARGET}'",
    f"ATTACH '{TARGET}.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET GLOBAL lock_configuration = false",
    "SET disabled_filesystems = ''",
    "RESET memory_limit",
    "PRAGMA disable_optimizer",
    "CALL enable_logging(storage = 'file', storage_path = '/tmp/dps-escape-log')",
    "CREATE TABLE ds.people2 AS SELECT 1",
    "DELETE FROM ds.people",
    "DROP TABLE ds.people",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/*')",
])
def test_hardened_database_contains_what_the_statement_check_would_refuse(hardened, sql):
    cur = hardened.cursor()
    with pytest.raises(duckdb.Error):
        cur.execute(sql).fetchall()
    assert not Path(TARGET + ".csv").exists() and not Path(TARGET).exists()


def test_connection_state_dies_with_its_cursor(hardened):
    """Temp macros, temp views and variables are per connection: a fresh cursor per query
    means the next query never sees them."""
    first = hardened.cursor()
    first.execute("CREATE TEMP MACRO least(a, b) AS 999")
    first.execute("CREATE TEMP VIEW people AS SELECT 1 AS person_id")
    first.execute("SET VARIABLE v = 42")
    assert first.execute("SELECT least(1, 2)").fetchall() == [(999,)]
    first.close()
    second = hardened.cursor()
    assert second.execute("SELECT least(1, 2)").fetchall() == [(1,)]
    assert second.execute("SELECT count(*) FROM people").fetchall() == [(5_000,)]
    assert second.execute("SELECT getvariable('v')").fetchall() == [(None,)]
    settings = dict(second.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                   "('enable_external_access', 'lock_configuration',"
                                   " 'autoload_known_extensions', 'autoinstall_known_extensions')").fetchall())
    assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                        "autoload_known_extensions": "false", "autoinstall_known_extensions": "false"}
    # duckdb_settings() shows disabled_filesystems as '', but the file system is off for every cursor
    with pytest.raises(Exception, match="LocalFileSystem has been disabled"):
        second.execute("SELECT * FROM read_text('/etc/hostname')").fetchall()
