"""The metadata store: an engine, migrations and write transactions.

SQLite (WAL) inside the home is the embedded default; a ``postgresql+psycopg``
URL switches to PostgreSQL. Every write goes through ``Store.transaction()``:
on SQLite it starts with ``BEGIN IMMEDIATE`` (one writer at a time across
processes); on PostgreSQL writers serialise on the rows they lock
(the audit head, budget counters).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from collections.abc import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
_Row = TypeVar("_Row")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # Pooled: closing the last connection of a WAL database checkpoints it, so
        # a connection per transaction would pay that on every write.
        engine = create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=False,
                               connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
            dbapi_connection.isolation_level = None   # we issue BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        cfg = alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def has_schema(self) -> bool:
        return inspect(self.engine).has_table("audit_head")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on any error."""
        with self._sessions() as session:
            with session.begin():
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            with session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()


def lock_for_update(stmt, store_or_session):
    """``SELECT ... FOR UPDATE`` where the database supports it (SQLite already
    holds the write lock from ``BEGIN IMMEDIATE``)."""
    bind = store_or_session.get_bind() if isinstance(store_or_session, Session) else store_or_session.engine
    return stmt if bind.dialect.name == "sqlite" else stmt.with_for_update()


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched. ``Session.execute`` is typed as
    returning a ``Result``; what a DML statement returns is a ``CursorResult``."""
    return cast("CursorResult[Any]", result).rowcount


def existing_row(s: Session, model: type[_Row], key: object) -> _Row:
    """The row ``key`` names where a foreign key or an earlier check guarantees
    it (a product's dataset, a run's licence). A missing one is a damaged store
    or a bug, not a caller's mistake: LookupError, which the API answers as an
    internal error, instead of an AttributeError on None further on."""
    row = s.get(model, key)
    if row is None:
        raise LookupError(f"the store has no {getattr(model, '__tablename__', model.__name__)} row {key!r}")
    return row
