"""The chain itself: the canonical form, record hashes, the signing input, the
acting person, and appending a record inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from queries.errors import SandboxError
from sandbox.keys import SigningKey
from sandbox.persistence.models import AuditHead, AuditRecord, SigningKeyEntry
from sandbox.persistence.store import lock_for_update
from sandbox.vocabulary import ChainAction


GENESIS = "0" * 64
FORMAT = 2   # records written now; format 1 records predate on_behalf_of and key ids
KEY_ROTATE = ChainAction.KEY_ROTATE
HEAD_PUBLISH = ChainAction.HEAD_PUBLISH


def canonical_json(value: Any) -> bytes:
    """The canonical form hashed everywhere (docs/audit.md, "Canonical JSON")."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


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


def signing_input(seq: int, hash: str, key_id: str) -> bytes:
    """The bytes a format-2 record (and the head) is signed over."""
    return canonical_json({"seq": seq, "hash": hash, "key_id": key_id})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


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


_HEAD = cast(Table, AuditHead.__table__)
# built once (building a statement costs more than running it)
_SELECT_HEAD = select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.key_id).where(_HEAD.c.id == 1)
_INSERT_RECORD = insert(cast(Table, AuditRecord.__table__))
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(
    seq=bindparam("new_seq"), hash=bindparam("new_hash"), signature=bindparam("new_signature"),
    key_id=bindparam("new_key_id"))


@dataclass(frozen=True, slots=True)
class _Head:
    seq: int
    hash: str
    key_id: str | None


def _key_in_force(session: Session, signer: SigningKey, head: _Head | AuditHead) -> str:
    """The id of the key that must sign the next record. The first record of an
    instance (or the first since key ids were recorded) enters the signer's key
    in the history; after that only a rotation changes it. A process still
    holding a rotated-out key reloads the key file; a key file replaced without
    a rotation is refused."""
    kid = signer.key_id()
    if head.key_id is None:
        if session.get(SigningKeyEntry, kid) is None:
            session.add(SigningKeyEntry(key_id=kid, fingerprint=signer.fingerprint(), public_key_pem=signer.public_pem(),
                                        from_seq=1, created_at=_now()))
            session.flush()
        return kid
    if kid != head.key_id:
        signer.reload()
        kid = signer.key_id()
    if kid != head.key_id:
        raise SandboxError(f"the signing key file holds key {kid}, but key {head.key_id} is in force and no rotation "
                           "was recorded; restore the key file or rotate with 'dp-sandbox keys rotate-signing'",
                           code="signing_key_not_in_force")
    return kid


def _locked_head(session: Session) -> AuditHead:
    head = session.execute(lock_for_update(select(AuditHead).where(AuditHead.id == 1), session)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def _read_head(session: Session) -> _Head:
    """The head row, locked (SQLite: the transaction's write lock), created if missing."""
    conn = session.connection()
    row = conn.execute(lock_for_update(_SELECT_HEAD, session)).first()
    if row is None:
        conn.execute(insert(_HEAD).values(id=1, seq=0, hash=GENESIS))
        return _Head(0, GENESIS, None)
    return _Head(int(row.seq), str(row.hash), row.key_id)


def append(session: Session, signer: SigningKey, actor: Actor, action: str, object_type: str,
           object_id: Any, payload: dict[str, Any] | None = None) -> AuditRecord:
    """Append a record inside the caller's transaction (which commits it together
    with the change it describes). The head and the record are written as plain
    SQL on the session's connection; a head object the session holds is expired,
    so it reads the new head."""
    session.flush()     # the changes the record describes go first (they may hold the rows it names)
    head = _read_head(session)
    kid = _key_in_force(session, signer, head)
    payload = payload or {}
    seq = head.seq + 1
    time = _now()
    stored = json.loads(canonical_json(payload))   # as the store gives it back (keys as text, tuples as lists)
    pdigest = digest(stored)
    h = record_hash(seq, time, actor.name, actor.role, action, object_type, str(object_id), pdigest, head.hash,
                    actor.on_behalf_of)
    signature = signer.sign(signing_input(seq, h, kid))
    values = dict(
        seq=seq, format=FORMAT, time=time, actor=actor.name, role=actor.role, on_behalf_of=actor.on_behalf_of,
        action=action, object_type=object_type, object_id=str(object_id),
        payload=stored, payload_digest=pdigest, prev_hash=head.hash, hash=h,
        key_id=kid, signature=signature,
    )
    conn = session.connection()
    conn.execute(_INSERT_RECORD, values)
    conn.execute(_UPDATE_HEAD, {"new_seq": seq, "new_hash": h, "new_signature": signature, "new_key_id": kid})
    held = session.identity_map.get(identity_key(AuditHead, 1))
    if held is not None:
        session.expire(held)
    return AuditRecord(**values)
