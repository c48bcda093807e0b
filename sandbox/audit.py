"""The tamper-evident audit log.

Every state change appends one record in the same transaction as the change:
time, actor, role, action, object, a digest of the payload, the previous
record's hash and its own hash (a hash chain), signed with the instance's
Ed25519 key. ``verify_chain`` recomputes everything and reports the first bad
record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.keys import SigningKey, verify_signature
from sandbox.persistence.models import AuditHead, AuditRecord
from sandbox.persistence.store import lock_for_update

GENESIS = "0" * 64


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


FORMAT = 2   # records written now; format 1 records predate on_behalf_of and key ids


def record_hash(seq: int, time: str, actor: str, role: str, action: str, object_type: str,
                object_id: str, payload_digest: str, prev_hash: str, on_behalf_of: str | None = None,
                *, format: int = FORMAT) -> str:
    fields: dict[str, Any] = {
        "seq": seq, "time": time, "actor": actor, "role": role,
        "action": action, "object_type": object_type, "object_id": object_id,
        "payload_digest": payload_digest, "prev_hash": prev_hash,
    }
    if format >= 2:
        fields["on_behalf_of"] = on_behalf_of
    return digest(fields)


@dataclass(frozen=True)
class Actor:
    """Who did something: a user name and role, or the system itself.

    ``on_behalf_of`` names the user whose authority the actor used when that is
    someone else (a delegated reviewer deciding on an owner's queue, an admin
    resetting a user's password); it is recorded and hashed with the record.
    """

    name: str
    role: str
    on_behalf_of: str | None = None


SYSTEM = Actor("system", "system")


def append(session: Session, signer: SigningKey, actor: Actor, action: str, object_type: str,
           object_id: Any, payload: dict[str, Any] | None = None) -> AuditRecord:
    """Append a record inside the caller's transaction (which commits it together
    with the change it describes)."""
    head = session.execute(lock_for_update(select(AuditHead).where(AuditHead.id == 1), session)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    payload = payload or {}
    seq = head.seq + 1
    time = datetime.now(UTC).isoformat(timespec="microseconds")
    pdigest = digest(payload)
    h = record_hash(seq, time, actor.name, actor.role, action, object_type, str(object_id), pdigest, head.hash,
                    actor.on_behalf_of)
    record = AuditRecord(
        seq=seq, format=FORMAT, time=time, actor=actor.name, role=actor.role, on_behalf_of=actor.on_behalf_of,
        action=action,
        object_type=object_type, object_id=str(object_id), payload=json.loads(canonical_json(payload)),
        payload_digest=pdigest, prev_hash=head.hash, hash=h, signature=signer.sign(h.encode("ascii")),
    )
    session.add(record)
    head.seq = seq
    head.hash = h
    session.flush()
    return record


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def verify_records(records: Iterable[AuditRecord], public: Ed25519PublicKey,
                   head: AuditHead | None) -> ChainReport:
    prev = GENESIS
    expected_seq = 1
    count = 0
    seen_current = False
    for rec in records:
        count += 1
        if rec.seq != expected_seq:
            bad = min(rec.seq, expected_seq)
            return ChainReport(False, count, bad, f"record {expected_seq} is missing or out of order (found {rec.seq})")
        if rec.prev_hash != prev:
            return ChainReport(False, count, rec.seq, "previous-hash link broken (a record before it was changed, removed or reordered)")
        fmt = getattr(rec, "format", FORMAT)
        if fmt not in (1, FORMAT) or (fmt == 1 and (rec.on_behalf_of is not None or seen_current)):
            return ChainReport(False, count, rec.seq, "record format is not valid at this place in the chain")
        seen_current = seen_current or fmt == FORMAT
        if digest(rec.payload) != rec.payload_digest:
            return ChainReport(False, count, rec.seq, "payload does not match its digest")
        h = record_hash(rec.seq, rec.time, rec.actor, rec.role, rec.action, rec.object_type,
                        rec.object_id, rec.payload_digest, rec.prev_hash, rec.on_behalf_of,
                        format=fmt)
        if h != rec.hash:
            return ChainReport(False, count, rec.seq, "record fields do not match its hash")
        if not verify_signature(public, rec.signature, rec.hash.encode("ascii")):
            return ChainReport(False, count, rec.seq, "signature is not valid for the instance key")
        prev = rec.hash
        expected_seq += 1
    last = expected_seq - 1
    if head is not None and (head.seq != last or head.hash != prev):
        return ChainReport(False, count, min(head.seq, last) + 1 if head.seq != last else last,
                           "the chain's end does not match the recorded head (records removed at the end?)")
    return ChainReport(True, count)


def verify_chain(session: Session, public: Ed25519PublicKey) -> ChainReport:
    records = session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    return verify_records(records, public, head)
