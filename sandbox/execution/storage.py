"""Dataset versions: ingestion, encryption at rest, and clear export of open data.

A *version* is one immutable DuckDB database file holding every table of a
dataset, encrypted with AES-256-GCM under a fresh random data key. The data key
is wrapped (AES key wrap, RFC 3394) by the instance's master key; the wrapped
key is stored both in the file header and in :class:`StoredVersion` (and the
store). A master-key rotation re-wraps the store's copy only: the header is the
associated data of every chunk (see ``sandbox.operations.masterkey``).

File layout (``.dpsv``)::

    header  = b"DPSVER01" | chunk size (u32) | wrapped-key length (u16) | wrapped key | content hash (32 bytes)
    chunk i = AES-GCM(data key, nonce = i (u64) | last flag (u32), plaintext chunk, aad = header)

Chunking keeps memory flat for large versions; the counter nonce is safe because
each data key encrypts exactly one file, once; the last-chunk flag and the
header as associated data make truncation, reordering and header edits fail
the tag check.

Ingestion checks the files against the policy (declared columns present, no
undeclared column, types compatible with bounds, domains and declared types)
and reports data quality to the owner. Values outside declared bounds or
domains are **kept** and counted: the bounded SQL clamps every value at query
time, so dropping rows would only change the data the owner supplied. It also
records exact statistics of the *public* tables (rows, and the most rows that
share one value of each column), from which the planner bounds join fan-out.

The content hash identifies a version's data exactly, so it is published only
for open data. For conditional and restricted data the published
:func:`version_digest` is an HMAC-SHA256 of it under a key derived from the
master key (HKDF-SHA256): without the instance's key, nobody can confirm a guess
about the rows by hashing candidates.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from queries.errors import BadMasterKey, InvalidInput, NotFound, PolicyError, VersionCorrupt
from queries.policy import DatasetPolicy, TablePolicy
from queries.vocabulary import Classification

MAGIC = b"DPSVER01"
CHUNK_SIZE = 1 << 20
SUFFIX = ".dpsv"
_TAG = 16
_HASH_BATCH = 131_072
DIGEST_INFO = b"dp-sandbox version digest v1"

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}


@dataclass(frozen=True)
class StoredVersion:
    path: Path
    content_hash: str
    wrapped_key: bytes
    row_counts: dict[str, int]          # exact, every table: owner-only
    types: dict[str, dict[str, str]]
    quality: dict                       # owner-only
    public_stats: dict[str, dict] = field(default_factory=dict)   # public tables only: see public_stats_query


@dataclass(frozen=True)
class VersionHeader:
    wrapped_key: bytes
    content_hash: str
    chunk_size: int
    raw: bytes


# ---------------------------------------------------------------- keys and files

def _check_master_key(master_key: bytes) -> None:
    if not isinstance(master_key, (bytes, bytearray)) or len(master_key) not in (16, 24, 32):
        raise BadMasterKey("the master key must be 16, 24 or 32 bytes (32 recommended)")


def wrap_key(data_key: bytes, master_key: bytes) -> bytes:
    _check_master_key(master_key)
    return aes_key_wrap(bytes(master_key), data_key)


def unwrap_key(wrapped: bytes, master_key: bytes) -> bytes:
    """The data key of a version; a wrong master key raises ``BadMasterKey``."""
    _check_master_key(master_key)
    try:
        return aes_key_unwrap(bytes(master_key), wrapped)
    except (InvalidUnwrap, ValueError):
        raise BadMasterKey("the master key does not open this dataset version") from None


def derive_digest_key(master_key: bytes) -> bytes:
    """The key of published digests: HKDF-SHA256 of the master key (info ``DIGEST_INFO``)."""
    _check_master_key(master_key)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DIGEST_INFO).derive(bytes(master_key))


def version_digest(content_hash: str, classification: str, master_key: bytes, *,
                   digest_key: bytes | None = None) -> str:
    """The hash a version publishes: its content hash for ``open`` data; for any
    other classification an HMAC-SHA256 of the content hash under ``digest_key``,
    by default the key :func:`derive_digest_key` derives from the master key (an
    instance whose master key was rotated keeps the first one's in
    ``keys/digest.key``, so digests never change). 64 hex digits either way."""
    if classification == Classification.OPEN:
        return content_hash
    key = digest_key if digest_key is not None else derive_digest_key(master_key)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(bytes.fromhex(content_hash))
    return mac.finalize().hex()


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


def encrypt_file(plain: Path, out: Path, data_key: bytes, wrapped_key: bytes, content_hash: str) -> None:
    """Encrypt ``plain`` into ``out`` (mode 0600), chunk by chunk."""
    header = (MAGIC + struct.pack(">IH", CHUNK_SIZE, len(wrapped_key)) + wrapped_key
              + bytes.fromhex(content_hash))
    aead = AESGCM(data_key)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as dst, open(plain, "rb") as src:
        dst.write(header)
        index = 0
        chunk = src.read(CHUNK_SIZE)
        while True:
            following = src.read(CHUNK_SIZE)
            last = not following
            dst.write(aead.encrypt(_nonce(index, last), chunk, header))
            if last:
                break
            chunk, index = following, index + 1
        dst.flush()
        os.fsync(dst.fileno())


def read_header(path: Path) -> VersionHeader:
    with open(path, "rb") as src:
        fixed = src.read(len(MAGIC) + 6)
        if len(fixed) < len(MAGIC) + 6 or fixed[: len(MAGIC)] != MAGIC:
            raise VersionCorrupt("not a dataset version file")
        chunk_size, wrapped_len = struct.unpack(">IH", fixed[len(MAGIC):])
        rest = src.read(wrapped_len + 32)
        if len(rest) != wrapped_len + 32 or not 0 < chunk_size <= 1 << 26:
            raise VersionCorrupt("the dataset version header is damaged")
    return VersionHeader(rest[:wrapped_len], rest[wrapped_len:].hex(), chunk_size, fixed + rest)


def decrypt_file(path: Path, data_key: bytes, out: Path) -> None:
    """Decrypt a version into ``out`` (created with mode 0600). Any damage, or the
    wrong key, raises ``VersionCorrupt`` and leaves no partial output."""
    header = read_header(path)
    try:
        aead = AESGCM(data_key)
    except (ValueError, TypeError):
        raise VersionCorrupt("the data key is malformed") from None
    step = header.chunk_size + _TAG
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as dst, open(path, "rb") as src:
            src.seek(len(header.raw))
            index = 0
            block = src.read(step)
            while True:
                following = src.read(step)
                last = not following
                dst.write(aead.decrypt(_nonce(index, last), block, header.raw))
                if last:
                    break
                block, index = following, index + 1
    except (InvalidTag, ValueError):
        out.unlink(missing_ok=True)
        raise VersionCorrupt("the dataset version failed authentication (damaged file or wrong key)") from None
    except BaseException:
        out.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- ingestion

def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def type_category(duck_type: str) -> str | None:
    """One of the policy's column types for a DuckDB type name, or None if unsupported."""
    t = duck_type.upper()
    if t in _INTEGER_TYPES:
        return "integer"
    if t in _FLOAT_TYPES or t.startswith("DECIMAL"):
        return "float"
    if t == "VARCHAR":
        return "string"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t == "BOOLEAN":
        return "boolean"
    return None


def _source_path(root: Path, table: TablePolicy) -> Path:
    if any(ch in table.source for ch in "*?[{"):
        raise PolicyError(f"table '{table.name}': source must name one file, not a pattern",
                          key=f"tables.{table.name}.source")
    path = (root / table.source).resolve()
    if not path.is_relative_to(root):
        raise PolicyError(f"table '{table.name}': source escapes the dataset folder",
                          key=f"tables.{table.name}.source")
    if not path.is_file():
        raise PolicyError(f"table '{table.name}': source file not found", key=f"tables.{table.name}.source")
    return path


def _reader(path: Path) -> str:
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({_literal(str(path))})"
    return f"read_csv({_literal(str(path))}, header = true)"


def _domain_kind(domain: tuple) -> str:
    if all(isinstance(v, bool) for v in domain):
        return "boolean"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in domain):
        return "number"
    if all(isinstance(v, str) for v in domain):
        return "string"
    return "mixed"


def _column_select(table: TablePolicy, found: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Check each declared column against the file's types; return the SELECT list
    (in policy order, floats normalised to DOUBLE) and the policy types."""
    headers = [c.header for c in table.columns]      # a column's `source`, else its name
    missing = [h for h in headers if h not in found]
    if missing:
        raise PolicyError(f"table '{table.name}': declared column(s) missing from the file: {', '.join(missing)}",
                          key=f"tables.{table.name}.columns")
    extra = [c for c in found if c not in headers]
    if extra:
        raise PolicyError(f"table '{table.name}': the file has undeclared column(s): {', '.join(extra)}",
                          key=f"tables.{table.name}.columns")
    select, types = [], {}
    for col in table.columns:
        where = f"tables.{table.name}.columns.{col.name}"
        kind = type_category(found[col.header])
        if kind is None:
            raise PolicyError(f"column '{table.name}.{col.name}' has an unsupported type {found[col.header]}", key=where)
        expr = _quote(col.header)
        if col.type is not None and col.type != kind:
            if not (col.type == "float" and kind == "integer"):
                raise PolicyError(f"column '{table.name}.{col.name}' is declared '{col.type}' but the file holds "
                                  f"'{kind}'", key=where)
            kind = "float"
        if kind == "float":
            expr = f"{expr}::DOUBLE"
        if kind == "float" or col.header != col.name:
            expr = f"{expr} AS {_quote(col.name)}"
        if col.bounded and kind not in ("integer", "float"):
            raise PolicyError(f"column '{table.name}.{col.name}' has bounds but holds '{kind}', not numbers",
                              key=where)
        if col.domain is not None:
            dk = _domain_kind(col.domain)
            ok = {"number": ("integer", "float"), "string": ("string", "date", "timestamp"),
                  "boolean": ("boolean",)}.get(dk, ())
            if kind not in ok:
                raise PolicyError(f"column '{table.name}.{col.name}' holds '{kind}' but its domain lists "
                                  f"{'mixed values' if dk == 'mixed' else dk + ' values'}", key=where)
        select.append(expr)
        types[col.name] = kind
    return select, types


def _quality(con: duckdb.DuckDBPyConnection, table: TablePolicy, types: dict[str, str]) -> dict:
    parts, params = ["count(*)"], []
    labels: list[tuple[str, str | None]] = [("rows", None)]
    for col in table.columns:
        q = _quote(col.name)
        parts.append(f"count(*) - count({q})")
        labels.append(("nulls", col.name))
        if col.min is not None and col.max is not None:
            parts.append(f"count(*) FILTER (WHERE {q} < {float(col.min)!r} OR {q} > {float(col.max)!r} "
                         f"OR isnan({q}::DOUBLE))")
            labels.append(("out_of_bounds", col.name))
        if col.domain is not None:
            kind = _domain_kind(col.domain)
            cast = {"number": "DOUBLE", "boolean": "BOOLEAN"}.get(kind, "VARCHAR")
            parts.append(f"count(*) FILTER (WHERE {q} IS NOT NULL AND NOT list_contains(?::{cast}[], {q}::{cast}))")
            params.append(list(col.domain))
            labels.append(("out_of_domain", col.name))
        if col.cls == "quasi":
            parts.append(f"count(DISTINCT {q})")
            labels.append(("distinct", col.name))
    row = con.execute(f"SELECT {', '.join(parts)} FROM {_quote(table.name)}", params).fetchall()[0]
    report: dict = {"rows": int(row[0]), "nulls": {}, "out_of_bounds": {}, "out_of_domain": {}, "distinct": {}}
    for (section, name), value in zip(labels[1:], row[1:]):
        report[section][name] = int(value)
    return report


def _feed_column(column: pa.Array, kind: str, lens, data) -> None:
    """Feed one column's canonical bytes: per value a length (-1 for NULL) into
    ``lens`` and the value bytes into ``data``. Integers go in as int64 and floats
    as float64 (with -0.0 and NaN made canonical); everything else as text."""
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    if kind == "float" or (kind == "integer" and pa.types.is_integer(column.type)
                           and column.type != pa.uint64()):
        target, dtype, width = (pa.float64(), "<f8", 8) if kind == "float" else (pa.int64(), "<i8", 8)
        values = pc.fill_null(pc.cast(column, target), 0).to_numpy(zero_copy_only=False).astype(dtype)
        if kind == "float":
            values = np.where(np.isnan(values), np.nan, values + 0.0)
        lens.update(np.where(nulls, -1, width).astype("<i8").tobytes())
        data.update(values.tobytes())
        return
    text = pc.fill_null(pc.cast(column, pa.string()), "")
    lengths = pc.binary_length(text).to_numpy(zero_copy_only=False).astype("<i8")
    lens.update(np.where(nulls, -1, lengths).astype("<i8").tobytes())
    offsets, values = text.buffers()[1], text.buffers()[2]
    if values is not None and len(text):
        off = np.frombuffer(offsets, dtype="<i4")[text.offset: text.offset + len(text) + 1]
        data.update(memoryview(values)[int(off[0]): int(off[-1])])


def _hash_table(con: duckdb.DuckDBPyConnection, table: TablePolicy, types: dict[str, str], digest) -> None:
    """Feed a canonical form of the table into ``digest``: independent of row order
    in the file, of batch sizes and of the thread count."""
    names = table.column_names
    streams = {c: (hashlib.sha256(), hashlib.sha256()) for c in names}
    reader = con.sql(f"SELECT * FROM {_quote(table.name)} ORDER BY ALL").to_arrow_reader(_HASH_BATCH)
    for batch in reader:
        for name, column in zip(names, batch.columns):
            _feed_column(column, types[name], *streams[name])
    digest.update(f"table {table.name}\n".encode())
    for name in names:
        lens, data = streams[name]
        digest.update(f"column {name} {types[name]}\n".encode() + lens.digest() + data.digest())


def _check_rows_per_unit(con: duckdb.DuckDBPyConnection, policy: DatasetPolicy, table: TablePolicy) -> None:
    """``rows_per_unit`` lets the planner skip contribution bounding, so it is a
    claim the data must meet: no privacy unit may have more rows than declared.
    The refusal names the table and the limit, never a unit or a count."""
    if table.public or table.rows_per_unit is None or not policy.privacy_unit:
        return
    unit = _quote(policy.privacy_unit)
    over = con.execute(
        f"SELECT COUNT(*) FROM (SELECT {unit} FROM {_quote(table.name)} WHERE {unit} IS NOT NULL "
        f"GROUP BY {unit} HAVING COUNT(*) > ?)", [table.rows_per_unit]).fetchall()[0][0]
    if over:
        raise PolicyError(f"table '{table.name}': some privacy units have more than rows_per_unit = "
                          f"{table.rows_per_unit} rows; fix the data or declare max_rows_per_unit instead",
                          key=f"tables.{table.name}.rows_per_unit")


def _check_rows_bound(table: TablePolicy, rows: int) -> None:
    """``rows_bound`` is the public size the planner sizes runs by (``queries.resources``),
    so it is a claim the stored table must meet. The owner sees their own count."""
    if table.rows_bound is not None and rows > table.rows_bound:
        raise PolicyError(f"table '{table.name}' holds {rows:,} rows, more than its rows_bound = "
                          f"{table.rows_bound:,}; raise the bound or split the data",
                          key=f"tables.{table.name}.rows_bound", code="rows_bound_exceeded")


# One unit's rows in a private table are stored up to this many times its contribution
# bound (``max_rows_per_unit``): every query reads a unit's rows before bounding them, so
# a unit with unbounded rows would make a run's *time* depend on that one unit.
STORED_ROWS_PER_BOUND = 100


def stored_rows_cap(table: TablePolicy) -> int:
    """The most rows of one unit a version keeps in ``table``."""
    return STORED_ROWS_PER_BOUND * max(1, int(table.max_rows_per_unit))


def _cap_rows_per_unit(con: duckdb.DuckDBPyConnection, policy: DatasetPolicy, table: TablePolicy) -> int:
    """Keep at most :func:`stored_rows_cap` rows of each unit of a private table,
    chosen by a hash of the row (the same source gives the same version); returns
    how many rows were dropped (for the owner's quality report only)."""
    unit = policy.privacy_unit
    if table.public or not unit or table.rows_per_unit == 1 or table.column(unit) is None:
        return 0
    cap, name, u = stored_rows_cap(table), _quote(table.name), _quote(unit)
    over = con.execute(f"SELECT COALESCE(SUM(n - ?), 0) FROM (SELECT COUNT(*) AS n FROM {name} "
                       f"WHERE {u} IS NOT NULL GROUP BY {u} HAVING COUNT(*) > ?)", [cap, cap]).fetchall()[0][0]
    if not over:
        return 0
    row = f"CAST(ROW({', '.join(_quote(c.name) for c in table.columns)}) AS VARCHAR)"
    con.execute(f"CREATE TABLE __capped AS SELECT * FROM {name} WHERE {u} IS NULL OR {u} IN "
                f"(SELECT {u} FROM {name} GROUP BY {u} HAVING COUNT(*) <= {cap}) UNION ALL "
                f"SELECT * FROM {name} WHERE {u} IN (SELECT {u} FROM {name} GROUP BY {u} HAVING COUNT(*) > {cap}) "
                f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {u} ORDER BY hash({row}), {row}) <= {cap}")
    con.execute(f"DROP TABLE {name}")
    con.execute(f"ALTER TABLE __capped RENAME TO {name}")
    return int(over)


def public_stats_query(policy: DatasetPolicy) -> tuple[str | None, list[tuple[str, str | None]]]:
    """One SELECT over the version (tables as ``ds.<table>``) whose single row holds,
    for each public table, its row count and, per column, the most rows sharing one
    non-NULL value (NULL never matches an equality join); and the (table, column)
    each output column stands for (column None: the row count). None when the
    policy has no public table."""
    parts: list[str] = []
    labels: list[tuple[str, str | None]] = []
    for table in policy.tables:
        if not table.public:
            continue
        t = f"ds.{_quote(table.name)}"
        parts.append(f"(SELECT count(*) FROM {t})")
        labels.append((table.name, None))
        for col in table.column_names:
            c = _quote(col)
            parts.append(f"(SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {t} WHERE {c} IS NOT NULL "
                         f"GROUP BY {c}))")
            labels.append((table.name, col))
    if not parts:
        return None, []
    return "SELECT " + ", ".join(f"{part} AS s{i}" for i, part in enumerate(parts)), labels


def public_stats_from_row(labels: list[tuple[str, str | None]], row) -> dict[str, dict]:
    """``{table: {"rows": n, "max_rows_per_value": {column: m}}}`` from the row of
    :func:`public_stats_query`."""
    stats: dict[str, dict] = {}
    for (table, col), value in zip(labels, row):
        entry = stats.setdefault(table, {"rows": 0, "max_rows_per_value": {}})
        if col is None:
            entry["rows"] = int(value)
        else:
            entry["max_rows_per_value"][col] = int(value)
    return stats


def ingest_version(policy: DatasetPolicy, source_dir: Path, dest_dir: Path, master_key: bytes,
                   progress: Callable[[str, int], None] | None = None) -> StoredVersion:
    """Read, check and encrypt one new immutable version of ``policy``'s dataset.

    ``progress(stage, count)`` is called with ("read <table>", rows),
    ("hash", tables) and ("encrypt", bytes)."""
    _check_master_key(master_key)
    report = progress or (lambda stage, n: None)
    root = Path(source_dir).resolve()
    sources = {t.name: _source_path(root, t) for t in policy.tables}
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    work = Path(tempfile.mkdtemp(prefix="dps-ingest-"))
    try:
        plain = work / "ds.duckdb"
        con = duckdb.connect(str(plain), config={"autoinstall_known_extensions": False,
                                                 "autoload_known_extensions": False})
        try:
            row_counts, types, quality = {}, {}, {}
            for table in policy.tables:
                reader = _reader(sources[table.name])
                try:
                    described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
                except duckdb.Error:
                    raise PolicyError(f"table '{table.name}': the source file could not be read",
                                      key=f"tables.{table.name}.source") from None
                found = {row[0]: row[1] for row in described}
                select, table_types = _column_select(table, found)
                try:
                    con.execute(f"CREATE TABLE {_quote(table.name)} AS SELECT {', '.join(select)} FROM {reader}")
                except duckdb.Error:
                    raise PolicyError(f"table '{table.name}': the source file could not be loaded "
                                      "(a value does not fit its column's type)",
                                      key=f"tables.{table.name}.source") from None
                _check_rows_per_unit(con, policy, table)
                dropped = _cap_rows_per_unit(con, policy, table)
                quality[table.name] = _quality(con, table, table_types)
                quality[table.name]["rows_over_stored_cap"] = dropped
                row_counts[table.name] = quality[table.name]["rows"]
                _check_rows_bound(table, row_counts[table.name])
                types[table.name] = table_types
                report(f"read {table.name}", row_counts[table.name])
            stats_sql, labels = public_stats_query(policy)
            public_stats = public_stats_from_row(labels, con.execute(stats_sql).fetchall()[0]) if stats_sql else {}
            digest = hashlib.sha256(b"dp-sandbox content v1\n")
            for table in policy.tables:
                _hash_table(con, table, types[table.name], digest)
            report("hash", len(policy.tables))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        content_hash = digest.hexdigest()
        data_key = AESGCM.generate_key(bit_length=256)
        wrapped = wrap_key(data_key, master_key)
        final = dest_dir / f"{content_hash[:16]}-{secrets.token_hex(4)}{SUFFIX}"
        partial = final.with_suffix(".part")
        try:
            encrypt_file(plain, partial, data_key, wrapped, content_hash)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        report("encrypt", final.stat().st_size)
        return StoredVersion(final, content_hash, wrapped, row_counts, types, quality, public_stats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- clear export

@dataclass(frozen=True)
class VersionFile:
    """A stored version's file with the store's copy of its wrapped data key,
    which is the one to use: after a master-key rotation the copy in the file's
    header opens nothing."""

    path: Path
    wrapped_key: bytes = field(repr=False)

    @classmethod
    def of(cls, row: _StoredRow) -> VersionFile:
        return cls(Path(row.path), bytes(row.wrapped_key))


class _StoredRow(Protocol):
    path: str
    wrapped_key: bytes


def export_clear(version: StoredVersion | VersionFile | Path, master_key: bytes, table: str,
                 fmt: Literal["csv", "parquet"], out: Path) -> Path:
    """Write one table of a version in clear, as CSV or Parquet. Only for open
    datasets: the caller checks the classification. A bare path uses the data
    key in the file's header, which only the master key of the file's writing
    opens."""
    if fmt not in ("csv", "parquet"):
        raise InvalidInput("format must be csv or parquet", code="bad_format")
    path = Path(version) if isinstance(version, Path) else version.path
    header = read_header(path)
    wrapped = header.wrapped_key if isinstance(version, Path) else version.wrapped_key
    data_key = unwrap_key(wrapped, master_key)
    out = Path(out)
    work = Path(tempfile.mkdtemp(prefix="dps-export-"))
    try:
        plain = work / "ds.duckdb"
        decrypt_file(path, data_key, plain)
        con = duckdb.connect(str(plain), read_only=True,
                             config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        try:
            names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            if table not in names:
                raise NotFound(f"the version has no table '{table}'", code="table_not_found", table=table)
            partial = out.with_name(out.name + ".part")
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
            con.execute(f"COPY (SELECT * FROM {_quote(table)}) TO {_literal(str(partial))} ({options})")
            os.replace(partial, out)
        finally:
            con.close()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
