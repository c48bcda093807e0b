"""The post-processing database is hardened by the worker's own recipe
(``queries.hardened_duckdb``): the same escapes fail on both, with the same errors."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from privacy import postprocess
from queries.hardened_duckdb import StatementRefused, select_rows
from sandbox.execution.worker import WorkerLimits, open_hardened

TARGET = "/tmp/dps-postprocess-escape"
LOCKED = ("enable_external_access", "autoinstall_known_extensions", "autoload_known_extensions",
          "allow_community_extensions", "disabled_filesystems", "lock_configuration", "temp_directory")

ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_parquet('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_csv('https://example.com/data.csv')",
    f"COPY (SELECT 1 AS x) TO '{TARGET}.csv'",
    f"ATTACH '{TARGET}.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET GLOBAL enable_external_access = true",
    "SET GLOBAL lock_configuration = false",
    "SET disabled_filesystems = ''",
    "SET memory_limit = '100GB'",
    "RESET memory_limit",
    "SET threads = 64",
    "SET allow_community_extensions = true",
    "SET autoload_known_extensions = true",
    "CALL enable_logging(storage = 'file', storage_path = '/tmp/dps-postprocess-escape-log')",
]


@pytest.fixture(scope="module")
def worker_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("worker") / "ds.duckdb"
    builder = duckdb.connect(str(path))
    builder.execute("CREATE TABLE people AS SELECT 1 AS person_id")
    builder.close()
    db = open_hardened(path, WorkerLimits(memory_mb=256, timeout_s=5))
    yield db
    db.close()


def _outcome(db: duckdb.DuckDBPyConnection, sql: str) -> str:
    cur = db.cursor()
    try:
        cur.execute(sql).fetchall()
    except duckdb.Error as exc:
        return type(exc).__name__
    finally:
        cur.close()
    return "ran"


@pytest.mark.parametrize("sql", ESCAPES)
def test_an_escape_fails_on_the_postprocessing_database_as_on_the_worker(worker_db, sql):
    """The statement check is bypassed here (a raw cursor): the database itself holds."""
    on_worker = _outcome(worker_db, sql)
    assert on_worker != "ran"
    assert _outcome(postprocess.database(), sql) == on_worker
    assert not Path(TARGET + ".csv").exists() and not Path(TARGET + ".duckdb").exists()


def test_the_locked_settings_are_the_workers(worker_db):
    query = "SELECT " + ", ".join(f"current_setting('{name}')" for name in LOCKED)
    ours = postprocess.database().execute(query).fetchall()
    assert ours == worker_db.execute(query).fetchall()
    assert dict(zip(LOCKED, ours[0]))["lock_configuration"] is True


@pytest.mark.parametrize("sql", [
    "CREATE MACRO abs(x) AS 42",
    "CREATE TABLE kept AS SELECT 1 AS x",
    "SELECT 1 AS x; CREATE TABLE kept AS SELECT 1 AS x",
    "PRAGMA disable_optimizer",
    "SET VARIABLE v = 1",
])
def test_only_one_select_runs_so_a_call_leaves_nothing_for_the_next(sql):
    """The in-memory database is writable: what keeps one call from changing what a
    later call sees is that only a single SELECT ever runs on it."""
    db = postprocess.database()
    with pytest.raises(StatementRefused):
        select_rows(db, sql)
    assert select_rows(db, "SELECT abs(-1) AS a") == [(1,)]
    assert select_rows(db, "SELECT count(*) FROM duckdb_tables()") == [(0,)]


def test_the_noisy_table_is_seen_by_its_own_call_alone():
    db = postprocess.database()
    assert select_rows(db, "SELECT sum(x) FROM noisy", tables={"noisy": pa.table({"x": [1, 2]})}) == [(3,)]
    with pytest.raises(duckdb.CatalogException):
        select_rows(db, "SELECT * FROM noisy")


def test_each_thread_has_its_own_database():
    seen: list[duckdb.DuckDBPyConnection] = []
    thread = threading.Thread(target=lambda: seen.append(postprocess.database()))
    thread.start()
    thread.join()
    assert postprocess.database() is postprocess.database()
    assert seen and seen[0] is not postprocess.database()
