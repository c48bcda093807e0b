"""The side-channel pair suite on the Spark engine: the error, metadata and order
classes of the catalogue, through the real service, on an instance whose engine is
Spark (``DPS_ENGINE=spark``; ``local[2]``, or the standalone cluster of the
``spark`` tier). The two runs of a pair must be indistinguishable apart from the
noisy numbers, exactly as on DuckDB (test_side_channels.py). A pair whose query
Spark refuses (``spark_unsupported``: quantiles) must be refused identically for T
and F, before anything ran.

The default tier runs one pair and checks that the run records its engine; the
``spark`` tier runs every pair of the three classes. The same instance shows
that a Spark dataset's version is stored as encrypted Parquet that only a
session given that version's key can read.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from sandbox.execution.spark_store import ParquetKey, read_copy
from sandbox.execution.storage import unwrap_key

from .observe import Observer
from .planted import CITY_F, CITY_T, FAST, OPERATOR, PASSWORD, open_planted, write_planted
from .side_channel_pairs import PAIRS
from .test_side_channels import check_pair

CLASSES = ("error", "metadata", "order")
SPARK_PAIRS = [p for p in PAIRS if p.cls in CLASSES]
DEFAULT_TIER = SPARK_PAIRS[0].name


@pytest.fixture(scope="module")
def spark_world(tmp_path_factory, spark_engine, spark_master):
    from web.app import create_app

    root = tmp_path_factory.mktemp("side-channels-spark")
    settings = {**FAST, "engine": "spark", "query_timeout_s": 120.0,
                "spark_master": spark_master}
    inst = open_planted(root / "home", write_planted(root / "source"), **settings)
    client = create_app(inst, {"TESTING": True}).test_client()
    r = client.post("/api/v1/tokens", json={"user": OPERATOR, "password": PASSWORD})
    assert r.status_code == 201, r.get_json()
    observer = Observer(inst, client, r.get_json()["data"]["token"]).open()
    observer.service("SELECT COUNT(*) FROM people", CITY_F)
    yield observer
    observer.close()
    inst.close()


def _params():
    return [pytest.param(p, id=p.name, marks=[] if p.name == DEFAULT_TIER else [pytest.mark.spark])
            for p in SPARK_PAIRS]


@pytest.mark.parametrize("pair", _params())
def test_pair_on_spark(spark_world, pair):
    t = spark_world.service(pair.sql_t, CITY_T)
    f = spark_world.service(pair.sql_f, CITY_F)
    if t.outcome == "spark_unsupported" or f.outcome == "spark_unsupported":
        assert t.outcome == f.outcome
    check_pair(pair, t, f)


def test_a_run_records_its_engine(spark_world):
    from sandbox.persistence.models import AuditRecord

    obs = spark_world.service("SELECT COUNT(*) FROM people", CITY_F)
    assert obs.outcome == "ok"
    with spark_world.inst.store.read() as s:
        payloads = [r.payload for r in s.execute(select(AuditRecord).where(AuditRecord.action == "query.reserve"))
                    .scalars()]
    assert payloads and all(p["engine"] == "spark" for p in payloads)


def _version(inst):
    from sandbox.persistence.models import DatasetVersion

    with inst.store.read() as s:
        v = s.execute(select(DatasetVersion).order_by(DatasetVersion.id)).scalars().first()
        return Path(v.path), v.wrapped_key, dict(v.row_counts)


def test_a_spark_version_is_stored_as_encrypted_parquet(spark_world):
    """Registering a version of a Spark dataset writes its Parquet copy; every file
    is encrypted by Parquet (footer too): no reader without the key gets the schema,
    and no planted value appears in the bytes."""
    path, _, row_counts = _version(spark_world.inst)
    copy = read_copy(path)
    assert copy is not None and copy.rows == row_counts
    files = sorted(copy.folder.rglob("*.parquet"))
    assert files and {f.parent.name for f in files} == set(row_counts)
    for f in files:
        data = f.read_bytes()
        assert data[-4:] == b"PARE"                          # the encrypted-footer magic
        assert CITY_T.encode() not in data and CITY_F.encode() not in data
        with pytest.raises(OSError, match="encrypted"):
            pq.ParquetFile(f)


def test_only_a_session_given_the_version_key_reads_it(spark_world, spark_engine):
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    path, wrapped, row_counts = _version(spark_world.inst)
    copy = read_copy(path)
    assert copy is not None
    people = str(copy.tables()["people"])
    right = ParquetKey.of(unwrap_key(wrapped, spark_world.inst.master_key))
    wrong = ParquetKey(right.key_id, secrets.token_bytes(32))      # the same identifier, another key
    for settings in ({}, wrong.read_settings()):
        session = spark_engine.session().newSession()
        for name, value in settings.items():
            session.conf.set(name, value)
        with pytest.raises((Py4JJavaError, PySparkException)):
            session.read.parquet(people).count()
    session = spark_engine.session().newSession()
    for name, value in right.read_settings().items():
        session.conf.set(name, value)
    assert session.read.parquet(people).count() == row_counts["people"]
