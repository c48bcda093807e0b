"""Migration 0011 moves the sharing outbox (share_notifications) into the one
outbox: each row becomes a share_new_version notice with the same recipient,
grant, dataset and version, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, LargeBinary, MetaData, Table, select

from sandbox.persistence.store import Store, alembic_config


def _value(column: Any, pk: int) -> Any:
    if column.primary_key or column.foreign_keys:
        return pk
    kind = column.type
    for types, value in ((Boolean, True), ((Integer, BigInteger), 1), (Float, 0.5),
                         (DateTime, datetime(2026, 11, 30, 12, 0, tzinfo=UTC)), (JSON, {}), (LargeBinary, b"k")):
        if isinstance(kind, types):
            return value
    return f"{column.name}-{pk}"


def _row(table: Table, pk: int, **given: Any) -> dict[str, Any]:
    row = {c.name: _value(c, pk) for c in table.columns if not c.nullable or c.primary_key}
    return {**row, **given}


def _closure(meta: MetaData, name: str) -> list[Table]:
    """``name`` and every table it refers to, parents first."""
    needed: set[str] = set()

    def visit(t: Table) -> None:
        if t.name in needed:
            return
        needed.add(t.name)
        for fk in t.foreign_keys:
            if not fk.parent.nullable:
                visit(fk.column.table)

    visit(meta.tables[name])
    return [t for t in meta.sorted_tables if t.name in needed]


def test_the_sharing_outbox_moves_into_the_one_outbox(store_url):
    store = Store(store_url)
    try:
        cfg = alembic_config(store_url)
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0010")
        meta = MetaData()
        meta.reflect(store.engine)
        with store.engine.begin() as conn:
            for t in _closure(meta, "share_notifications"):
                if t.name == "share_notifications":
                    continue
                given = {"name": "registry"} if t.name == "datasets" else {}
                conn.execute(t.insert().values(**_row(t, 1, **given)))
            notes = meta.tables["share_notifications"]
            for pk, version in ((1, 2), (2, 3)):
                conn.execute(notes.insert().values(**_row(notes, pk, request_id=1, recipient_id=1, dataset_id=1,
                                                          version_number=version, kind="new_version")))
        store.migrate()
        with store.engine.connect() as conn:
            after = MetaData()
            after.reflect(conn)
            assert "share_notifications" not in after.tables
            rows = conn.execute(select(after.tables["notifications"]).order_by("id")).mappings().all()
        assert [(r["kind"], r["recipient_id"], r["object_type"], r["object_id"]) for r in rows] == [
            ("share_new_version", 1, "share_request", "1")] * 2
        assert [r["facts"] for r in rows] == [{"dataset": "registry", "version": 2, "grant": 1},
                                              {"dataset": "registry", "version": 3, "grant": 1}]
        assert [r["dedup_key"] for r in rows] == ["share_new_version:1:2:1", "share_new_version:1:3:1"]

        with store.engine.begin() as conn:          # and back
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0010")
        with store.engine.connect() as conn:
            back = MetaData()
            back.reflect(conn)
            restored = conn.execute(select(back.tables["share_notifications"]).order_by("id")).mappings().all()
        assert [(r["request_id"], r["recipient_id"], r["dataset_id"], r["version_number"], r["kind"])
                for r in restored] == [(1, 1, 1, 2, "new_version"), (1, 1, 1, 3, "new_version")]
    finally:
        store.dispose()
