"""Preloading: workers open the pool's current versions on their own, before their
first query, without the pool waiting; replacements do too; a version that fails
to open is not cached and the worker lives on."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from queries.errors import ExecutionFailed
from sandbox.execution.worker import WorkerPool

from .conftest import PEOPLE, TEST_LIMITS, alive, assert_no_leak

COUNT = "SELECT count(*) AS n FROM ds.people"


def _opened(root: Path) -> list[set[str]]:
    """Per worker temp dir: the version folders whose data and empty twin are written."""
    return [{p.name for p in w.iterdir() if (p / "ds.duckdb").exists() and (p / "empty" / "ds.duckdb").exists()}
            for w in sorted(root.glob("dps-worker-*"))]


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll until ``condition()`` holds; only a failure waits the whole ``limit``."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"not within {limit:.0f} s: {what}")
        time.sleep(0.05)


@pytest.fixture()
def copies(version, tmp_path) -> tuple[Path, Path]:
    """A second version file (the same data under another path) and a damaged one."""
    other, damaged = tmp_path / "other.dpsv", tmp_path / "damaged.dpsv"
    shutil.copy(version.path, other)
    raw = bytearray(Path(version.path).read_bytes())
    raw[-100] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    return other, damaged


def test_workers_open_the_preloaded_version_before_their_first_query(version, data_key, tmp_path):
    root = tmp_path / "workers"
    root.mkdir()
    with WorkerPool(2, TEST_LIMITS, temp_root=root, preload=[(version.path, data_key)]) as pool:
        _wait_for(lambda: [len(f) for f in _opened(root)] == [1, 1], "each worker opens the preloaded version")
        before = _opened(root)
        for _ in range(4):
            assert pool.execute(version.path, data_key, COUNT).column("n").to_pylist() == [PEOPLE]
        assert _opened(root) == before      # no worker decrypted the version for a query
    assert_no_leak(pool, root)


def test_a_replacement_worker_preloads_too(version, data_key, copies, tmp_path):
    other, _ = copies
    root = tmp_path / "workers"
    root.mkdir()
    with WorkerPool(1, TEST_LIMITS, temp_root=root, preload=[(version.path, data_key)]) as pool:
        _wait_for(lambda: [len(f) for f in _opened(root)] == [1], "the first worker preloads")
        [first] = pool.pids()
        os.kill(first, signal.SIGKILL)
        try:    # the pool learns of the death from this query, which may fail with it
            pool.execute(other, data_key, COUNT)
        except ExecutionFailed as exc:
            assert exc.code == "run_failed"
        assert pool.execute(other, data_key, COUNT).column("n").to_pylist() == [PEOPLE]
        assert pool.pids() != [first]
        # two cache slots: the version the queries brought in and the preloaded one
        _wait_for(lambda: [len(f) for f in _opened(root)] == [2], "the replacement preloads")
        before = _opened(root)
        assert pool.execute(version.path, data_key, COUNT).column("n").to_pylist() == [PEOPLE]
        assert _opened(root) == before
    assert_no_leak(pool, root)


def test_a_version_that_fails_to_preload_is_skipped_and_fails_its_query_as_before(version, data_key, copies,
                                                                                  tmp_path):
    _, damaged = copies
    root = tmp_path / "workers"
    root.mkdir()
    with WorkerPool(1, TEST_LIMITS, temp_root=root, preload=[(damaged, data_key), (version.path, data_key)]) as pool:
        [pid] = pool.pids()
        _wait_for(lambda: [len(f) for f in _opened(root)] == [1], "the good version is preloaded")
        before = _opened(root)
        with pytest.raises(ExecutionFailed) as err:
            pool.execute(damaged, data_key, COUNT)
        assert err.value.code == "version_corrupt"
        assert pool.execute(version.path, data_key, COUNT).column("n").to_pylist() == [PEOPLE]
        assert pool.pids() == [pid] and alive(pid)
        assert _opened(root) == before
        assert [len(list(w.iterdir())) for w in root.glob("dps-worker-*")] == [1]   # nothing left of the damaged
    assert_no_leak(pool, root)


def test_a_pool_keeps_at_most_cached_versions_to_preload(version, data_key, copies, tmp_path):
    other, damaged = copies
    wanted = [(version.path, data_key), (other, data_key), (damaged, data_key)]
    with WorkerPool(1, replace(TEST_LIMITS, cached_versions=2), temp_root=tmp_path, preload=wanted) as pool:
        assert pool.preload == [(str(Path(p).resolve()), k) for p, k in wanted[:2]]


def test_preloading_never_evicts_a_version_a_query_opened(version, data_key, copies, tmp_path):
    other, _ = copies
    root = tmp_path / "workers"
    root.mkdir()
    limits = replace(TEST_LIMITS, cached_versions=1)
    with WorkerPool(1, limits, temp_root=root, preload=[(version.path, data_key)]) as pool:
        _wait_for(lambda: [len(f) for f in _opened(root)] == [1], "the version is preloaded")
        assert pool.execute(other, data_key, COUNT).column("n").to_pylist() == [PEOPLE]   # evicts the preload
        after_query = _opened(root)
        # the worker is idle again with its one slot taken: it does not open the preload again
        assert pool.execute(other, data_key, COUNT).column("n").to_pylist() == [PEOPLE]
        assert _opened(root) == after_query


def test_an_instance_preloads_the_current_queryable_duckdb_versions(make_instance, tmp_path):
    from sqlalchemy import select

    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_all, write_health
    from sandbox.execution.storage import decrypt_file
    from sandbox.instance import Instance
    from sandbox.persistence.models import Dataset, DatasetVersion
    from sandbox.users import add_user

    root = tmp_path / "workers"
    root.mkdir()
    inst = make_instance(workers=1, worker_temp_root=str(root))
    add_user(inst, Actor("setup", "admin"), "owner1", "owner", "long enough password")
    for policy in write_all(tmp_path / "src", people=500).values():   # conditional, open, restricted
        add_dataset(inst, Actor("owner1", "owner"), policy)
    write_health(tmp_path / "src" / "health", people=600)
    add_dataset(inst, Actor("owner1", "owner"), tmp_path / "src" / "health" / "policy.toml")   # version 2
    with inst.store.read() as s:
        current = s.execute(select(DatasetVersion.path).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                            .where(Dataset.name == "health", DatasetVersion.number == 2)).scalar_one()
    inst.close()
    with Instance.open(inst.settings) as lazy:       # a pool started by a first use opens versions as queried
        assert lazy.pool.preload == []
    with Instance.open(inst.settings) as fresh:
        pool = fresh.start_workers()
        [(path, key)] = pool.preload                   # health's version 2 only: open and restricted are not queried
        assert path == str(Path(current).resolve())
        decrypt_file(Path(path), key, tmp_path / "check.duckdb")   # with its data key
        _wait_for(lambda: [len(f) for f in _opened(root)] == [1], "the worker preloads it")
