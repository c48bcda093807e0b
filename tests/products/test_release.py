"""Release packages: files, manifest, signature, offline verification and tampering."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile

import pyarrow.parquet as pq
import pytest

from products.manifest import verify_path
from products.service import export_product, get_product, package_path
from products_world import CITY_ROWS, CITY_SQL, release
from queries.errors import NotFound
from sandbox.keys import create_signing_key, SigningKey

SUM_SQL = "SELECT sex, SUM(income) AS total FROM people GROUP BY sex"


@pytest.fixture
def released(sqlite_world):
    w = sqlite_world
    runs = [w.run(CITY_SQL, CITY_ROWS), w.run(SUM_SQL, [["F", 1.5e6], ["M", 1.4e6]], half_width=2e4)]
    pid = release(w, runs, title="Visits and incomes")
    return w, pid, runs, package_path(w.inst, None, pid)


def test_package_layout_and_manifest(released):
    w, pid, runs, path = released
    assert path == w.inst.home / "products" / str(pid) / "v1"
    m = json.loads((path / "manifest.json").read_text())
    names = {f"tables/table_{i}.{ext}" for i in (1, 2) for ext in ("parquet", "csv", "json")}
    assert set(m["files"]) == names
    assert m["product"]["id"] == pid and m["product"]["version"] == 1
    # conditional data: the keyed digest, never the plain content hash of the version
    assert m["dataset"]["name"] == "health" and len(m["dataset"]["digest"]) == 64
    assert m["dataset"]["digest"] != "a" * 64 and "content_hash" not in m["dataset"]
    assert [t["run_id"] for t in m["tables"]] == runs
    assert m["tables"][0]["sql"] == CITY_SQL and len(m["tables"][0]["fingerprint"]) == 64
    assert m["tables"][0]["plan"]["tables"] == ["people"] and m["tables"][0]["mechanisms"]
    assert m["privacy"]["epsilon"] == pytest.approx(1.0)
    assert {r["reviewer"] for r in m["reviews"]} == {"reviewer1", "reviewer2"}
    assert m["licence"]["purpose"] == "service planning" and m["licence"]["operator"] == "operator1"
    assert {"opendp", "duckdb", "sqlglot", "python"} <= set(m["software"])
    assert m["signer"]["key_id"] == w.inst.signer.key_id()


def test_cells_carry_intervals_and_small_counts_are_suppressed(released):
    w, pid, runs, path = released
    m = json.loads((path / "manifest.json").read_text())
    assert m["tables"][0]["suppressed_cells"] == 1            # Trondheim 5.2 < 10
    table = pq.read_table(path / "tables/table_1.parquet").to_pylist()
    assert table[0] == {"city": "Oslo", "n": 120.4, "n__ci_lower": pytest.approx(117.4),
                        "n__ci_upper": pytest.approx(123.4)}
    assert table[2]["city"] == "Trondheim" and table[2]["n"] is None and table[2]["n__ci_lower"] is None
    with (path / "tables/table_1.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[2]["n"] == "" and rows[0]["n"] == "120.4"
    doc = json.loads((path / "tables/table_1.json").read_text())
    assert doc["rows"][0][1] == {"value": 120.4, "interval": [pytest.approx(117.4), pytest.approx(123.4)]}
    assert doc["rows"][2][1] == {"value": None, "interval": None}
    # the public view shows the released (suppressed) values
    public = get_product(w.inst, None, pid)
    assert public.tables[0]["rows"][2][1] is None and not public.checks


def test_verify_detects_tampering(released, tmp_path):
    w, pid, runs, path = released
    key = w.inst.signer.public_pem()
    assert verify_path(path, key).ok

    def copy(name):
        return shutil.copytree(path, tmp_path / name)

    changed = copy("file")
    (changed / "tables/table_1.csv").write_text("city,n\nOslo,9999\n")
    r = verify_path(changed, key)
    assert not r.ok and any("table_1.csv" in p for p in r.problems)

    manifest = copy("manifest")
    m = json.loads((manifest / "manifest.json").read_text())
    m["privacy"]["epsilon"] = 0.01
    (manifest / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    assert any("signature" in p for p in verify_path(manifest, key).problems)

    sig = copy("sig")
    (sig / "manifest.sig").write_text("A" * 88 + "\n")
    assert not verify_path(sig, key).ok
    (sig / "manifest.sig").unlink()
    assert "manifest.sig is missing" in verify_path(sig, key).problems

    extra = copy("extra")
    (extra / "tables/extra.csv").write_text("x\n1\n")
    assert any("not listed" in p for p in verify_path(extra, key).problems)

    missing = copy("missing")
    (missing / "tables/table_2.json").unlink()
    assert any("table_2.json: missing" in p for p in verify_path(missing, key).problems)

    # re-signed by another key: good with the embedded key, refused with the instance's
    create_signing_key(tmp_path / "other.pem")
    other = SigningKey.load(tmp_path / "other.pem")
    forged = copy("forged")
    from products.manifest import sign_package

    body = {k: v for k, v in json.loads((forged / "manifest.json").read_text()).items() if k not in ("files", "signer")}
    sign_package(forged, body, other)
    assert verify_path(forged).ok
    r = verify_path(forged, key)
    assert not r.ok and any("names key" in p for p in r.problems)


def test_zip_export_verifies_and_tampered_zip_fails(released, tmp_path):
    w, pid, runs, path = released
    z = export_product(w.inst, None, pid, tmp_path, as_zip=True)
    r = verify_path(z, w.inst.signer.public_pem())
    assert r.ok and r.files_checked == 6 and r.subject == f"product {pid} v1"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(z) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("table_2.csv"):
                data = data.replace(b"F", b"X")
            dst.writestr(item, data)
    assert not verify_path(bad).ok
    folder = export_product(w.inst, None, pid, tmp_path / "out")
    assert verify_path(folder).ok
    assert not verify_path(tmp_path / "nothing-here").ok
    # bytes flipped inside a compressed member: a clean refusal, not a crash
    raw = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as src:
        info = next(i for i in src.infolist() if i.compress_type == zipfile.ZIP_DEFLATED and i.compress_size > 64)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(8):
        raw[start + 10 + k] ^= 0xFF
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(raw))
    report = verify_path(corrupt)
    assert not report.ok and any("corrupt" in p or "differs" in p for p in report.problems)


def _rezip(src_zip, target, extra=(), duplicate_last=None):
    """A copy of ``src_zip`` with ``extra`` (name, bytes) members appended, and
    optionally a second member named like ``duplicate_last`` (its bytes differ)."""
    import warnings

    with zipfile.ZipFile(src_zip) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        for name, data in extra:
            dst.writestr(name, data)
        if duplicate_last:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)     # zipfile warns of the duplicate name
                dst.writestr(duplicate_last, b"city,n\nOslo,999999\n")
    return target


def test_zip_with_stray_or_duplicate_members_fails(released, tmp_path):
    w, pid, runs, path = released
    z = export_product(w.inst, None, pid, tmp_path, as_zip=True)
    top = zipfile.ZipFile(z).namelist()[0].split("/")[0]
    key = w.inst.signer.public_pem()
    assert verify_path(z, key).ok
    outside = verify_path(_rezip(z, tmp_path / "outside.zip", extra=[("README-evil.txt", b"trust me")]), key)
    assert not outside.ok and any("README-evil.txt" in p and "outside" in p for p in outside.problems)
    sibling = verify_path(_rezip(z, tmp_path / "sibling.zip", extra=[("other/tables/x.csv", b"a\n")]), key)
    assert not sibling.ok
    dup = verify_path(_rezip(z, tmp_path / "dup.zip", duplicate_last=f"{top}/tables/table_1.csv"), key)
    assert not dup.ok and any("table_1.csv" in p and "2 members" in p for p in dup.problems)
    inside = verify_path(_rezip(z, tmp_path / "inside.zip", extra=[(f"{top}/notes.txt", b"x")]), key)
    assert not inside.ok and any("not listed" in p for p in inside.problems)


def test_verify_without_key_says_where_the_key_came_from(released, tmp_path):
    from click.testing import CliRunner

    from sandbox.cli import main

    w, pid, runs, path = released
    z = export_product(w.inst, None, pid, tmp_path, as_zip=True)
    assert verify_path(z).key_source == "manifest"
    assert verify_path(z, w.inst.signer.public_pem()).key_source == "given"
    out = CliRunner().invoke(main, ["verify", str(z)])
    assert out.exit_code == 0 and "taken from the package itself" in out.output
    keyfile = tmp_path / "signing.pem"
    keyfile.write_text(w.inst.signer.public_pem())
    out = CliRunner().invoke(main, ["verify", str(z), "--key", str(keyfile)])
    assert out.exit_code == 0 and f"read from {keyfile}" in out.output and "package itself" not in out.output
    dup = _rezip(z, tmp_path / "dup.zip", duplicate_last=zipfile.ZipFile(z).namelist()[-1])
    out = CliRunner().invoke(main, ["verify", str(dup), "--key", str(keyfile)])
    assert out.exit_code == 1 and "FAILED" in out.output


def test_unreleased_products_have_no_package(sqlite_world):
    from products.service import draft_product

    pid = draft_product(sqlite_world.inst, "operator1", title="t",
                        run_ids=[sqlite_world.run(CITY_SQL, CITY_ROWS)]).id
    with pytest.raises(NotFound) as e:
        package_path(sqlite_world.inst, "operator1", pid)
    assert e.value.code == "not_released"


def test_a_failed_release_leaves_no_files_and_can_be_retried(sqlite_world, monkeypatch):
    from products import data_requests
    from products.service import draft_product, release_product, review_product, submit_product

    w = sqlite_world
    pid = draft_product(w.inst, "operator1", title="t", run_ids=[w.run(CITY_SQL, CITY_ROWS)]).id
    submit_product(w.inst, "operator1", pid, attestation="ok")
    review_product(w.inst, "reviewer1", pid, "approve", "checked")
    review_product(w.inst, "reviewer2", pid, "approve", "checked")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(data_requests, "close_requests_for", broken)
    with pytest.raises(RuntimeError):
        release_product(w.inst, "operator1", pid)
    assert get_product(w.inst, "operator1", pid).state == "approved"
    assert list((w.inst.home / "products" / str(pid)).iterdir()) == []
    monkeypatch.undo()
    assert verify_path(release_product(w.inst, "operator1", pid).path).ok
