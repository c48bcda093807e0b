"""Backup and restore of a whole instance, taken while it runs.

A backup is a directory::

    manifest.json       what was copied: every file with its SHA-256 and size, the
                        store's kind, the audit head (seq, hash) of the copy, the key ids
    store.sqlite        SQLite: a copy made with SQLite's online backup API
    store.pgdump        PostgreSQL: pg_dump's custom format
    keys/               signing.pem, master.key and the other files of <home>/keys
    data/, products/, register/    the home's folders of the same names

The store is copied first, as one consistent snapshot: SQLite's backup API reads
every page inside one read transaction; on PostgreSQL a REPEATABLE READ
transaction exports its snapshot, reads the audit head and the files the store
names, and ``pg_dump --snapshot`` dumps exactly that state. Files come next:
version and product files are written before the rows that name them commit and
never change afterwards, so every file the snapshot names is already complete (a
file added later is copied too and stays unnamed). The backup holds the home's
operations lock shared, so a master-key rotation waits for it (and it for one).

:func:`restore` checks every file against the manifest, refuses a home that
holds anything and a database that has tables, brings back the store (SQLite:
the file; PostgreSQL: ``pg_restore`` into the empty database ``--database-url``
names), the keys and the files, and re-points the stored paths of versions and
products at the new home in one transaction with its audit record,
``instance.restore``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url

from queries.errors import InvalidInput, SandboxError
from sandbox.keys import SigningKey
from sandbox.operations.masterkey import LOCK_NAME, master_key_id, next_key_path, operations_lock
from sandbox.vocabulary import OperationAction

if TYPE_CHECKING:
    from sandbox.audit import Actor
    from sandbox.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "store.sqlite"
PG_FILE = "store.pgdump"
FOLDERS = ("data", "products", "register")
RESTORE_ACTION = OperationAction.RESTORE
BACKUP_ACTION = OperationAction.BACKUP
_CHUNK = 1 << 20


class BackupError(SandboxError):
    code = "backup_failed"


@dataclass(frozen=True)
class BackupReport:
    out: Path
    store: str
    files: int
    bytes: int
    audit_seq: int
    audit_hash: str
    manifest_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "store": self.store, "files": self.files, "bytes": self.bytes,
                "audit_seq": self.audit_seq, "audit_hash": self.audit_hash,
                "manifest_sha256": self.manifest_sha256}


@dataclass(frozen=True)
class RestoreReport:
    home: Path
    store: str
    files: int
    paths: int
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"home": str(self.home), "store": self.store, "files": self.files, "paths": self.paths,
                "audit_seq": self.audit_seq}


# ---------------------------------------------------------------- files

def _copy(src: Path, dst: Path, mode: int = 0o600) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (created with ``mode``) and return the SHA-256 and
    size of what was written."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest, size = hashlib.sha256(), 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _tree(root: Path) -> Iterator[Path]:
    """The files under ``root``, in a stable order, without partial writes."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix != ".part":
            yield path


# ---------------------------------------------------------------- PostgreSQL tools

def pg_tool(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: on PATH, else in ``pg_config --bindir``."""
    found = shutil.which(name)
    if found:
        return found
    config = shutil.which("pg_config")
    if config:
        bindir = subprocess.run([config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidate = Path(bindir) / name
        if bindir and candidate.is_file():
            return str(candidate)
    raise BackupError(f"PostgreSQL's {name} is neither on PATH nor in 'pg_config --bindir'",
                      code="pg_tool_missing", tool=name)


def _pg_params(url: str) -> dict[str, str]:
    """libpq parameters of a SQLAlchemy PostgreSQL URL (the password too: it goes
    to the tools through the environment, never their command line)."""
    u = make_url(url)
    params: dict[str, str] = {}
    for key, value in (("user", u.username), ("password", u.password), ("host", u.host),
                       ("port", u.port), ("dbname", u.database)):
        if value:
            params[key] = str(value)
    for key, given in u.query.items():
        params[key] = given if isinstance(given, str) else given[-1]
    return params


def _pg_env(url: str) -> dict[str, str]:
    names = {"user": "PGUSER", "password": "PGPASSWORD", "host": "PGHOST", "port": "PGPORT",
             "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in _pg_params(url).items():
        if key in names:
            env[names[key]] = value
    return env


def _run_tool(args: list[str], url: str, what: str) -> None:
    done = subprocess.run(args, env=_pg_env(url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{what} failed (exit {done.returncode}): {last}", tool=Path(args[0]).name)


# ---------------------------------------------------------------- backup

def _store_kind(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise InvalidInput(f"the store's database ({name}) cannot be backed up", code="unsupported_store")
    return name


_HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
_PATHS_SQL = ("SELECT path FROM dataset_versions UNION ALL "
              "SELECT path FROM product_versions WHERE path IS NOT NULL")


def _sqlite_snapshot(url: str, target: Path) -> tuple[tuple[int, str], list[str]]:
    database = make_url(url).database
    if not database:
        raise InvalidInput("an in-memory store cannot be backed up", code="unsupported_store")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    with closing(sqlite3.connect(database, timeout=60)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)      # every page in one read transaction: one consistent state
    with closing(sqlite3.connect(target)) as copy:
        head = copy.execute(_HEAD_SQL).fetchone()
        paths = [row[0] for row in copy.execute(_PATHS_SQL)]
    return (int(head[0]), str(head[1])) if head else (0, "0" * 64), paths


def _pg_snapshot(url: str, target: Path) -> tuple[tuple[int, str], list[str]]:
    import psycopg

    dump = pg_tool("pg_dump")
    with psycopg.connect(**_pg_params(url), autocommit=True) as conn:   # type: ignore[arg-type]
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = str(row[0])
        head = conn.execute(_HEAD_SQL).fetchone()
        paths = [str(r[0]) for r in conn.execute(_PATHS_SQL).fetchall()]
        _run_tool([dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                   f"--file={target}"], url, "pg_dump")
        conn.execute("COMMIT")
    target.chmod(0o600)
    return (int(head[0]), str(head[1])) if head else (0, "0" * 64), paths


def _key_files(settings: Settings) -> list[tuple[Path, str]]:
    """(source, name in the backup's keys/) of every key of the instance."""
    files = [(settings.signing_key_path, "keys/signing.pem"), (settings.master_key_path, "keys/master.key")]
    skip = {settings.signing_key_path.resolve(), settings.master_key_path.resolve(),
            next_key_path(settings).resolve()}
    for path in _tree(settings.keys_dir):
        staged = path.suffix in (".new", ".next")        # a key being rotated in, not yet in force
        if path.resolve() not in skip and path.name != LOCK_NAME and not staged:
            files.append((path, "keys/" + path.relative_to(settings.keys_dir).as_posix()))
    return files


def backup(settings: Settings, out: Path, actor: Actor | None = None) -> BackupReport:
    """Copy the instance at ``settings`` into the new directory ``out`` (see the
    module's documentation); the instance may be running."""
    from sandbox.instance import Instance

    out = Path(out).expanduser().resolve()
    home = settings.home_path
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} already exists and is not empty; a backup goes into a new directory",
                           code="backup_exists")
    if out == home or out.is_relative_to(home):
        raise InvalidInput("a backup cannot go inside the home it copies", code="backup_inside_home")
    kind = _store_kind(settings.store_url)
    inst = Instance.open(settings)
    created_out = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        out.chmod(0o700)
        files: dict[str, dict[str, Any]] = {}
        with operations_lock(settings, exclusive=False):
            store_file = out / (SQLITE_FILE if kind == "sqlite" else PG_FILE)
            if kind == "sqlite":
                (seq, head_hash), named = _sqlite_snapshot(settings.store_url, store_file)
            else:
                (seq, head_hash), named = _pg_snapshot(settings.store_url, store_file)
            sha, size = _sha256(store_file)
            files[store_file.name] = {"sha256": sha, "bytes": size}
            for src, name in _key_files(settings):
                sha, size = _copy(src, out / name)
                files[name] = {"sha256": sha, "bytes": size}
        # the ids of the keys as copied (a rotation may have run since this process opened the instance)
        signer_id = SigningKey.load(out / "keys" / "signing.pem").key_id()
        master_id = master_key_id((out / "keys" / "master.key").read_bytes())
        for folder in FOLDERS:
            for src in _tree(home / folder):
                name = src.relative_to(home).as_posix()
                try:
                    sha, size = _copy(src, out / name)
                except FileNotFoundError:      # removed since it was listed: the snapshot cannot name it
                    continue
                files[name] = {"sha256": sha, "bytes": size}
        missing = sorted(_relative(home, p) for p in named if _relative(home, p) not in files)
        if missing:
            raise BackupError(f"the store names {len(missing)} file(s) the home does not hold, e.g. {missing[0]}",
                              code="backup_incomplete", files=missing[:20])
        manifest = {
            "format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_home": str(home), "store": kind, "audit": {"seq": seq, "hash": head_hash},
            "signing_key_id": signer_id, "master_key_id": master_id, "files": files,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        fd = os.open(out / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        manifest_sha = hashlib.sha256(text).hexdigest()
        total = sum(int(f["bytes"]) for f in files.values())
        if actor is not None:
            from sandbox import audit

            with inst.store.transaction() as s:
                audit.append(s, inst.signer, actor, BACKUP_ACTION, "instance", "backup", {
                    "manifest_sha256": manifest_sha, "audit_seq": seq, "files": len(files), "bytes": total})
        return BackupReport(out, kind, len(files), total, seq, head_hash, manifest_sha)
    except BaseException:
        if created_out:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise
    finally:
        inst.close()


def _relative(home: Path, stored: str) -> str:
    path = Path(stored)
    return path.relative_to(home).as_posix() if path.is_absolute() and path.is_relative_to(home) else stored


# ---------------------------------------------------------------- restore

def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = Path(backup_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{backup_dir} is not a dp-sandbox backup (no {MANIFEST})", code="not_a_backup") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"{path} is not a readable manifest", code="backup_damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"),
                                                                                            dict):
        raise InvalidInput(f"{path} is not a backup manifest of format {FORMAT}", code="not_a_backup")
    return manifest


def check_backup(backup_dir: Path) -> dict[str, Any]:
    """The manifest, once every file it lists is present with its SHA-256 and
    size, and each name stays inside the backup; else ``backup_damaged`` naming
    the first bad file."""
    root = Path(backup_dir).resolve()
    manifest = read_manifest(root)
    for name, facts in sorted(manifest["files"].items()):
        path = (root / name).resolve()
        if not path.is_relative_to(root) or name == MANIFEST:
            raise InvalidInput(f"the manifest names a file outside the backup: {name}", code="backup_damaged",
                               file=name)
        try:
            sha, size = _sha256(path)
        except FileNotFoundError:
            raise InvalidInput(f"the backup has lost {name}", code="backup_damaged", file=name) from None
        if sha != facts.get("sha256") or size != facts.get("bytes"):
            raise InvalidInput(f"{name} differs from the manifest (SHA-256 or size)", code="backup_damaged",
                               file=name)
    return manifest


def restore(backup_dir: Path, settings: Settings, actor: Actor) -> RestoreReport:
    """Bring the backup at ``backup_dir`` back as the instance ``settings``
    describes: a new (or empty) home and, for a PostgreSQL backup, the empty
    database ``settings.database_url`` names."""
    from sandbox import audit
    from sandbox.instance import Instance
    from sandbox.persistence.models import AuditHead, DatasetVersion, ProductVersion
    from sandbox.persistence.store import Store

    root = Path(backup_dir).expanduser().resolve()
    manifest = check_backup(root)
    kind = manifest["store"]
    home = settings.home_path
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise InvalidInput(f"{home} already holds files; restore into a new home", code="home_not_empty")
    if kind == "postgresql":
        if not settings.database_url or _store_kind(settings.database_url) != "postgresql":
            raise InvalidInput("a PostgreSQL backup is restored into an empty PostgreSQL database: give "
                               "--database-url (or DPS_DATABASE_URL)", code="database_url_required")
    elif kind == "sqlite":
        if settings.database_url and settings.store_url != f"sqlite:///{home / SQLITE_FILE}":
            raise InvalidInput("a SQLite backup is restored into the new home's own store; leave "
                               "--database-url unset", code="store_mismatch")
    else:
        raise InvalidInput(f"the backup's store kind '{kind}' is unknown", code="not_a_backup")
    source_keys = (settings.signing_key_file, settings.master_key_file)
    if any(source_keys):
        raise InvalidInput("the restored keys go into the new home's keys/; unset DPS_SIGNING_KEY_FILE and "
                           "DPS_MASTER_KEY_FILE", code="key_files_set")
    if kind == "postgresql":
        probe = Store(settings.store_url)
        try:
            tables = inspect(probe.engine).get_table_names()
        finally:
            probe.dispose()
        if tables:
            raise InvalidInput("the database --database-url names already has tables; restore into an empty one",
                               code="store_not_empty")

    created_home = not home.exists()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    try:
        for sub in ("data", "products", "logs", "keys"):
            (home / sub).mkdir(exist_ok=True, mode=0o700)
        copied = 0
        for name in sorted(manifest["files"]):
            if name in (SQLITE_FILE, PG_FILE):
                continue
            _copy(root / name, home / name)
            copied += 1
        if kind == "sqlite":
            _copy(root / SQLITE_FILE, home / SQLITE_FILE)
        else:
            _run_tool([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                       f"--dbname={_pg_params(settings.store_url).get('dbname', '')}", str(root / PG_FILE)],
                      settings.store_url, "pg_restore")
        store = Store(settings.store_url)
        try:
            store.migrate()
        finally:
            store.dispose()
        old_home = Path(manifest["source_home"])
        inst = Instance.open(settings)
        try:
            moved = 0
            with inst.store.transaction() as s:
                head = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
                found = (head.seq, head.hash) if head is not None else (0, "0" * 64)
                if found != (manifest["audit"]["seq"], manifest["audit"]["hash"]):
                    raise InvalidInput(f"the restored store ends at audit record {found[0]}, the manifest at "
                                       f"{manifest['audit']['seq']}", code="backup_damaged", file=PG_FILE
                                       if kind == "postgresql" else SQLITE_FILE)
                rows: list[DatasetVersion | ProductVersion] = [*s.execute(select(DatasetVersion)).scalars(),
                                                               *s.execute(select(ProductVersion)).scalars()]
                for row in rows:
                    if row.path and Path(row.path).is_relative_to(old_home):
                        row.path = str(home / Path(row.path).relative_to(old_home))
                        moved += 1
                record = audit.append(s, inst.signer, actor, RESTORE_ACTION, "instance", "restore", {
                    "backup_audit_seq": manifest["audit"]["seq"], "backup_audit_hash": manifest["audit"]["hash"],
                    "source_home": str(old_home), "paths": moved, "files": len(manifest["files"]),
                })
                seq = record.seq
        finally:
            inst.close()
    except BaseException:
        if created_home:
            shutil.rmtree(home, ignore_errors=True)
        raise
    return RestoreReport(home, kind, copied + 1, moved, seq)
