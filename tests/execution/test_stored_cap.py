"""A version keeps at most ``100 × max_rows_per_unit`` rows of one unit per private
table: every run reads a unit's rows before bounding them, so a unit with unbounded
rows would make the run's time depend on that one unit."""

from __future__ import annotations

import shutil

import duckdb
import pyarrow.csv as pcsv
import pyarrow as pa

from queries.policy import parse_policy
from sandbox.execution.storage import decrypt_file, ingest_version, stored_rows_cap, unwrap_key


def _visits_of(version, master_key, tmp_path) -> dict:
    plain = tmp_path / "plain.duckdb"
    decrypt_file(version.path, unwrap_key(version.wrapped_key, master_key), plain)
    con = duckdb.connect(str(plain), read_only=True)
    try:
        return dict(con.execute("SELECT person_id, COUNT(*) FROM visits GROUP BY person_id").fetchall())
    finally:
        con.close()


def test_a_unit_with_more_rows_than_the_cap_is_stored_capped(health_dir, health_policy, master_key, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(health_dir, src)
    visits = pcsv.read_csv(src / "visits.csv")
    cap = stored_rows_cap(health_policy.table("visits"))
    heavy = visits.slice(0, 1).to_pylist()[0]
    extra = pa.Table.from_pylist([heavy] * (cap + 250), schema=visits.schema)
    pcsv.write_csv(pa.concat_tables([visits, extra]), src / "visits.csv")
    policy = parse_policy((src / "policy.toml").read_text())
    version = ingest_version(policy, src, tmp_path / "home", master_key)
    counts = _visits_of(version, master_key, tmp_path)
    assert counts[heavy["person_id"]] == cap
    assert max(counts.values()) == cap
    original = sum(1 for p in visits.column("person_id").to_pylist() if p == heavy["person_id"])
    dropped = original + cap + 250 - cap
    assert version.quality["visits"]["rows_over_stored_cap"] == dropped
    # the same source gives the same version: the rows kept are chosen by the rows alone
    again = ingest_version(policy, src, tmp_path / "home2", master_key)
    assert again.content_hash == version.content_hash


def test_the_cap_binds_only_where_a_unit_exceeds_it(version, health_policy):
    assert all(q.get("rows_over_stored_cap", 0) == 0 for q in version.quality.values())
