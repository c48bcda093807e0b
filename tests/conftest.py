"""Fixtures shared by the whole suite: instance homes on SQLite and on a real,
throwaway PostgreSQL cluster."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pgcluster import PgCluster

_db_counter = itertools.count()


def pytest_collection_modifyitems(config, items):
    """Two tiers are settled here.

    - The PostgreSQL variants belong to the slow tier: the README's command runs
      every test on SQLite, and CI runs the slow tier after it, so every test that
      has a PostgreSQL variant still runs against a real server in CI.
    - The ``spark`` tier runs only when asked for (``-m spark``): the default tier's
      ``-m "not slow"`` leaves it out instead of starting a cluster's worth of queries."""
    for item in items:
        if item.get_closest_marker("postgres") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    if "spark" in (config.getoption("markexpr") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("spark") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("spark")])
        items[:] = kept


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL server for the whole session (or DPS_TEST_POSTGRES_URL's server)."""
    external = os.environ.get("DPS_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url_for(request):
    """Makes empty PostgreSQL databases on the session's cluster (to restore into)."""
    return lambda: new_pg_database(request.getfixturevalue("pg_cluster"))


def new_pg_database(pg_cluster) -> str:
    name = f"dps_{os.getpid()}_{next(_db_counter)}"
    if isinstance(pg_cluster, str):
        import psycopg

        base = pg_cluster.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return pg_cluster.rsplit("/", 1)[0] + "/" + name
    return pg_cluster.create_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """A fresh, empty metadata store URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return new_pg_database(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def make_instance(tmp_path):
    """Build initialised instances: ``make_instance(url=None, **settings)``."""
    from sandbox.instance import Instance, init_home
    from sandbox.settings import load_settings

    made = []

    def factory(url: str | None = None, name: str = "home", **overrides):
        settings = load_settings(env={}, home=str(tmp_path / name), database_url=url or "", **overrides)
        init_home(settings)
        inst = Instance.open(settings)
        made.append(inst)
        return inst

    yield factory
    for inst in made:
        inst.close()


@pytest.fixture
def instance(make_instance, store_url):
    """An initialised instance on each store backend."""
    return make_instance(store_url)


@pytest.fixture(scope="session")
def spark_master(request):
    """``local[2]`` in the default tier; under ``-m spark`` a standalone cluster (a
    master and two workers on 127.0.0.1) started for the session and stopped after
    it, unless ``DPS_TEST_SPARK_MASTER`` names one already running."""
    if os.environ.get("DPS_TEST_SPARK_MASTER"):
        yield os.environ["DPS_TEST_SPARK_MASTER"]
        return
    if "spark" not in (request.config.getoption("markexpr") or ""):
        yield "local[2]"
        return
    from sparkcluster import SparkCluster

    cluster = SparkCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def spark_engine(spark_master):
    """One Spark engine per test session, on ``spark_master``. Under CI a machine
    without PySpark or Java fails the tests that need it; elsewhere they skip."""
    from queries.errors import SandboxError
    from sandbox.execution.spark import SparkEngine, require_spark

    try:
        require_spark()
    except SandboxError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Spark engine unavailable here: {exc.code}")
    engine = SparkEngine(spark_master)
    engine.session()
    try:
        yield engine
    finally:
        engine.stop()
