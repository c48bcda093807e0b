"""The tamper-evident audit log.

Every state change appends one record in the same transaction as the change:
time, actor (and on whose behalf), role, action, object, a digest of the
payload, the previous record's hash and its own hash (a hash chain), signed
with the instance's Ed25519 key over ``{seq, hash, key_id}``, so neither a
record's place nor its key can be changed without the key. The head row
(newest seq and hash, and the key in force) is signed the same way.

Heads are published (the transparency register, disclosure reports) and kept in
``audit_published_heads``; ``verify_chain`` recomputes everything, checks the
chain against every published head (a cut tail shows), follows the signing-key
history (each rotation is a ``key.rotate`` record signed by the outgoing key)
and compares the key on disk with the key in force. docs/audit.md gives the
exact recipe a third party can verify an export with.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import SandboxError
from sandbox.keys import SigningKey, fingerprint, key_id, load_public_key, private_key_pem, public_key_pem, \
    verify_signature
from sandbox.persistence.models import AuditHead, AuditRecord, PublishedHead, SigningKeyEntry
from sandbox.persistence.store import lock_for_update
from sandbox.vocabulary import ChainAction, HeadPlace

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


def _key_in_force(session: Session, signer: SigningKey, head: AuditHead) -> str:
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
        head.key_id = kid
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


def append(session: Session, signer: SigningKey, actor: Actor, action: str, object_type: str,
           object_id: Any, payload: dict[str, Any] | None = None) -> AuditRecord:
    """Append a record inside the caller's transaction (which commits it together
    with the change it describes)."""
    head = _locked_head(session)
    kid = _key_in_force(session, signer, head)
    payload = payload or {}
    seq = head.seq + 1
    time = _now()
    stored = json.loads(canonical_json(payload))   # as the store gives it back (keys as text, tuples as lists)
    pdigest = digest(stored)
    h = record_hash(seq, time, actor.name, actor.role, action, object_type, str(object_id), pdigest, head.hash,
                    actor.on_behalf_of)
    signature = signer.sign(signing_input(seq, h, kid))
    record = AuditRecord(
        seq=seq, format=FORMAT, time=time, actor=actor.name, role=actor.role, on_behalf_of=actor.on_behalf_of,
        action=action, object_type=object_type, object_id=str(object_id),
        payload=stored, payload_digest=pdigest, prev_hash=head.hash, hash=h,
        key_id=kid, signature=signature,
    )
    session.add(record)
    head.seq = seq
    head.hash = h
    head.signature = signature
    session.flush()
    return record


# --- keys ------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyInfo:
    """One entry of the signing-key history."""

    key_id: str
    fingerprint: str
    public_key_pem: str
    from_seq: int
    until_seq: int | None = None
    created_at: str = ""
    retired_at: str | None = None

    @property
    def public(self) -> Ed25519PublicKey:
        return load_public_key(self.public_key_pem)

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "fingerprint": self.fingerprint, "public_key_pem": self.public_key_pem,
                "algorithm": "Ed25519", "from_seq": self.from_seq, "until_seq": self.until_seq,
                "created_at": self.created_at, "retired_at": self.retired_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeyInfo:
        return cls(str(d["key_id"]), str(d["fingerprint"]), str(d["public_key_pem"]), int(d["from_seq"]),
                   None if d.get("until_seq") is None else int(d["until_seq"]), str(d.get("created_at") or ""),
                   d.get("retired_at"))

    @classmethod
    def of_public(cls, public: Ed25519PublicKey, from_seq: int = 1) -> KeyInfo:
        return cls(key_id(public), fingerprint(public), public_key_pem(public), from_seq)


def key_history(session: Session) -> list[KeyInfo]:
    """The signing keys, oldest first."""
    rows = session.execute(select(SigningKeyEntry).order_by(SigningKeyEntry.from_seq, SigningKeyEntry.created_at))
    return [KeyInfo(r.key_id, r.fingerprint, r.public_key_pem, r.from_seq, r.until_seq, r.created_at, r.retired_at)
            for r in rows.scalars()]


def signing_key_document(inst: Any) -> dict[str, Any]:
    """The signing key in force and the key history, as ``keys show`` and
    ``GET /api/v1/keys`` give them."""
    with inst.store.read() as s:
        history = [k.to_dict() for k in key_history(s)]
    return {"algorithm": "Ed25519", "key_id": inst.signer.key_id(), "fingerprint": inst.signer.fingerprint(),
            "public_key_pem": inst.signer.public_pem(), "history": history}


def instance_public_keys(inst: Any) -> list[str]:
    """The PEM of every signing key the instance has used, the current one first
    (to verify packages signed before a rotation)."""
    with inst.store.read() as s:
        history = key_history(s)
    current = inst.signer.public_pem()
    return [current, *(k.public_key_pem for k in reversed(history) if k.public_key_pem != current)]


def rotate_signing_key(inst: Any, actor: Actor) -> dict[str, Any]:
    """Replace the instance's signing key by a new one. In one transaction: a
    ``key.rotate`` record signed by the outgoing key names the incoming key
    (id, fingerprint, public key, first seq), the history retires the old key
    and enters the new one, and the head is re-signed by the new key. The new
    key file is written beside the old one first and moved over it once the
    transaction commits; records and manifests signed by the old key keep
    verifying with its public key from the history."""
    path: Path = inst.settings.signing_key_path
    new = Ed25519PrivateKey.generate()
    new_pub = new.public_key()
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(new))
    try:
        with inst.store.transaction() as s:
            old_id = inst.signer.key_id()
            old_fp = inst.signer.fingerprint()
            head = _locked_head(s)
            _key_in_force(s, inst.signer, head)
            new_id = key_id(new_pub)
            rec = append(s, inst.signer, actor, KEY_ROTATE, "signing_key", new_id, {
                "old_key_id": old_id, "old_fingerprint": old_fp,
                "new_key_id": new_id, "new_fingerprint": fingerprint(new_pub),
                "new_public_key_pem": public_key_pem(new_pub), "from_seq": head.seq + 2,
            })
            at = _now()
            old = s.get(SigningKeyEntry, old_id)
            if old is None:   # cannot happen: _key_in_force entered it
                raise LookupError(f"signing key {old_id} is not in the history")
            old.until_seq = rec.seq
            old.retired_at = at
            s.add(SigningKeyEntry(key_id=new_id, fingerprint=fingerprint(new_pub), public_key_pem=public_key_pem(new_pub),
                                  from_seq=rec.seq + 1, created_at=at))
            head.key_id = new_id
            head.signature = SigningKey(new).sign(signing_input(head.seq, head.hash, new_id))
            s.flush()
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, path)
    inst.signer.reload()
    return {"old_key_id": old_id, "new_key_id": new_id, "new_fingerprint": fingerprint(new_pub), "seq": rec.seq}


# --- published heads ---------------------------------------------------------------

@dataclass(frozen=True)
class PublishedHeadInfo:
    """A head as published: the chain's seq and hash then, signed with key_id.
    ``keys`` is the key history the publication pinned (from a saved register
    or report; None for heads read from the store)."""

    seq: int
    hash: str
    key_id: str
    signature: str
    time: str
    place: str
    keys: tuple[KeyInfo, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "key_id": self.key_id, "signature": self.signature,
                "time": self.time, "place": self.place}


def publish_head(session: Session, signer: SigningKey, place: HeadPlace) -> dict[str, Any]:
    """Publish the chain head (at ``place``: register | disclosure_report) and
    return the document that goes out with the publication: the signed head, the
    signing key pinned by fingerprint and the key history. A publication is
    itself a record (``audit.head_publish``), and the head published is that
    record, so publishing again with nothing new in between writes nothing."""
    head = _locked_head(session)
    last = session.execute(select(PublishedHead).order_by(PublishedHead.id.desc()).limit(1)).scalar_one_or_none()
    if last is None or last.seq != head.seq or last.hash != head.hash or last.place != place:
        append(session, signer, SYSTEM, HEAD_PUBLISH, "audit_head", place, {"place": place})
        kid = head.key_id or signer.key_id()
        last = PublishedHead(seq=head.seq, hash=head.hash, key_id=kid,
                             signature=head.signature or signer.sign(signing_input(head.seq, head.hash, kid)),
                             time=_now(), place=place)
        session.add(last)
        session.flush()
    keys = key_history(session)
    current = next((k for k in keys if k.key_id == last.key_id), None) or KeyInfo.of_public(signer.public)
    return {"head": PublishedHeadInfo(last.seq, last.hash, last.key_id, last.signature, last.time, place).to_dict(),
            "signing_key": {"key_id": current.key_id, "fingerprint": current.fingerprint,
                            "public_key_pem": current.public_key_pem, "algorithm": "Ed25519"},
            "key_history": [k.to_dict() for k in keys]}


def published_from_document(doc: Any) -> PublishedHeadInfo:
    """The published head in a saved register or disclosure report (its
    ``audit`` section, or that section itself)."""
    try:
        section = doc.get("audit", doc)
        h = section["head"]
        keys = tuple(KeyInfo.from_dict(k) for k in section["key_history"])
        return PublishedHeadInfo(int(h["seq"]), str(h["hash"]), str(h["key_id"]), str(h["signature"]),
                                 str(h.get("time", "")), str(h.get("place", "published")), keys)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SandboxError("the file holds no published audit head (expected the JSON of a transparency register "
                           "or disclosure report, with an 'audit' section)", code="invalid_published_head") from None


def stored_published_heads(session: Session) -> list[PublishedHeadInfo]:
    return [PublishedHeadInfo(p.seq, p.hash, p.key_id, p.signature, p.time, p.place)
            for p in session.execute(select(PublishedHead).order_by(PublishedHead.id)).scalars()]


# --- verification -------------------------------------------------------------------

@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str = ""
    problems: tuple[str, ...] = ()
    published_heads: int = 0
    keys: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "problems": list(self.problems), "published_heads": self.published_heads, "keys": list(self.keys)}


def verify_records(records: Iterable[Any], keys: Ed25519PublicKey | Sequence[KeyInfo], head: Any | None,
                   *, published: Sequence[PublishedHeadInfo] = (), disk_key_id: str | None = None) -> ChainReport:
    """Verify records in seq order against the signing-key history ``keys``
    (or one public key, for a chain of one key), the head row, published heads
    and the id of the key on disk. Reports every problem found; the walk of the
    chain stops at its first bad record."""
    history = [KeyInfo.of_public(keys)] if isinstance(keys, Ed25519PublicKey) else list(keys)
    by_id = {k.key_id: k for k in history}
    public_of = {k.key_id: k.public for k in history}
    problems: list[tuple[int | None, str]] = []
    wanted = {p.seq for p in published}
    seen_hashes: dict[int, str] = {}
    expected_key = history[0].key_id if history else None
    derived: list[tuple[str, str, int]] = [(history[0].key_id, history[0].fingerprint, history[0].from_seq)] \
        if history else []
    prev = GENESIS
    expected_seq = 1
    count = 0
    seen_current = False

    def bad(seq: int | None, text: str) -> None:
        problems.append((seq, text))

    for rec in records:
        count += 1
        if rec.seq != expected_seq:
            bad(min(rec.seq, expected_seq), f"record {expected_seq} is missing or out of order (found {rec.seq})")
            break
        if rec.prev_hash != prev:
            bad(rec.seq, "previous-hash link broken (a record before it was changed, removed or reordered)")
            break
        fmt = getattr(rec, "format", FORMAT)
        if fmt not in (1, FORMAT) or (fmt == 1 and (rec.on_behalf_of is not None or seen_current
                                                    or getattr(rec, "key_id", None) is not None)):
            bad(rec.seq, "record format is not valid at this place in the chain")
            break
        seen_current = seen_current or fmt == FORMAT
        if digest(rec.payload) != rec.payload_digest:
            bad(rec.seq, "payload does not match its digest")
            break
        h = record_hash(rec.seq, rec.time, rec.actor, rec.role, rec.action, rec.object_type,
                        rec.object_id, rec.payload_digest, rec.prev_hash, rec.on_behalf_of, format=fmt)
        if h != rec.hash:
            bad(rec.seq, "record fields do not match its hash")
            break
        if fmt == 1:
            pub_key = public_of.get(history[0].key_id) if history else None
            data = rec.hash.encode("ascii")
        else:
            if rec.key_id != expected_key:
                bad(rec.seq, f"record is signed with key {rec.key_id}, but key {expected_key} is in force and no "
                             "rotation to it was recorded (the signing key was replaced)")
                break
            pub_key = public_of.get(rec.key_id)
            data = signing_input(rec.seq, rec.hash, rec.key_id)
        if pub_key is None or not verify_signature(pub_key, rec.signature, data):
            bad(rec.seq, "signature is not valid for the instance key" if fmt == 1 else
                f"signature is not valid for key {rec.key_id}")
            break
        if fmt == FORMAT and rec.action == KEY_ROTATE:
            p = rec.payload if isinstance(rec.payload, dict) else {}
            expected_key = str(p.get("new_key_id"))
            derived.append((expected_key, str(p.get("new_fingerprint")), rec.seq + 1))
        if rec.seq in wanted:
            seen_hashes[rec.seq] = rec.hash
        prev = rec.hash
        expected_seq += 1
    chain_ok = not problems
    last = expected_seq - 1

    if chain_ok and head is not None:
        if head.seq != last or head.hash != prev:
            bad(min(head.seq, last) + 1 if head.seq != last else last,
                "the chain's end does not match the recorded head (records removed at the end?)")
        elif getattr(head, "key_id", None) is not None:
            if head.key_id != expected_key:
                bad(None, f"the head names key {head.key_id}, but the chain puts key {expected_key} in force")
            elif head.signature is None or head.key_id not in public_of or not verify_signature(
                    public_of[head.key_id], head.signature, signing_input(head.seq, head.hash, head.key_id)):
                bad(last, "the head's signature is not valid")
    for kid, pub_key in public_of.items():
        fp = fingerprint(pub_key)
        if fp != by_id[kid].fingerprint or fp[:16] != kid:
            bad(None, f"signing key {kid} in the history: its public key does not have the fingerprint listed")
    if chain_ok and history:
        listed = [(k.key_id, k.fingerprint, k.from_seq) for k in history]
        if listed != derived:
            bad(None, "the signing-key history does not follow from the key.rotate records of the chain "
                      f"(history {[k for k, _, _ in listed]}, chain {[k for k, _, _ in derived]})")
    if disk_key_id is not None and expected_key is not None and disk_key_id != expected_key:
        bad(None, f"the signing key file holds key {disk_key_id}, but key {expected_key} is in force and no rotation "
                  "was recorded (the key file was replaced)")

    for pub in published:
        where = f"the head published in the {pub.place} at {pub.time or 'an unknown time'} (record {pub.seq})"
        pinned = list(pub.keys) if pub.keys is not None else history
        pinned_by_id = {k.key_id: k for k in pinned}
        key = pinned_by_id.get(pub.key_id)
        if key is not None and fingerprint(key.public) != key.fingerprint:
            bad(None, f"{where} pins key {key.key_id} with a public key that does not have its fingerprint")
            key = None
        if key is None:
            bad(None, f"{where} is signed with key {pub.key_id}, which is not in the signing-key history "
                      "(the chain was re-signed under another key?)")
        elif not verify_signature(key.public, pub.signature, signing_input(pub.seq, pub.hash, pub.key_id)):
            bad(None, f"{where} does not carry a valid signature of key {pub.key_id}")
        if pub.keys is not None:
            for k in pub.keys:
                live = by_id.get(k.key_id)
                if live is None or live.fingerprint != k.fingerprint or live.from_seq != k.from_seq:
                    bad(None, f"{where} pins signing key {k.key_id} (fingerprint {k.fingerprint}), which the "
                              "instance's key history does not hold as published (the key was swapped or the "
                              "chain re-signed)")
            published_ids = {k.key_id for k in pub.keys}
            for k in history:
                if k.key_id not in published_ids and k.from_seq <= pub.seq:
                    bad(None, f"signing key {k.key_id} signed records up to {pub.seq} but is not in {where}")
        if not chain_ok:
            continue
        if pub.seq > last:
            bad(last + 1, f"{where} is beyond the chain's end at record {last}: records were removed from the end")
        elif seen_hashes.get(pub.seq) != pub.hash:
            bad(pub.seq, f"record {pub.seq} differs from {where}")

    if problems:
        seqs = [s for s, _ in problems if s is not None]
        first = min(seqs) if seqs else None
        return ChainReport(False, count, first, problems[0][1], tuple(t for _, t in problems), len(published),
                           tuple(k.key_id for k in history))
    return ChainReport(True, count, None, "", (), len(published), tuple(k.key_id for k in history))


def verify_chain(session: Session, public: Ed25519PublicKey, *,
                 published: Sequence[PublishedHeadInfo] = ()) -> ChainReport:
    """Verify the stored chain: records, head, key history, every head published
    by this instance and ``published`` (heads from saved registers or reports).
    ``public`` is the key the instance signs with now (from its key file)."""
    history = key_history(session)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    heads = stored_published_heads(session) + list(published)
    cols = [getattr(AuditRecord, f) for f in EXPORT_FIELDS]   # plain rows: nothing is loaded into the session
    result = session.execute(select(*cols).order_by(AuditRecord.seq).execution_options(yield_per=2000))
    try:
        return verify_records(result, history or public, head, published=heads, disk_key_id=key_id(public))
    finally:
        result.close()


# --- export ------------------------------------------------------------------------

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
