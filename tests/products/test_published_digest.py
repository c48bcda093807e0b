"""The hash oracle: nothing public carries the plain content hash of conditional or
restricted data (someone who knows every row but one could confirm a guess with it),
nor the exact row count of a private table."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from products.manifest import read_manifest
from products.service import catalog_jsonld
from products_world import CITY_ROWS, CITY_SQL, release
from sandbox.datasets import published_digest
from sandbox.persistence.models import Dataset, DatasetVersion, ProductVersion


def test_catalog_and_manifest_publish_the_keyed_digest_only(sqlite_world):
    w = sqlite_world
    pid = release(w, [w.run(CITY_SQL, CITY_ROWS)])
    with w.inst.store.read() as s:
        v = s.get(DatasetVersion, w.version_id)
        ds = s.get(Dataset, v.dataset_id)
        assert ds.classification == "conditional"
        content_hash, digest = v.content_hash, published_digest(w.inst, v, ds.classification)
        rows = sum(v.row_counts.values())
    assert digest != content_hash and len(digest) == 64
    catalog = json.dumps(catalog_jsonld(w.inst))
    assert content_hash not in catalog and digest in catalog
    assert f"{rows} rows" not in catalog          # a private table's size is an exact count of people
    with w.inst.store.read() as s:
        folder = s.execute(select(ProductVersion.path).where(ProductVersion.product_id == pid)).scalar_one()
    manifest = read_manifest(Path(folder))
    assert manifest["dataset"]["digest"] == digest
    assert content_hash not in json.dumps(manifest)
