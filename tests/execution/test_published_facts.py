"""What a version publishes: a keyed digest for non-open data, exact statistics of
public tables, exact row counts for the owner alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from queries.model import PublicTableStats
from sandbox.audit import Actor
from sandbox.datasets import add_dataset, public_stats_of, published_digest, show_dataset
from sandbox.persistence.models import DatasetVersion
from sandbox.execution.storage import public_stats_query, version_digest
from sandbox.users import add_user

OWNER = Actor("owner1", "owner")


def _stats(value: PublicTableStats) -> dict:
    assert isinstance(value, PublicTableStats)
    return {"rows": value.rows, "max_rows_per_value": dict(value.max_rows_per_value)}


def test_digest_is_the_content_hash_for_open_data_and_keyed_otherwise(version, master_key):
    h = version.content_hash
    assert version_digest(h, "open", master_key) == h
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"dp-sandbox version digest v1").derive(master_key)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(bytes.fromhex(h))
    expected = mac.finalize().hex()
    for classification in ("conditional", "restricted"):
        assert version_digest(h, classification, master_key) == expected != h
    assert version_digest(h, "conditional", os.urandom(32)) != expected     # another instance, another digest
    assert len(expected) == 64


def test_public_table_statistics_are_exact(version, health_dir):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE clinics AS SELECT * FROM read_csv('{health_dir / 'clinics.csv'}', header = true)")
    rows = con.execute("SELECT count(*) FROM clinics").fetchall()[0][0]
    most = {c: con.execute(f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM clinics WHERE {c} IS NOT NULL "
                           f"GROUP BY {c})").fetchall()[0][0] for c in ("clinic", "district", "kind")}
    con.close()
    assert version.public_stats == {"clinics": {"rows": rows, "max_rows_per_value": most}}
    assert most["clinic"] == 1 and most["district"] > 1          # a key, and a column that fans out


def test_a_policy_without_public_tables_has_no_statistics(health_policy):
    from dataclasses import replace

    private = replace(health_policy, tables=tuple(t for t in health_policy.tables if not t.public))
    assert public_stats_query(private) == (None, [])


def _source(health_dir: Path, tmp_path: Path, classification: str, name: str) -> Path:
    src = tmp_path / name
    shutil.copytree(health_dir, src)
    policy = src / "policy.toml"
    policy.write_text(policy.read_text().replace('classification = "conditional"',
                                                 f'classification = "{classification}"'))
    return policy


@pytest.fixture()
def inst(make_instance):
    inst = make_instance()
    add_user(inst, Actor("setup", "admin"), "owner1", "owner", "long enough password")
    return inst


def test_listings_publish_the_digest_and_owners_alone_see_row_counts(inst, health_dir, tmp_path):
    reg = add_dataset(inst, OWNER, _source(health_dir, tmp_path, "conditional", "v1"))
    assert reg.digest == version_digest(reg.content_hash, "conditional", inst.master_key) != reg.content_hash
    public = show_dataset(inst, "health")
    assert public.versions[0].digest == reg.digest
    text = repr(public.to_dict())       # what the API and the CLI publish
    assert reg.content_hash not in text
    assert "row_counts" not in text and "quality" not in text
    owner = show_dataset(inst, "health", include_quality=True)
    assert owner.versions[0].row_counts["people"] == 5_000
    with inst.store.read() as s:
        v = s.execute(select(DatasetVersion)).scalar_one()
        assert v.digest == reg.digest and published_digest(inst, v) == reg.digest
        assert _stats(public_stats_of(v)["clinics"]) == v.public_stats["clinics"]


def _transport(tmp_path: Path, classification: str, name: str) -> Path:
    from sandbox.demo.data import write_transport

    policy = write_transport(tmp_path / name)
    policy.write_text(policy.read_text().replace('classification = "open"', f'classification = "{classification}"')
                      .replace('title = "Bus ridership by stop and month"', f'title = "Bus ridership ({name})"'))
    return policy


def test_a_reclassified_dataset_republishes_its_digests(inst, tmp_path):
    """Open versions publish their content hash; a version registered as restricted
    never does, even once its dataset is open; all follow the dataset when it closes."""
    from sandbox.classification import decide_change

    add_user(inst, Actor("setup", "admin"), "reviewer1", "reviewer", "long enough password")
    first = add_dataset(inst, OWNER, _transport(tmp_path, "restricted", "a"))
    second = add_dataset(inst, OWNER, _transport(tmp_path, "open", "b"))
    assert second.classification_change is not None        # opening waits for a reviewer
    assert second.digest != second.content_hash
    decide_change(inst, "reviewer1", second.classification_change, "approve", "boardings per stop only")
    assert second.content_hash == first.content_hash
    digests = [v.digest for v in show_dataset(inst, "transport").versions]
    assert digests == [first.digest, second.content_hash] and first.digest != first.content_hash
    third = add_dataset(inst, OWNER, _transport(tmp_path, "restricted", "c"))
    keyed = version_digest(first.content_hash, "restricted", inst.master_key)
    assert [v.digest for v in show_dataset(inst, "transport").versions] == [keyed] * 3
    with inst.store.read() as s:
        assert [v.digest for v in s.execute(select(DatasetVersion).order_by(DatasetVersion.number)).scalars()] \
            == [keyed] * 3
    assert third.digest == keyed


def test_versions_from_before_digests_and_statistics_get_them_when_read(inst, health_dir, tmp_path):
    reg = add_dataset(inst, OWNER, _source(health_dir, tmp_path, "conditional", "old"))
    with inst.store.transaction() as s:
        v = s.execute(select(DatasetVersion)).scalar_one()
        expected_stats = v.public_stats
        v.digest, v.public_stats = None, None
    assert show_dataset(inst, "health").versions[0].digest == reg.digest
    with inst.store.transaction() as s:
        v = s.execute(select(DatasetVersion)).scalar_one()
        assert public_stats_of(v) == {}                          # nothing stored, no instance to compute
        computed = public_stats_of(v, inst)                      # computed by a worker, on the encrypted file
    assert {t: _stats(x) for t, x in computed.items()} == expected_stats
    with inst.store.read() as s:
        assert s.execute(select(DatasetVersion)).scalar_one().public_stats == expected_stats
    again = add_dataset(inst, OWNER, _source(health_dir, tmp_path, "conditional", "same"))
    assert not again.created and again.digest == reg.digest        # the stored digest was filled in
