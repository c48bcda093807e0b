"""Spilling: a version database spills past its memory limit into a private dir
inside the worker's temp folder, up to DPS_WORKER_SPILL_MB; with 0 nothing spills
and the same query fails on the data as run_failed. Hardening holds either way."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import duckdb
import pytest

from queries.errors import ExecutionFailed
from queries.hardened_duckdb import EngineLimits, Spill, open_hardened
from sandbox.execution.storage import encrypt_file, wrap_key
from sandbox.execution.worker import WorkerLimits, WorkerPool

from .conftest import assert_no_leak, log_record

ROWS = 3_000_000
# a self-join whose hash table is several times larger than 64 MiB
JOIN = "SELECT count(*) AS n, sum(a.v + b.v) AS s FROM ds.big AS a JOIN ds.big AS b ON a.id = b.id"
SMALL = dict(memory_mb=64, threads=1, timeout_s=60.0, address_space_mb=2048, cpu_seconds=120)


@pytest.fixture(scope="module")
def big_version(tmp_path_factory) -> tuple[Path, bytes]:
    folder = tmp_path_factory.mktemp("big")
    plain = folder / "plain.duckdb"
    con = duckdb.connect(str(plain))
    con.execute(f"CREATE TABLE big AS SELECT i AS id, (i % 997) / 7.0 AS v FROM range({ROWS}) AS r(i)")
    con.execute("CHECKPOINT")
    con.close()
    data_key = os.urandom(32)
    path = folder / "big.dpsv"
    encrypt_file(plain, path, data_key, wrap_key(data_key, os.urandom(32)), hashlib.sha256(b"big").hexdigest())
    plain.unlink()
    return path, data_key


def _version_folders(root: Path) -> list[Path]:
    return [p for w in root.glob("dps-worker-*") for p in w.iterdir() if p.is_dir()]


def test_a_join_over_the_memory_limit_spills_into_the_workers_temp_folder(big_version, tmp_path):
    path, key = big_version
    pool = WorkerPool(1, WorkerLimits(**SMALL, spill_mb=2048), temp_root=tmp_path)
    try:
        got = pool.execute(path, key, JOIN, {}).to_pylist()
        assert got[0]["n"] == ROWS
        [folder] = _version_folders(tmp_path)
        for spill in (folder / "spill", folder / "empty" / "spill"):
            assert spill.is_dir() and stat.S_IMODE(spill.stat().st_mode) == 0o700
        assert [p.name for p in (folder / "spill").iterdir() if p.name.startswith("duckdb_temp")], \
            "the data database never used its spill dir"
    finally:
        pool.close()
    assert_no_leak(pool, tmp_path)
    assert not folder.exists()


def test_without_spilling_the_same_join_fails_on_the_data(big_version, tmp_path):
    path, key = big_version
    pool = WorkerPool(1, WorkerLimits(**SMALL, spill_mb=0), log_dir=tmp_path / "log", temp_root=tmp_path)
    try:
        with pytest.raises(ExecutionFailed) as err:
            pool.execute(path, key, JOIN, {})
        assert err.value.code == "run_failed"
        record = log_record(tmp_path / "log", err.value.error_id)
        assert (record["stage"], record["cause"]) == ("run", "query_resources")
        [folder] = _version_folders(tmp_path)
        assert not (folder / "spill").exists() and not (folder / "empty" / "spill").exists()
        assert pool.execute(path, key, "SELECT count(*) AS n FROM ds.big", {}).to_pylist() == [{"n": ROWS}]
    finally:
        pool.close()
    assert_no_leak(pool, tmp_path)


@pytest.fixture()
def spilling(tmp_path):
    duckdb.connect(str(tmp_path / "ds.duckdb")).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    (tmp_path / "spill").mkdir(mode=0o700)
    (tmp_path / "beside.csv").write_text("a\n1\n")
    db = open_hardened(tmp_path / "ds.duckdb", EngineLimits(memory_mb=64, timeout_s=5),
                       Spill(tmp_path / "spill", 100))
    yield db, tmp_path
    db.close()


def test_a_spilling_database_keeps_the_rest_of_the_hardening(spilling):
    db, folder = spilling
    settings = dict(db.execute("SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access',"
                               " 'lock_configuration', 'access_mode', 'temp_directory', "
                               "'autoload_known_extensions')").fetchall())
    assert settings == {"enable_external_access": "false", "lock_configuration": "true", "access_mode": "read_only",
                        "temp_directory": str(folder / "spill"), "autoload_known_extensions": "false"}
    for sql in (f"SELECT * FROM read_csv('{folder}/beside.csv')", "SELECT * FROM read_text('/etc/passwd')",
                "SELECT * FROM glob('/tmp/*')", f"SELECT * FROM glob('{folder}/*')",
                f"ATTACH '{folder}/other.duckdb' AS other", f"COPY (SELECT 1) TO '{folder}/out.csv'",
                "SET temp_directory = '/tmp'", "SET max_temp_directory_size = '100GB'",
                "SET enable_external_access = true", "SET disabled_filesystems = ''",
                "SELECT * FROM read_csv('https://example.com/x.csv')", "CREATE TABLE ds.y AS SELECT 1"):
        with pytest.raises(duckdb.Error):
            db.cursor().execute(sql).fetchall()
    assert not (folder / "out.csv").exists() and not (folder / "other.duckdb").exists()


def test_an_in_memory_database_never_spills(tmp_path):
    with pytest.raises(ValueError):
        open_hardened(None, EngineLimits(), Spill(tmp_path, 100))
    db = open_hardened(None, EngineLimits(memory_mb=64))
    try:
        assert db.execute("SELECT current_setting('temp_directory')").fetchone() == ("",)
        with pytest.raises(duckdb.Error):
            db.execute(f"SELECT * FROM glob('{tmp_path}/*')").fetchall()
    finally:
        db.close()
