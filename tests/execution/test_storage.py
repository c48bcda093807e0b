"""Ingestion against the policy, encryption at rest, version identity, clear export."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from queries.errors import NotFound, PolicyError, SandboxError
from sandbox.execution.storage import (BadMasterKey, VersionCorrupt, decrypt_file, export_clear, ingest_version,
                             read_header, unwrap_key)


def _copy_source(health_dir: Path, tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(health_dir, src)
    return src


def _rewrite(path: Path, sql: str) -> None:
    """Rewrite one source file through DuckDB (``sql`` selects from ``src``)."""
    con = duckdb.connect()
    reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
    con.execute(f"CREATE TABLE src AS SELECT * FROM {reader}('{path}')")
    fmt = "(FORMAT parquet)" if path.suffix == ".parquet" else "(HEADER)"
    con.execute(f"COPY ({sql}) TO '{path}' {fmt}")
    con.close()


def test_version_reports_types_counts_and_quality(version):
    assert version.row_counts["people"] == 5_000
    assert version.types["people"] == {"person_id": "integer", "age": "integer", "sex": "string",
                                       "income": "integer", "city": "string", "diagnosis": "string"}
    assert version.types["visits"]["cost"] == "float"
    assert version.types["visits"]["visit_date"] == "date"
    people = version.quality["people"]
    assert people["rows"] == 5_000
    assert people["nulls"]["income"] == 0
    assert set(people["out_of_bounds"]) == {"age", "income"}
    assert set(people["distinct"]) == {"age", "sex", "city"}       # quasi columns only
    assert people["distinct"]["sex"] == 2
    assert version.path.stat().st_mode & 0o777 == 0o600


def test_out_of_bounds_values_are_counted_and_kept(version, health_dir, data_key, tmp_path):
    con = duckdb.connect()
    expected = con.execute(f"SELECT count(*) FILTER (WHERE income > 200000) FROM '{health_dir / 'people.parquet'}'"
                           ).fetchall()[0][0]
    con.close()
    assert expected > 0, "the demo data is meant to hold incomes above the declared bound"
    assert version.quality["people"]["out_of_bounds"]["income"] == expected
    plain = tmp_path / "ds.duckdb"
    decrypt_file(version.path, data_key, plain)
    con = duckdb.connect(str(plain), read_only=True)
    kept = con.execute("SELECT count(*) FROM people WHERE income > 200000").fetchall()[0][0]
    con.close()
    assert kept == expected      # kept as supplied; the bounded SQL clamps at query time


def test_encrypted_file_holds_no_plaintext(version, health_dir):
    blob = version.path.read_bytes()
    con = duckdb.connect()
    cities = [r[0] for r in con.execute(f"SELECT DISTINCT city FROM '{health_dir / 'people.parquet'}'").fetchall()]
    clinics = [r[0] for r in con.execute(f"SELECT DISTINCT clinic FROM '{health_dir / 'visits.csv'}'").fetchall()]
    con.close()
    # needles of 5+ bytes: a 3-byte string turns up in a megabyte of ciphertext by chance
    needles = [c.encode() for c in cities + clinics if len(c) >= 5] + [
        b"Trondheim", b"diagnosis", b"person_id", b"income", b"people", b"visit_date", b"Kristiansand"]
    for needle in needles:
        assert needle not in blob, needle


def test_grep_would_find_plaintext_in_the_decrypted_file(version, data_key, tmp_path):
    plain = tmp_path / "ds.duckdb"
    decrypt_file(version.path, data_key, plain)
    clear = plain.read_bytes()
    assert all(n in clear for n in (b"Kristiansand", b"Trondheim", b"diagnosis", b"person_id", b"visit_date"))
    assert plain.stat().st_mode & 0o777 == 0o600


def test_wrong_master_key_fails_cleanly(version):
    with pytest.raises(BadMasterKey) as err:
        unwrap_key(version.wrapped_key, os.urandom(32))
    assert err.value.code == "bad_master_key"
    with pytest.raises(SandboxError, match="16, 24 or 32 bytes"):
        unwrap_key(version.wrapped_key, b"short")


def test_wrong_master_key_fails_export(version, tmp_path):
    with pytest.raises(BadMasterKey):
        export_clear(version.path, os.urandom(32), "people", "csv", tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("damage", ["flip_middle", "flip_last", "truncate", "drop_last_chunk_boundary",
                                    "header_hash", "append"])
def test_tampered_file_fails_cleanly(version, data_key, tmp_path, damage):
    blob = bytearray(version.path.read_bytes())
    header = read_header(version.path)
    body = len(header.raw)
    if damage == "flip_middle":
        blob[body + len(blob[body:]) // 2] ^= 0x01
    elif damage == "flip_last":
        blob[-1] ^= 0x80
    elif damage == "truncate":
        blob = blob[:-100]
    elif damage == "drop_last_chunk_boundary":
        assert len(blob) > body + header.chunk_size + 16, "the version must span several chunks"
        blob = blob[: body + header.chunk_size + 16]        # whole first chunk only
    elif damage == "header_hash":
        blob[body - 1] ^= 0x01
    elif damage == "append":
        blob += b"\x00" * 32
    bad = tmp_path / "bad.dpsv"
    bad.write_bytes(bytes(blob))
    out = tmp_path / "out.duckdb"
    with pytest.raises(VersionCorrupt) as err:
        decrypt_file(bad, data_key, out)
    assert err.value.code == "version_corrupt"
    assert not out.exists(), "no partial plaintext is left behind"


def test_wrong_data_key_fails_cleanly(version, tmp_path):
    with pytest.raises(VersionCorrupt):
        decrypt_file(version.path, os.urandom(32), tmp_path / "x.duckdb")


def test_same_data_gives_same_hash_even_reordered(version, health_policy, health_dir, master_key, tmp_path):
    src = _copy_source(health_dir, tmp_path)
    _rewrite(src / "visits.csv", "SELECT * FROM src ORDER BY cost DESC")
    _rewrite(src / "people.parquet", "SELECT * FROM src ORDER BY city, income")
    again = ingest_version(health_policy, src, tmp_path / "home", master_key)
    assert again.content_hash == version.content_hash
    assert again.path != version.path
    assert again.wrapped_key != version.wrapped_key       # a fresh data key per version
    assert again.path.read_bytes()[200:264] != version.path.read_bytes()[200:264]


def test_new_data_gives_new_hash(version, health_policy, health_dir, master_key, tmp_path):
    src = _copy_source(health_dir, tmp_path)
    _rewrite(src / "visits.csv",
             "SELECT * FROM src UNION ALL SELECT 999999, 1, 'C01', 12.5, DATE '2025-12-31'")
    newer = ingest_version(health_policy, src, tmp_path / "home", master_key)
    assert newer.content_hash != version.content_hash
    assert newer.row_counts["visits"] == version.row_counts["visits"] + 1


def test_one_changed_value_changes_hash(version, health_policy, health_dir, master_key, tmp_path):
    src = _copy_source(health_dir, tmp_path)
    _rewrite(src / "people.parquet",
             "SELECT * REPLACE (CASE WHEN person_id = 17 THEN age + 1 ELSE age END AS age) FROM src")
    assert ingest_version(health_policy, src, tmp_path / "home", master_key).content_hash != version.content_hash


@pytest.mark.parametrize("sql, message", [
    ("SELECT * EXCLUDE (income) FROM src", r"people.*missing.*income"),
    ("SELECT *, 1 AS shoe_size FROM src", r"people.*undeclared.*shoe_size"),
    ("SELECT * REPLACE ('age ' || age AS age) FROM src", r"people\.age.*bounds.*string"),
    ("SELECT * REPLACE (age > 50 AS sex) FROM src", r"people\.sex.*boolean.*domain.*string"),
    ("SELECT * REPLACE ([age] AS city) FROM src", r"people\.city.*unsupported type"),
])
def test_mismatched_files_are_refused(health_policy, health_dir, master_key, tmp_path, sql, message):
    src = _copy_source(health_dir, tmp_path)
    _rewrite(src / "people.parquet", sql)
    home = tmp_path / "home"
    with pytest.raises(PolicyError, match=message) as err:
        ingest_version(health_policy, src, home, master_key)
    assert "Oslo" not in str(err.value) and "J06" not in str(err.value)
    assert not home.exists() or list(home.iterdir()) == []


def test_rows_per_unit_is_checked_against_the_data(health_policy, health_dir, master_key, tmp_path):
    """rows_per_unit = 1 lets the planner skip bounding; a unit with two rows
    must be refused at ingestion, naming the table but no unit or value."""
    src = _copy_source(health_dir, tmp_path)
    _rewrite(src / "people.parquet", "SELECT * FROM src UNION ALL SELECT * FROM src WHERE person_id = 17")
    home = tmp_path / "home"
    with pytest.raises(PolicyError, match=r"people.*rows_per_unit = 1") as err:
        ingest_version(health_policy, src, home, master_key)
    assert err.value.key == "tables.people.rows_per_unit" and "17" not in str(err.value)
    assert not home.exists() or list(home.iterdir()) == []


def test_declared_type_is_enforced(health_policy, health_dir, master_key, tmp_path):
    people = health_policy.table("people")
    cols = tuple(replace(c, type="date") if c.name == "diagnosis" else c for c in people.columns)
    policy = replace(health_policy, tables=tuple(replace(t, columns=cols) if t.name == "people" else t
                                                 for t in health_policy.tables))
    with pytest.raises(PolicyError, match=r"people\.diagnosis.*declared 'date'.*'string'"):
        ingest_version(policy, health_dir, tmp_path / "home", master_key)


@pytest.mark.parametrize("source", ["../visits.csv", "{abs}", "visit*.csv"])
def test_source_outside_the_folder_is_refused(health_policy, health_dir, master_key, tmp_path, source):
    inner = tmp_path / "inner"
    shutil.copytree(health_dir, inner)
    shutil.copy(health_dir / "visits.csv", tmp_path / "visits.csv")
    source = source.format(abs=tmp_path / "visits.csv")
    policy = replace(health_policy, tables=tuple(replace(t, source=source) if t.name == "visits" else t
                                                 for t in health_policy.tables))
    with pytest.raises(PolicyError, match="escapes the dataset folder|not a pattern"):
        ingest_version(policy, inner, tmp_path / "home", master_key)


def test_symlink_outside_the_folder_is_refused(health_policy, health_dir, master_key, tmp_path):
    src = _copy_source(health_dir, tmp_path)
    (src / "visits.csv").unlink()
    (src / "visits.csv").symlink_to(health_dir / "visits.csv")
    with pytest.raises(PolicyError, match="escapes the dataset folder"):
        ingest_version(health_policy, src, tmp_path / "home", master_key)


def test_no_plaintext_left_after_ingestion(health_policy, health_dir, master_key, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    stages = []
    ingest_version(health_policy, health_dir, tmp_path / "home", master_key,
                   progress=lambda stage, n: stages.append(stage))
    assert list(scratch.iterdir()) == []
    assert [p.suffix for p in (tmp_path / "home").iterdir()] == [".dpsv"]
    assert stages == ["read people", "read visits", "read clinics", "hash", "encrypt"]
    # a refused ingestion leaves nothing either
    bad = _copy_source(health_dir, tmp_path)
    _rewrite(bad / "visits.csv", "SELECT * EXCLUDE (cost) FROM src")
    with pytest.raises(PolicyError):
        ingest_version(health_policy, bad, tmp_path / "home", master_key)
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_clear_round_trips(version, master_key, health_dir, tmp_path, fmt):
    out = export_clear(version, master_key, "visits", fmt, tmp_path / f"visits.{fmt}")
    con = duckdb.connect()
    got = con.execute(f"SELECT count(*), sum(cost), min(visit_date) FROM '{out}'").fetchall()
    want = con.execute(f"SELECT count(*), sum(cost), min(visit_date) FROM '{health_dir / 'visits.csv'}'").fetchall()
    con.close()
    assert got == want
    if fmt == "parquet":
        assert pq.read_schema(out).names == ["visit_id", "person_id", "clinic", "cost", "visit_date"]


def test_export_clear_unknown_table(version, master_key, tmp_path):
    with pytest.raises(NotFound):
        export_clear(version.path, master_key, "nope", "csv", tmp_path / "x.csv")


def test_same_data_in_another_format_gives_same_hash(version, health_policy, health_dir, master_key, tmp_path):
    src = _copy_source(health_dir, tmp_path)
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{src / 'visits.csv'}') ORDER BY hash(visit_id)) "
                f"TO '{src / 'visits.parquet'}' (FORMAT parquet, ROW_GROUP_SIZE 1000)")
    con.close()
    (src / "visits.csv").unlink()
    policy = replace(health_policy, tables=tuple(replace(t, source="visits.parquet") if t.name == "visits" else t
                                                 for t in health_policy.tables))
    assert ingest_version(policy, src, tmp_path / "home", master_key).content_hash == version.content_hash
