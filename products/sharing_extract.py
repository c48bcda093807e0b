"""Shared extracts: the granted columns of one table, written as Parquet, CSV or
JSON Lines, with a signed manifest naming the grant, the recipient and the
dataset version.

``write_extract`` writes the data file ``F`` and, next to it, ``F.manifest.json``
and ``F.manifest.sig`` (Ed25519 over the manifest's exact bytes, as for data
products). An extract can be *incremental*: the rows of the current version that
are not in a base version (added or changed), with the number of base rows that
are gone; the base is named (``since_version``) or is the last version the grant
pulled. ``extract_zip`` packs the same three files as ``manifest.json`` /
``manifest.sig`` / the data file, which ``products.manifest.verify_path`` checks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, UTC
from enum import StrEnum
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from products.manifest import file_digest, manifest_bytes
from products.model import VerificationReport
from queries.errors import InvalidInput
from queries.shared_sql import check_filter
from sandbox.instance import Instance
from sandbox.keys import key_id, load_public_key, verify_signature
from sandbox.sharing.delivery import (
    DeliveryKind, OpenGrant, base_grant, extract_batches, extract_table, open_grant, record_delivery,
)

MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".manifest.sig"


class ExtractFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"
    JSON = "json"          # JSON Lines: one object per row


@dataclass(frozen=True)
class ExtractReceipt:
    request_id: int
    dataset: str
    table: str
    version: int
    base_version: int | None
    rows: int
    rows_removed: int | None
    columns: tuple[str, ...]
    withheld: tuple[str, ...]
    path: str
    manifest_sha256: str
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["columns"], d["withheld"] = list(self.columns), list(self.withheld)
        return d


class _Writer:
    """Stream Arrow batches to one file in the chosen format."""

    def __init__(self, path: Path, fmt: ExtractFormat) -> None:
        self.path, self.fmt = path, fmt
        self._pq: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        self._fh = path.open("wb") if fmt == ExtractFormat.JSON else None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.fmt == ExtractFormat.PARQUET:
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, table.schema)
            self._pq.write_table(table)
        elif self.fmt == ExtractFormat.CSV:
            if self._csv is None:
                self._csv = pacsv.CSVWriter(str(self.path), table.schema)
            self._csv.write_table(table)
        else:
            assert self._fh is not None
            names = table.column_names
            for batch in table.to_batches(max_chunksize=65_536):
                cols = [c.to_pylist() for c in batch.columns]
                lines = (json.dumps(dict(zip(names, row)), ensure_ascii=False, default=str) for row in zip(*cols))
                self._fh.write(("\n".join(lines) + ("\n" if batch.num_rows else "")).encode("utf-8"))

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._csv is not None:
            self._csv.close()
        if self._fh is not None:
            self._fh.close()


def _difference(newer: Iterable[pa.Table], older: Iterable[pa.Table]) -> tuple[Iterator[pa.Table], int]:
    """Rows of ``newer`` not in ``older`` (multiset difference), and how many rows of
    ``older`` are not in ``newer``. Computed in a private in-memory DuckDB with no
    file or network access."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False, "autoinstall_known_extensions": False,
                                              "autoload_known_extensions": False, "threads": 1})
    for name, batches in (("newer", newer), ("older", older)):
        first = True
        for batch in batches:
            con.register("incoming", batch)
            con.sql(f"{'CREATE TABLE ' + name + ' AS' if first else 'INSERT INTO ' + name} SELECT * FROM incoming")
            con.unregister("incoming")
            first = False
    removed = con.sql("SELECT COUNT(*) FROM (SELECT * FROM older EXCEPT ALL SELECT * FROM newer)").fetchall()[0][0]
    reader = con.sql("SELECT * FROM newer EXCEPT ALL SELECT * FROM older").to_arrow_reader(65_536)

    def batches_out() -> Iterator[pa.Table]:
        try:
            empty = True
            for batch in reader:
                empty = False
                yield pa.Table.from_batches([batch])
            if empty:
                yield reader.schema.empty_table()
        finally:
            con.close()

    return batches_out(), int(removed)


def write_extract(inst: Instance, user: str, request_id: int, out: str | Path, fmt: str = "parquet", *,
                  table: str | None = None, where: str | None = None, version: int | None = None,
                  since_version: int | None = None, incremental: bool = False) -> ExtractReceipt:
    """Pull an extract under a grant (see the module docstring). Audited and counted."""
    try:
        form = ExtractFormat(fmt)
    except ValueError:
        raise InvalidInput("format must be parquet, csv or json", code="bad_format") from None
    grant = open_grant(inst, user, request_id, version)
    name = extract_table(grant, table)
    condition = check_filter(where, grant.scope, name) if where and where.strip() else None
    base: OpenGrant | None = None
    if since_version is None and incremental and grant.last_version is not None and grant.last_version < grant.version:
        since_version = grant.last_version
    if since_version is not None:
        base = base_grant(inst, grant, since_version)
        if set(base.columns_of(name)) != set(grant.columns_of(name)):
            raise InvalidInput("the granted columns differ between the two versions; pull in full",
                               code="incremental_not_possible")
    out = Path(out)
    partial = out.with_name(out.name + ".part")
    writer = _Writer(partial, form)
    removed: int | None = None
    try:
        batches: Iterable[pa.Table] = extract_batches(inst, grant, name, condition)
        if base is not None:
            older = (b.select(list(grant.columns_of(name))) for b in extract_batches(inst, base, name, condition))
            batches, removed = _difference(batches, older)
        for batch in batches:
            writer.write(batch)
        writer.close()
        os.replace(partial, out)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    detail = {"table": name, "columns": list(grant.columns_of(name)), "format": form.value,
              "filter": where or "", "base_version": since_version, "file": out.name}
    rec = record_delivery(inst, grant, DeliveryKind.PULL, writer.rows, detail)
    sha, size = file_digest(out)
    manifest = {
        "kind": "shared_extract",
        "grant": {"id": grant.request_id, "purpose": grant.purpose, "basis": grant.basis,
                  "expires_at": grant.expires_at},
        "recipient": {"user": grant.user, "department": grant.department},
        "provider": grant.provider,
        "dataset": {"name": grant.dataset, "version": grant.version, "digest": grant.digest},
        "table": name, "columns": list(grant.columns_of(name)), "format": form.value, "filter": where or "",
        "delivery": {"mode": "incremental" if base is not None else "full", "base_version": since_version,
                     "rows": writer.rows, "rows_removed": removed},
        "audit_seq": rec.audit_seq,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {out.name: {"sha256": sha, "bytes": size}},
        "signer": {"algorithm": "Ed25519", "key_id": inst.signer.key_id(), "public_key_pem": inst.signer.public_pem()},
    }
    data = manifest_bytes(manifest)
    Path(str(out) + MANIFEST_SUFFIX).write_bytes(data)
    Path(str(out) + SIGNATURE_SUFFIX).write_text(inst.signer.sign(data) + "\n", encoding="ascii")
    import hashlib

    return ExtractReceipt(grant.request_id, grant.dataset, name, grant.version, since_version, writer.rows, removed,
                          grant.columns_of(name), grant.withheld, str(out), hashlib.sha256(data).hexdigest(),
                          rec.audit_seq)


def verify_extract(path: str | Path, public_key_pem: str | bytes | None = None) -> VerificationReport:
    """Check an extract ``F`` against ``F.manifest.json`` and ``F.manifest.sig`` offline."""
    path = Path(path)
    problems: list[str] = []
    manifest_path, sig_path = Path(str(path) + MANIFEST_SUFFIX), Path(str(path) + SIGNATURE_SUFFIX)
    if not path.is_file() or not manifest_path.is_file() or not sig_path.is_file():
        return VerificationReport(False, str(path), None, None, None, 0,
                                  ("the extract, its manifest or its signature is missing",))
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except ValueError:
        return VerificationReport(False, str(path), None, None, None, 0, ("the manifest is not JSON",))
    signer = manifest.get("signer") or {}
    kid = None
    try:
        key = load_public_key(public_key_pem if public_key_pem is not None else signer.get("public_key_pem", ""))
        kid = key_id(key)
        if not verify_signature(key, sig_path.read_text(encoding="ascii").strip(), raw):
            problems.append("the signature does not match the manifest for this key")
    except Exception:
        problems.append("no usable Ed25519 public key")
    meta = (manifest.get("files") or {}).get(path.name)
    if meta is None:
        problems.append(f"{path.name}: not listed in the manifest")
    elif file_digest(path) != (meta.get("sha256"), meta.get("bytes")):
        problems.append(f"{path.name}: SHA-256 or size differs from the manifest (the file was changed)")
    subject = f"grant {manifest.get('grant', {}).get('id')} {manifest.get('dataset', {}).get('name')} " \
              f"v{manifest.get('dataset', {}).get('version')}"
    return VerificationReport(not problems, str(path), manifest.get("kind"), subject, kid, 1, tuple(problems))


def extract_zip(inst: Instance, user: str, request_id: int, fmt: str = "parquet", **options: Any) -> tuple[bytes, str]:
    """An extract as a zip (data file, ``manifest.json``, ``manifest.sig``) for the web;
    returns the bytes and a file name."""
    work = Path(tempfile.mkdtemp(prefix="dps-extract-"))
    try:
        stem = f"grant-{request_id}"
        receipt = write_extract(inst, user, request_id, work / f"{stem}.{fmt}", fmt, **options)
        data_name = Path(receipt.path).name
        target = work / f"{stem}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(receipt.path, data_name)
            zf.write(receipt.path + MANIFEST_SUFFIX, "manifest.json")
            zf.write(receipt.path + SIGNATURE_SUFFIX, "manifest.sig")
        return target.read_bytes(), f"{stem}-{receipt.dataset}-v{receipt.version}.zip"
    finally:
        shutil.rmtree(work, ignore_errors=True)
