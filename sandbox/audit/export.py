"""Exporting the chain as JSON Lines with its public keys, head and published
heads (what a third party verifies with the recipe in docs/audit.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import SandboxError
from sandbox.persistence.models import AuditHead, AuditRecord

from sandbox.audit.chain import canonical_json
from sandbox.audit.heads import stored_published_heads
from sandbox.audit.signing_keys import key_history

EXPORT_FIELDS = ("seq", "format", "time", "actor", "role", "on_behalf_of", "action", "object_type", "object_id",
                 "payload", "payload_digest", "prev_hash", "hash", "key_id", "signature")


def export_chain(session: Session, out: Path, *, since: int = 0) -> dict[str, Any]:
    """Write records with seq > ``since`` as JSON lines (``EXPORT_FIELDS``, each
    line in canonical JSON, so a payload's canonical form is its text in the
    line), and the public keys, head and published heads to ``<out>.keys.json``."""
    if since < 0:
        raise SandboxError("--since must be 0 or a record number", code="invalid_since")
    cols = [getattr(AuditRecord, f) for f in EXPORT_FIELDS]
    rows = session.execute(select(*cols).where(AuditRecord.seq > since).order_by(AuditRecord.seq)
                           .execution_options(yield_per=5000))
    n = 0
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(canonical_json(dict(zip(EXPORT_FIELDS, row))).decode("utf-8") + "\n")
            n += 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    keys_doc = {
        "format": "dp-sandbox/audit-keys", "since": since, "records": n,
        "head": None if head is None else {"seq": head.seq, "hash": head.hash, "key_id": head.key_id,
                                           "signature": head.signature},
        "keys": [k.to_dict() for k in key_history(session)],
        "published_heads": [p.to_dict() for p in stored_published_heads(session)],
    }
    keys_path = keys_file_for(out)
    keys_path.write_text(json.dumps(keys_doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return {"records": n, "since": since, "out": str(out), "keys": str(keys_path)}


def keys_file_for(out: Path) -> Path:
    return out.with_name(out.name + ".keys.json")
