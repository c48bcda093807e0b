"""The audit chain catches an edited, deleted, inserted and reordered record,
on SQLite and PostgreSQL."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from sqlalchemy import delete, select, update

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sandbox import audit
from sandbox.keys import SigningKey
from sandbox.audit import Actor, verify_chain, verify_records
from sandbox.persistence.models import AuditHead, AuditRecord

ALICE = Actor("alice", "admin")


def _fill(inst, n: int = 6) -> None:
    for i in range(n):
        with inst.store.transaction() as s:
            audit.append(s, inst.signer, ALICE, "test.event", "thing", i, {"i": i, "note": f"event {i}"})


def _verify(inst):
    with inst.store.read() as s:
        return verify_chain(s, inst.signer.public)


def test_intact_chain_verifies(instance):
    _fill(instance)
    report = _verify(instance)
    assert report.ok and report.records == 6


def test_on_behalf_of_is_recorded_and_hashed(instance):
    with instance.store.transaction() as s:
        audit.append(s, instance.signer, Actor("rita", "reviewer", on_behalf_of="olga"), "test.event", "thing", 1)
        audit.append(s, instance.signer, ALICE, "test.event", "thing", 2)
    with instance.store.read() as s:
        first, second = s.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars().all()
    assert (first.actor, first.on_behalf_of, second.on_behalf_of) == ("rita", "olga", None)
    assert _verify(instance).ok
    with instance.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 1).values(on_behalf_of=None))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 1


def test_records_written_before_on_behalf_of_still_verify(instance):
    """A format-1 record (hashed without on_behalf_of) keeps verifying after the
    upgrade, and it cannot be passed off as acting for someone."""
    with instance.store.transaction() as s:
        pd = audit.digest({})
        h = audit.record_hash(1, "2026-01-01T00:00:00+00:00", "alice", "admin", "test.event", "thing", "1", pd,
                              audit.GENESIS, format=1)
        s.add(AuditRecord(seq=1, format=1, time="2026-01-01T00:00:00+00:00", actor="alice", role="admin",
                          action="test.event", object_type="thing", object_id="1", payload={}, payload_digest=pd,
                          prev_hash=audit.GENESIS, hash=h, signature=instance.signer.sign(h.encode())))
        s.add(AuditHead(id=1, seq=1, hash=h))
    _fill(instance, 2)
    assert _verify(instance).ok
    with instance.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 1).values(on_behalf_of="olga"))
    assert _verify(instance).first_bad_seq == 1


def test_payload_digest_is_of_the_payload_as_stored(instance):
    """Integer keys become text and sort as text, as a verifier reading the store
    or an export sees them."""
    with instance.store.transaction() as s:
        audit.append(s, instance.signer, ALICE, "test.event", "thing", 1, {"by_year": {9: 1, 10: 2}, "t": (1, 2)})
    assert _verify(instance).ok


def test_edited_payload_is_found(instance):
    _fill(instance)
    with instance.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(payload={"i": 99, "note": "event 3"}))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 3


def test_edited_field_with_recomputed_digest_is_found(instance):
    _fill(instance)
    with instance.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(actor="mallory"))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 4


def test_deleted_record_is_found(instance):
    _fill(instance)
    with instance.store.transaction() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 2


def test_deleted_last_record_is_found(instance):
    _fill(instance)
    with instance.store.transaction() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 6))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 6


def test_inserted_record_is_found(instance):
    """A forged record re-linked into the chain fails its signature even when
    its hashes are recomputed."""
    _fill(instance)
    with instance.store.transaction() as s:
        rows = s.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars().all()
        s.expunge_all()
        # shift records 4.. up by one and forge a record 4 that links to record 3
        for rec in reversed(rows[3:]):
            s.execute(update(AuditRecord).where(AuditRecord.seq == rec.seq).values(seq=rec.seq + 1))
        prev = rows[2].hash
        pd = audit.digest({"forged": True})
        h = audit.record_hash(4, rows[2].time, "mallory", "admin", "test.event", "thing", "x", pd, prev)
        s.add(AuditRecord(seq=4, time=rows[2].time, actor="mallory", role="admin", action="test.event",
                          object_type="thing", object_id="x", payload={"forged": True}, payload_digest=pd,
                          prev_hash=prev, hash=h, signature=rows[2].signature))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 4


def test_reordered_records_are_found(instance):
    _fill(instance)
    with instance.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(seq=-2))
        s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(seq=2))
        s.execute(update(AuditRecord).where(AuditRecord.seq == -2).values(seq=3))
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 2


def test_record_signed_by_another_key_is_found(instance, make_instance):
    other = make_instance(name="other")
    _fill(instance, 3)
    with instance.store.transaction() as s:
        rec = s.get(AuditRecord, 3)
        rec.signature = other.signer.sign(rec.hash.encode())
    assert _verify(instance).first_bad_seq == 3


_SIGNER = SigningKey(Ed25519PrivateKey.generate())


class _Rec:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 8), data=st.data())
def test_any_single_edit_is_found(n, data):
    """Property: changing any field of any record of a chain breaks verification
    at that record."""
    inst = _Rec(signer=_SIGNER)
    recs = []
    prev = audit.GENESIS
    for i in range(1, n + 1):
        payload = {"i": i}
        pd = audit.digest(payload)
        h = audit.record_hash(i, "2026-01-01T00:00:00", "a", "admin", "x", "t", str(i), pd, prev)
        recs.append(_Rec(seq=i, time="2026-01-01T00:00:00", actor="a", role="admin", on_behalf_of=None,
                         action="x", object_type="t",
                         object_id=str(i), payload=payload, payload_digest=pd, prev_hash=prev, hash=h,
                         format=audit.FORMAT, key_id=inst.signer.key_id(),
                         signature=inst.signer.sign(audit.signing_input(i, h, inst.signer.key_id()))))
        prev = h
    assert verify_records(recs, inst.signer.public, None).ok
    victim = data.draw(st.integers(0, n - 1))
    field = data.draw(st.sampled_from(["time", "actor", "role", "on_behalf_of", "action", "object_type",
                                       "object_id", "payload", "key_id"]))
    value = {"i": -1} if field == "payload" else (getattr(recs[victim], field) or "") + "!"
    setattr(recs[victim], field, value)
    report = verify_records(recs, inst.signer.public, None)
    assert not report.ok and report.first_bad_seq == victim + 1
