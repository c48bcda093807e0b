"""Time, memory and CPU limits: a runaway query ends with a clear error, alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from queries.errors import ExecutionFailed
from sandbox.execution.worker import WorkerLimits, WorkerPool

from .conftest import alive, assert_no_leak, log_record

TIMEOUT = 1.5
TIGHT = WorkerLimits(memory_mb=256, threads=1, timeout_s=TIMEOUT, address_space_mb=1536, cpu_seconds=60)


@pytest.fixture(scope="module")
def tight_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tight")


@pytest.fixture(scope="module")
def tight_pool(tight_home):
    pool = WorkerPool(2, TIGHT, log_dir=tight_home / "log", temp_root=tight_home)
    yield pool
    pids = pool.pids()
    pool.close()
    assert_no_leak(pool, tight_home, pids)


def _worker_dirs(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.name.startswith("dps-worker-")}


# (SQL, the caller's code, the causes the log may give). What fails on the empty twin is
# refused as query_invalid before any data is read; what only fails on the data is run_failed.
RUNAWAY = [
    ("SELECT length(repeat('x', 2000000000)) AS n", "query_invalid", {"query_resources", "worker_died"}),
    ("SELECT length(lpad('x', 1500000000, 'y')) AS n", "query_invalid",
     {"query_resources", "query_timeout", "worker_died"}),
    ("SELECT list(i) AS l FROM range(1000000000) t(i)", "query_invalid", {"query_resources", "worker_died"}),
    ("SELECT sleep_ms(60000) AS s", "query_invalid", {"query_timeout"}),
    ("SELECT sum(i) AS s FROM range(1000000000000) t(i)", "query_invalid", {"query_timeout"}),
    ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t", "query_invalid",
     {"query_timeout", "query_resources", "worker_died"}),
    ("SELECT length(string_agg(diagnosis || repeat('x', 1000), ',')) FROM ds.people, range(2000)", "run_failed",
     {"query_resources", "query_timeout", "worker_died"}),
    ("SELECT max(a.visit_id + b.visit_id + c.visit_id) FROM ds.visits a, ds.visits b, ds.visits c", "run_failed",
     {"query_timeout"}),
    ("SELECT count(*) FROM ds.people WHERE sleep_ms(age) IS NULL", "run_failed", {"query_timeout"}),
    ("SELECT max(length(repeat(city, 400000000))) FROM ds.people", "run_failed",
     {"query_resources", "worker_died"}),
]


@pytest.mark.parametrize("sql, code, causes", RUNAWAY)
def test_runaway_query_ends_with_one_code_and_the_pool_goes_on(tight_pool, tight_home, version, data_key,
                                                               sql, code, causes):
    before = set(tight_pool.pids())
    with pytest.raises(ExecutionFailed) as err:
        tight_pool.execute(version.path, data_key, sql, {})
    assert err.value.code == code
    assert log_record(tight_home / "log", err.value.error_id)["cause"] in causes
    got = tight_pool.execute(version.path, data_key, "SELECT count(*) AS n FROM ds.people", {})
    assert got.column("n").to_pylist() == [5_000]
    after = set(tight_pool.pids())
    assert len(after) == 2
    for pid in before - after:                       # a killed worker is gone, with its temp dir
        assert not alive(pid)
    assert len(_worker_dirs(tight_home)) == 2


def test_failures_on_the_data_look_alike_whatever_their_cause(tight_pool, tight_home, version, data_key):
    """An engine error, the time limit and the worker's death reach the caller as one outcome."""
    errors = []
    for sql in ("SELECT CAST(city AS INTEGER) AS x FROM ds.people",
                "SELECT count(*) FROM ds.people WHERE sleep_ms(age) IS NULL",
                "SELECT max(length(repeat(city, 400000000))) FROM ds.people"):
        with pytest.raises(ExecutionFailed) as err:
            tight_pool.execute(version.path, data_key, sql, {})
        errors.append(err.value)
    assert {e.code for e in errors} == {"run_failed"}
    assert {type(e) for e in errors} == {ExecutionFailed}
    assert len({str(e).replace(e.error_id, "") for e in errors}) == 1
    assert len({json.dumps(e.to_dict()).replace(e.error_id, "") for e in errors}) == 1
    causes = [log_record(tight_home / "log", e.error_id)["cause"] for e in errors]
    assert causes[0] == "query_failed" and causes[1] == "query_timeout"
    assert causes[2] in {"query_resources", "worker_died"}


def test_a_timeout_kills_only_its_own_worker(tight_pool, version, data_key):
    for sql, code in (("SELECT sleep_ms(60000)", "query_invalid"),
                      ("SELECT count(*) FROM ds.people WHERE sleep_ms(100) IS NULL", "run_failed")):
        before = set(tight_pool.pids())
        with pytest.raises(ExecutionFailed) as err:
            tight_pool.execute(version.path, data_key, sql, {}, timeout_s=0.5)
        assert err.value.code == code
        after = set(tight_pool.pids())
        assert len(before - after) == 1 and len(before & after) == 1


def test_worker_runs_under_os_limits(tight_pool, version, data_key):
    for _ in range(2):                                  # idle workers are taken in turn
        tight_pool.execute(version.path, data_key, "SELECT 1", {})
    for pid in tight_pool.pids():
        limits = Path(f"/proc/{pid}/limits").read_text()
        row = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
        assert row["Max address space"][:2] == [str(1536 << 20)] * 2
        assert row["Max core file size"][:2] == ["0", "0"]


@pytest.mark.slow        # an end-to-end run of several seconds: CI runs it in the slow tier
def test_cpu_limit_kills_a_busy_query(version, data_key, tmp_path):
    limits = WorkerLimits(memory_mb=256, threads=1, timeout_s=30, address_space_mb=1536, cpu_seconds=1)
    with WorkerPool(1, limits, log_dir=tmp_path / "log", temp_root=tmp_path) as pool:
        for sql, code in (("SELECT sum(i) FROM range(1000000000000) t(i)", "query_invalid"),
                          ("SELECT count(*) FROM ds.people a, ds.people b, ds.people c "
                           "WHERE hash(a.age + b.age * 7 + c.age * 13) = 0", "run_failed")):
            with pytest.raises(ExecutionFailed) as err:
                pool.execute(version.path, data_key, sql, {})
            assert err.value.code == code
            record = log_record(tmp_path / "log", err.value.error_id)
            assert record["cause"] == "worker_died" and record["exit_code"] == -signal.SIGXCPU
            assert pool.execute(version.path, data_key, "SELECT 2 AS x", {}).column("x").to_pylist() == [2]


def test_cached_version_still_needs_the_right_key(pool, version, data_key, tmp_path):
    pool.execute(version.path, data_key, "SELECT 1", {})
    pool.execute(version.path, data_key, "SELECT 1", {})
    with pytest.raises(ExecutionFailed) as err:
        pool.execute(version.path, os.urandom(32), "SELECT count(*) FROM ds.people", {})
    assert err.value.code == "version_corrupt"
    bad = tmp_path / "bad.dpsv"
    blob = bytearray(version.path.read_bytes())
    blob[len(blob) // 2] ^= 1
    bad.write_bytes(bytes(blob))
    with pytest.raises(ExecutionFailed) as err:
        pool.execute(bad, data_key, "SELECT count(*) FROM ds.people", {})
    assert err.value.code == "version_corrupt"


def test_closed_pool_refuses_and_leaves_nothing(version, data_key, tmp_path):
    pool = WorkerPool(2, TIGHT, temp_root=tmp_path)
    pool.execute(version.path, data_key, "SELECT 1", {})
    pids = pool.pids()
    assert len(_worker_dirs(tmp_path)) == 2
    pool.close()
    assert_no_leak(pool, tmp_path, pids)
    with pytest.raises(ExecutionFailed) as err:
        pool.execute(version.path, data_key, "SELECT 1", {})
    assert err.value.code == "pool_closed"


def test_workers_exit_when_the_server_dies(version, data_key, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from sandbox.execution.worker import WorkerLimits, WorkerPool
        pool = WorkerPool(2, WorkerLimits(address_space_mb=1536, memory_mb=256), temp_root=Path({str(tmp_path)!r}))
        pool.execute(Path({str(version.path)!r}), bytes.fromhex({data_key.hex()!r}), "SELECT 1", {{}})
        print(" ".join(map(str, pool.pids())), flush=True)
        os._exit(0)
    """)
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": root})
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2, out.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(alive(p) for p in pids) or _worker_dirs(tmp_path)):
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
    assert _worker_dirs(tmp_path) == set()


def test_a_version_is_decrypted_once_and_evicted_cleanly(version, data_key, health_policy, health_dir,
                                                         master_key, tmp_path):
    from sandbox.execution.storage import ingest_version, unwrap_key

    other = ingest_version(health_policy, health_dir, tmp_path / "home", master_key)
    other_key = unwrap_key(other.wrapped_key, master_key)
    limits = WorkerLimits(memory_mb=256, timeout_s=5, address_space_mb=1536, cached_versions=1)
    root = tmp_path / "workers"
    root.mkdir()
    with WorkerPool(1, limits, temp_root=root) as pool:
        for _ in range(5):
            pool.execute(version.path, data_key, "SELECT count(*) FROM ds.people", {})
        opened = list(root.glob("dps-worker-*/*/ds.duckdb"))
        assert len(opened) == 1
        assert opened[0].parent.stat().st_mode & 0o777 == 0o700
        pool.execute(other.path, other_key, "SELECT count(*) FROM ds.people", {})
        now = list(root.glob("dps-worker-*/*/ds.duckdb"))
        assert len(now) == 1 and now != opened            # the first one was closed and removed
    assert list(root.iterdir()) == []
