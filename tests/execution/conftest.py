"""Shared fixtures: a small health dataset, one encrypted version of it, a live pool."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from queries.policy import parse_policy
from sandbox.demo.data import load_health, write_health
from sandbox.execution.storage import ingest_version, unwrap_key
from sandbox.execution.worker import WorkerLimits, WorkerPool

PEOPLE = 5_000
CITIES = ("Oslo", "Bergen", "Trondheim", "Stavanger", "Drammen", "Kristiansand", "Tromso", "Bodo", "Alesund",
          "Hamar")
TEST_LIMITS = WorkerLimits(memory_mb=256, threads=1, timeout_s=3.0, address_space_mb=2048, cpu_seconds=60)


@pytest.fixture(scope="session")
def health_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("health")
    write_health(folder, people=PEOPLE)
    return folder


@pytest.fixture(scope="session")
def health_policy(health_dir):
    return parse_policy((health_dir / "policy.toml").read_text())


@pytest.fixture(scope="session")
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture(scope="session")
def version(health_policy, health_dir, master_key, tmp_path_factory):
    return ingest_version(health_policy, health_dir, tmp_path_factory.mktemp("home"), master_key)


@pytest.fixture(scope="session")
def data_key(version, master_key) -> bytes:
    return unwrap_key(version.wrapped_key, master_key)


@pytest.fixture(scope="session")
def reference(health_dir):
    """The demo data loaded in clear, in-process, to compute expected answers."""
    con = load_health(duckdb.connect(), health_dir)
    yield con
    con.close()


@pytest.fixture(scope="module")
def worker_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workers")


@pytest.fixture(scope="module")
def pool(worker_home):
    with WorkerPool(2, TEST_LIMITS, log_dir=worker_home / "log", temp_root=worker_home) as p:
        yield p
    assert_no_leak(p, worker_home)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_no_leak(pool: WorkerPool, temp_root: Path, pids: list[int] | None = None) -> None:
    """After close: no live worker process, no worker temp dir left."""
    for pid in pids or []:
        assert not alive(pid), f"worker {pid} still running"
    assert pool.pids() == []
    assert [p.name for p in temp_root.iterdir() if p.name.startswith("dps-worker-")] == []


def log_record(log_dir: Path, error_id: str) -> dict:
    """The one record of ``worker-errors.log`` (or a rotated copy) with this error id."""
    found = [record for path in sorted(log_dir.glob("worker-errors.log*")) if not path.name.endswith(".lock")
             for record in map(json.loads, path.read_text().splitlines()) if record["error_id"] == error_id]
    assert len(found) == 1, f"{len(found)} records for error id {error_id}"
    return found[0]


def log_text(log_dir: Path) -> str:
    """Everything under a log dir, as text."""
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(log_dir.rglob("*")) if p.is_file())
