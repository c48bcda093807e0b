"""Verifying the chain: every digest, hash, link and signature, the signing-key
history, the head, the key on disk and every published head."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.keys import fingerprint, key_id, verify_signature
from sandbox.persistence.models import AuditHead, AuditRecord

from sandbox.audit.chain import FORMAT, GENESIS, KEY_ROTATE, digest, record_hash, signing_input
from sandbox.audit.export import EXPORT_FIELDS
from sandbox.audit.heads import PublishedHeadInfo, stored_published_heads
from sandbox.audit.signing_keys import KeyInfo, key_history

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
