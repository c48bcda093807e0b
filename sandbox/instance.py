"""An instance of dp-sandbox: its settings, store, keys, logs and worker pool.

``init_home`` creates a home (idempotent); ``Instance.open`` opens an existing one
and sends the ``dp_sandbox`` loggers to ``<home>/logs/dp-sandbox.log`` at
``DPS_LOG_LEVEL`` (rotated under ``log_max_bytes``); ``close`` detaches them.
Services take an ``Instance`` and an acting user.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queries.errors import BadMasterKey, SandboxError
from sandbox.keys import SigningKey, create_master_key, create_signing_key, load_master_key
from sandbox.operations.masterkey import (
    KeyRing, check_master_key, digest_key_path, settle_pending_rotation,
)
from sandbox.logs import attach_instance_log, detach_instance_log
from sandbox.settings import Settings, load_settings
from sandbox.persistence.store import Store

log = logging.getLogger("dp_sandbox.instance")


def init_home(settings: Settings) -> bool:
    """Create the home directory, keys and store schema if missing. Returns True
    when something was created. A home that already holds data (audit records,
    dataset versions, data or product files) never gets a new signing or master
    key: a missing one is refused with ``keys_missing``, since a new master key
    would orphan every encrypted version and a new signing key every signature."""
    home = settings.home_path
    created = not home.exists()
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    for sub in ("data", "products", "logs", "keys"):
        (home / sub).mkdir(exist_ok=True, mode=0o700)
    store = Store(settings.store_url)
    try:
        missing = [p for p in (settings.signing_key_path, settings.master_key_path) if not p.exists()]
        if missing and _holds_data(settings, store):
            names = " and ".join(str(p) for p in missing)
            raise SandboxError(f"the home at {home} holds data but {names} is missing; restore the key from a "
                               "backup ('dp-sandbox restore') instead of making a new one, which would orphan "
                               "every encrypted version and signature", code="keys_missing",
                               keys=[p.name for p in missing])
        if not settings.signing_key_path.exists():
            if settings.signing_key_file:
                raise SandboxError(f"signing key file {settings.signing_key_path} does not exist",
                                   code="bad_signing_key")
            create_signing_key(settings.signing_key_path)
            created = True
        if not settings.master_key_path.exists():
            if settings.master_key_file:
                raise BadMasterKey(f"master key file {settings.master_key_path} does not exist")
            create_master_key(settings.master_key_path)
            created = True
        session_key = settings.keys_dir / "session.key"
        if not settings.secret_key and not session_key.exists():
            session_key.write_bytes(secrets.token_bytes(32))
            session_key.chmod(0o600)
        if not store.has_schema():
            created = True
        store.migrate()
        settle_pending_rotation(settings, store)
    finally:
        store.dispose()
    return created


def _holds_data(settings: Settings, store: Store) -> bool:
    """Whether the home has anything a key protects or signs: a data or product
    file, or a store with audit records or dataset versions."""
    home = settings.home_path
    for sub in ("data", "products"):
        if any(p.is_file() for p in (home / sub).rglob("*")):
            return True
    if not store.has_schema():
        return False
    from sqlalchemy import func, select

    from sandbox.persistence.models import AuditRecord, DatasetVersion

    with store.read() as s:
        return bool(s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
                    or s.execute(select(func.count()).select_from(DatasetVersion)).scalar_one())


@dataclass
class Instance:
    settings: Settings
    store: Store
    signer: SigningKey
    key_ring: KeyRing = field(repr=False)
    _pool: Any = field(default=None, repr=False)
    _spark: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _log_key: str | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = False) -> Instance:
        settings = settings or load_settings()
        home = settings.home_path
        if not home.exists() or not settings.signing_key_path.exists():
            raise SandboxError(f"no dp-sandbox home at {home}; run 'dp-sandbox init' first", code="not_initialised")
        store = Store(settings.store_url)
        if migrate:
            store.migrate()
        elif not store.has_schema():
            raise SandboxError("the metadata store has no schema; run 'dp-sandbox init'", code="not_initialised")
        try:
            settle_pending_rotation(settings, store)
            master_key = load_master_key(settings.master_key_path)
            check_master_key(settings, store, master_key)
            inst = cls(settings, store, SigningKey.load(settings.signing_key_path),
                       KeyRing(settings, store, master_key))
        except BaseException:
            store.dispose()
            raise
        try:
            inst._log_key = attach_instance_log(inst.log_dir, settings.log_level, settings.log_max_bytes,
                                                settings.log_backups)
        except BaseException:
            store.dispose()
            raise
        log.debug("instance opened: home %s, store %s, %d workers", home, store.engine.dialect.name,
                  settings.workers)
        return inst

    @property
    def master_key(self) -> bytes:
        """The current master key (a rotation by another process is picked up here)."""
        return self.key_ring.current()

    @property
    def digest_key(self) -> bytes:
        """The key of published digests (``keys/digest.key`` once the master key
        has been rotated; until then derived from the master key)."""
        from sandbox.execution.storage import derive_digest_key

        path = digest_key_path(self.settings)
        if path.exists():
            return path.read_bytes()
        return derive_digest_key(self.master_key)

    @property
    def home(self) -> Path:
        return self.settings.home_path

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def session_secret(self) -> bytes:
        if self.settings.secret_key:
            return self.settings.secret_key.encode()
        return (self.settings.keys_dir / "session.key").read_bytes()

    @property
    def pool(self):
        """The worker pool, started on first use. Started so, its workers open a
        version when a query first needs it: a one-shot command (``dp-sandbox query
        run``) would otherwise decrypt versions it never queries. A server starts
        the pool with :meth:`start_workers` instead."""
        return self._start_pool(preload=False)

    def start_workers(self):
        """Start the worker pool now (a server, before it takes requests): each
        worker decrypts and opens the current versions before its first query."""
        return self._start_pool(preload=True)

    def _start_pool(self, *, preload: bool):
        with self._lock:
            if self._pool is None:
                from sandbox.execution.worker import WorkerLimits, WorkerPool

                s = self.settings
                limits = WorkerLimits(memory_mb=s.worker_memory_mb, threads=s.worker_threads,
                                      timeout_s=s.query_timeout_s, address_space_mb=s.worker_address_space_mb,
                                      cpu_seconds=s.worker_cpu_seconds, spill_mb=s.worker_spill_mb)
                self._pool = WorkerPool(
                    size=s.workers,
                    limits=limits,
                    log_dir=self.log_dir,
                    temp_root=Path(s.worker_temp_root) if s.worker_temp_root else None,
                    log_max_bytes=s.log_max_bytes, log_backups=s.log_backups,
                    debug_engine_messages=s.debug_engine_messages,
                    preload=self._versions_to_preload(limits.cached_versions) if preload else [],
                )
            return self._pool

    def _versions_to_preload(self, count: int) -> list[tuple[Path, bytes]]:
        """The current version of each queryable (conditional) dataset that runs on
        DuckDB, most recently queried or added first, at most ``count``, with its
        data key: what the workers open before their first query. Best effort:
        a failure here only means nothing is preloaded."""
        from sqlalchemy import func, select

        from queries.policy import DatasetPolicy
        from queries.vocabulary import Classification, Engine
        from sandbox.execution.engine import engine_of
        from sandbox.execution.storage import unwrap_key
        from sandbox.persistence.models import Dataset, DatasetVersion, QueryRun

        try:
            with self.store.read() as s:
                newest = (select(DatasetVersion.dataset_id, func.max(DatasetVersion.number).label("number"))
                          .group_by(DatasetVersion.dataset_id).subquery())
                current = s.execute(
                    select(DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                    .join(newest, (newest.c.dataset_id == DatasetVersion.dataset_id)
                          & (newest.c.number == DatasetVersion.number))
                    .where(Dataset.classification == Classification.CONDITIONAL)).scalars().all()
                duckdb = [v for v in current
                          if engine_of(DatasetPolicy.from_dict(v.policy), self.settings.engine) is Engine.DUCKDB]
                last_run = dict(s.execute(
                    select(QueryRun.version_id, func.max(QueryRun.created_at))
                    .where(QueryRun.version_id.in_([v.id for v in duckdb])).group_by(QueryRun.version_id)).all())
                duckdb.sort(key=lambda v: max(filter(None, (v.created_at, last_run.get(v.id)))), reverse=True)
                chosen = [(Path(v.path), v.wrapped_key) for v in duckdb[:max(0, count)]]
        except Exception as exc:    # the class only: never a message that could carry a key or a path
            log.warning("no versions preloaded into the workers: %s", type(exc).__name__)
            return []
        preload = []
        for path, wrapped in chosen:
            try:
                preload.append((path, unwrap_key(wrapped, self.master_key)))
            except SandboxError as exc:
                log.warning("a version is not preloaded into the workers: %s", exc.code)
        return preload

    def engine(self, name: str):
        """The execution engine ``name`` (``duckdb``: the worker pool; ``spark``: one
        Spark engine on ``DPS_SPARK_MASTER``, started on first use)."""
        from sandbox.execution.engine import DuckDBEngine, SparkVersionEngine

        if name == "duckdb":
            return DuckDBEngine(self.pool)
        with self._lock:
            if self._spark is None:
                from sandbox.execution.spark import SparkEngine, SparkLimits, parse_conf

                s = self.settings
                spark = SparkEngine(s.spark_master, parse_conf(s.spark_conf),
                                    SparkLimits(timeout_s=s.query_timeout_s, max_rows_read=s.spark_max_rows_read))
                self._spark = SparkVersionEngine(spark, Path(s.worker_temp_root) if s.worker_temp_root else None)
            return self._spark

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            if self._spark is not None:
                self._spark.close()
                self._spark = None
            if self._log_key is not None:
                detach_instance_log(self._log_key)
                self._log_key = None
        self.store.dispose()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
