"""The metadata store: migrations match the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from sandbox.persistence.models import Base
from sandbox.persistence.store import Store


def test_migrations_create_every_table_and_match_the_models(store_url):
    store = Store(store_url)
    try:
        store.migrate()
        store.migrate()   # idempotent
        tables = set(inspect(store.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
    finally:
        store.dispose()


def test_sqlite_store_uses_wal(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.dispose()
