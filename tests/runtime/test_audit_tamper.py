"""Tamper evidence beyond single records, on SQLite and PostgreSQL: a cut tail
with the head reset, a signing key swapped on disk, a chain re-signed under a
new key, each caught against the heads the instance published (and against a
saved register with ``--published``); a recorded key rotation keeps old records
and products verifying; the CLI commands that go with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update

from queries.errors import SandboxError
from sandbox import audit
from sandbox.audit import Actor, published_from_document, verify_chain
from sandbox.instance import Instance
from sandbox.keys import SigningKey, fingerprint, key_id, private_key_pem, public_key_pem
from sandbox.persistence.models import AuditHead, AuditRecord, PublishedHead, SigningKeyEntry
from sandbox.vocabulary import HeadPlace

ALICE = Actor("alice", "admin")


def _fill(inst, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with inst.store.transaction() as s:
            audit.append(s, inst.signer, ALICE, "test.event", "thing", i, {"i": i, "eps": 0.1 * i})


def _verify(inst, published=()):
    with inst.store.read() as s:
        return verify_chain(s, inst.signer.public, published=published)


def _publish(inst, place: HeadPlace = HeadPlace.REGISTER) -> dict:
    with inst.store.transaction() as s:
        return {"audit": audit.publish_head(s, inst.signer, place)}


def _cut_tail(inst, keep: int) -> None:
    """Delete the records after ``keep`` and reset the head to record ``keep``,
    as someone with write access to the store would."""
    with inst.store.transaction() as s:
        rec = s.get(AuditRecord, keep)
        s.execute(delete(AuditRecord).where(AuditRecord.seq > keep))
        s.execute(update(AuditHead).values(seq=keep, hash=rec.hash, signature=rec.signature))


def _reopen(inst) -> Instance:
    return Instance.open(inst.settings)


def test_publishing_twice_with_nothing_new_writes_nothing(instance):
    _fill(instance, 3)
    first = _publish(instance)
    again = _publish(instance)
    assert first["audit"]["head"] == again["audit"]["head"]
    assert first["audit"]["head"]["seq"] == 4   # the publication is a record, and the head published
    assert first["audit"]["signing_key"]["fingerprint"] == instance.signer.fingerprint()
    assert [k["key_id"] for k in first["audit"]["key_history"]] == [instance.signer.key_id()]
    report = _verify(instance)
    assert report.ok and report.published_heads == 1


def test_head_row_is_signed(instance):
    _fill(instance, 3)
    with instance.store.transaction() as s:
        s.execute(update(AuditHead).values(signature=instance.signer.sign(b"something else")))
    report = _verify(instance)
    assert not report.ok and "head's signature" in report.reason


def test_cut_tail_with_head_reset_is_found_against_published_heads(instance, tmp_path):
    _fill(instance, 5)
    saved = _publish(instance)
    _fill(instance, 3, start=5)
    assert _verify(instance).ok
    _cut_tail(instance, 3)
    report = _verify(instance)
    assert not report.ok and report.first_bad_seq == 4
    assert "beyond the chain's end at record 3" in report.reason

    # the store's record of publications removed as well: the saved register still catches it
    with instance.store.transaction() as s:
        s.execute(delete(PublishedHead))
    assert _verify(instance).ok
    report = _verify(instance, [published_from_document(saved)])
    assert not report.ok and report.first_bad_seq == 4 and "records were removed from the end" in report.reason


def test_a_changed_record_before_a_published_head_is_named(instance):
    _fill(instance, 4)
    saved = _publish(instance)
    with instance.store.transaction() as s:
        s.execute(delete(PublishedHead))
        # rebuild the whole chain from record 2 on, as if re-written with the key
        rows = s.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars().all()
        prev = rows[0].hash
        for r in rows[1:]:
            r.actor = "mallory"
            r.prev_hash = prev
            r.hash = audit.record_hash(r.seq, r.time, r.actor, r.role, r.action, r.object_type, r.object_id,
                                       r.payload_digest, prev, r.on_behalf_of)
            r.signature = instance.signer.sign(audit.signing_input(r.seq, r.hash, r.key_id))
            prev = r.hash
        s.execute(update(AuditHead).values(hash=prev, signature=rows[-1].signature))
    assert _verify(instance).ok   # the key holder can rewrite the live chain...
    report = _verify(instance, [published_from_document(saved)])
    assert not report.ok and report.first_bad_seq == 5   # ...but not what was published


def test_key_swapped_on_disk_is_refused_and_reported(instance):
    _fill(instance, 3)
    path = instance.settings.signing_key_path
    path.write_bytes(private_key_pem(Ed25519PrivateKey.generate()))
    swapped = _reopen(instance)
    try:
        with pytest.raises(SandboxError) as err:
            _fill(swapped, 1)
        assert err.value.code == "signing_key_not_in_force"
        report = _verify(swapped)
        assert not report.ok and "key file was replaced" in report.reason
        assert report.first_bad_seq is None

        # the head's key id edited to the swapped key too: its records are named
        with swapped.store.transaction() as s:
            s.execute(update(AuditHead).values(key_id=swapped.signer.key_id()))
        _fill(swapped, 2)
        report = _verify(swapped)
        assert not report.ok and report.first_bad_seq == 4
        assert f"signed with key {swapped.signer.key_id()}" in report.reason
    finally:
        swapped.close()


def test_chain_re_signed_under_a_new_key_is_found(instance):
    _fill(instance, 4)
    saved = _publish(instance)
    _fill(instance, 2, start=4)
    old_id = instance.signer.key_id()
    new = SigningKey(Ed25519PrivateKey.generate())
    kid = new.key_id()
    with instance.store.transaction() as s:
        for r in s.execute(select(AuditRecord)).scalars():
            r.key_id = kid
            r.signature = new.sign(audit.signing_input(r.seq, r.hash, kid))
        head = s.get(AuditHead, 1)
        head.key_id = kid
        head.signature = new.sign(audit.signing_input(head.seq, head.hash, kid))
        s.execute(delete(SigningKeyEntry))
        s.add(SigningKeyEntry(key_id=kid, fingerprint=new.fingerprint(), public_key_pem=new.public_pem(),
                              from_seq=1, created_at="2026-01-01T00:00:00+00:00"))
    instance.settings.signing_key_path.write_bytes(private_key_pem(new.private))
    resigned = _reopen(instance)
    try:
        report = _verify(resigned)
        assert not report.ok and f"signed with key {old_id}, which is not in the signing-key history" in report.reason
        with resigned.store.transaction() as s:
            s.execute(delete(PublishedHead))
        assert _verify(resigned).ok   # everything in the store now agrees...
        report = _verify(resigned, [published_from_document(saved)])
        assert not report.ok   # ...but the published register pinned the old key
        assert any(f"pins signing key {old_id}" in p for p in report.problems)
    finally:
        resigned.close()


def test_rotation_is_recorded_and_old_records_keep_verifying(instance):
    _fill(instance, 3)
    saved = _publish(instance)
    old_id, old_fp = instance.signer.key_id(), instance.signer.fingerprint()
    other = _reopen(instance)   # another process, still holding the old key
    try:
        result = audit.rotate_signing_key(instance, ALICE)
        assert result["old_key_id"] == old_id and instance.signer.key_id() == result["new_key_id"] != old_id
        _fill(other, 2, start=3)   # reloads the rotated key instead of signing with the old one
        assert other.signer.key_id() == result["new_key_id"]
    finally:
        other.close()
    _fill(instance, 2, start=5)
    with instance.store.read() as s:
        rec = s.get(AuditRecord, result["seq"])
        after = s.get(AuditRecord, result["seq"] + 1)
        history = audit.key_history(s)
    assert rec.action == "key.rotate" and rec.key_id == old_id
    assert rec.payload["old_fingerprint"] == old_fp and rec.payload["new_key_id"] == result["new_key_id"]
    assert after.key_id == result["new_key_id"]
    assert [(k.key_id, k.from_seq, k.until_seq) for k in history] == [
        (old_id, 1, result["seq"]), (result["new_key_id"], result["seq"] + 1, None)]
    report = _verify(instance, [published_from_document(saved)])
    assert report.ok, report.problems
    assert report.keys == (old_id, result["new_key_id"])
    assert not instance.settings.signing_key_path.with_name("signing.pem.new").exists()
    new_register = _publish(instance)
    assert [k["key_id"] for k in new_register["audit"]["key_history"]] == [old_id, result["new_key_id"]]
    assert _verify(instance, [published_from_document(new_register)]).ok


def test_rotation_history_that_does_not_follow_the_chain_is_reported(instance):
    _fill(instance, 2)
    audit.rotate_signing_key(instance, ALICE)
    _fill(instance, 1)
    with instance.store.transaction() as s:
        s.execute(update(SigningKeyEntry).where(SigningKeyEntry.until_seq.is_(None)).values(from_seq=2))
    report = _verify(instance)
    assert not report.ok and "does not follow from the key.rotate records" in report.reason


def test_products_signed_before_a_rotation_verify_with_the_key_history(instance, tmp_path):
    from products.manifest import sign_package, verify_path

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "table.csv").write_text("a,b\n1,2\n")
    sign_package(pkg, {"format": "test", "kind": "product"}, instance.signer)
    audit.rotate_signing_key(instance, ALICE)
    assert not verify_path(pkg, instance.signer.public_pem()).ok
    report = verify_path(pkg, audit.instance_public_keys(instance))
    assert report.ok, report.problems
    # a key file holding the whole history works too
    assert verify_path(pkg, "\n".join(audit.instance_public_keys(instance))).ok


def test_records_from_before_key_ids_verify_with_the_first_key(instance):
    """An upgraded instance: format-1 records signed over their hash, then the
    first new record enters the key in the history."""
    kid = instance.signer.key_id()
    with instance.store.transaction() as s:
        prev = audit.GENESIS
        for i in (1, 2):
            pd = audit.digest({"i": i})
            h = audit.record_hash(i, "2026-01-01T00:00:00+00:00", "alice", "admin", "old", "thing", str(i), pd,
                                  prev, format=1)
            s.add(AuditRecord(seq=i, format=1, time="2026-01-01T00:00:00+00:00", actor="alice", role="admin",
                              action="old", object_type="thing", object_id=str(i), payload={"i": i},
                              payload_digest=pd, prev_hash=prev, hash=h, signature=instance.signer.sign(h.encode())))
            prev = h
        s.add(AuditHead(id=1, seq=2, hash=prev))
    _fill(instance, 2)
    report = _verify(instance)
    assert report.ok and report.keys == (kid,)


# --- the CLI ------------------------------------------------------------------------

def _cli(inst, *args: str):
    from sandbox.cli.root import main

    env = {"DPS_HOME": str(inst.home), "DPS_DATABASE_URL": inst.settings.database_url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_verify_export_rotate_and_published(instance, tmp_path):
    _fill(instance, 4)
    saved = tmp_path / "register.json"
    saved.write_text(json.dumps(_publish(instance)))
    out = tmp_path / "chain.jsonl"
    res = _cli(instance, "audit", "export", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["key_id"] == instance.signer.key_id()
    keys_doc = json.loads(Path(str(out) + ".keys.json").read_text())
    assert keys_doc["keys"][0]["fingerprint"] == instance.signer.fingerprint()
    res = _cli(instance, "audit", "export", "--out", str(tmp_path / "tail.jsonl"), "--since", "3")
    tail = (tmp_path / "tail.jsonl").read_text().splitlines()
    assert res.exit_code == 0 and [json.loads(x)["seq"] for x in tail] == [4, 5]

    res = _cli(instance, "keys", "rotate-signing", "--json")
    assert res.exit_code == 0, res.output
    rotated = json.loads(res.output)
    res = _cli(instance, "keys", "show", "--json")
    shown = json.loads(res.output)
    assert shown["key_id"] == rotated["new_key_id"] and len(shown["history"]) == 2

    res = _cli(instance, "audit", "verify", "--published", str(saved))
    assert res.exit_code == 0, res.output
    assert "checked against 2 published head(s)" in res.output

    _cut_tail(instance, 2)
    with instance.store.transaction() as s:
        s.execute(delete(PublishedHead))
    res = _cli(instance, "audit", "verify", "--published", str(saved), "--json")
    assert res.exit_code == 1
    report = json.loads(res.output)
    assert report["first_bad_seq"] == 3 and any("removed from the end" in p for p in report["problems"])


def test_cli_published_file_that_is_no_register_is_a_clear_error(instance, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"licences": []}')
    res = _cli(instance, "audit", "verify", "--published", str(bad))
    assert res.exit_code == 1 and "no published audit head" in res.output
    res = _cli(instance, "audit", "export", "--out", str(tmp_path / "x.jsonl"), "--since", "-1")
    assert res.exit_code == 1 and not (tmp_path / "x.jsonl").exists()


def test_key_fingerprint_is_the_sha256_of_the_raw_key():
    import hashlib

    from cryptography.hazmat.primitives import serialization

    pub = Ed25519PrivateKey.generate().public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert fingerprint(pub) == hashlib.sha256(raw).hexdigest() and key_id(pub) == fingerprint(pub)[:16]
    assert public_key_pem(pub).startswith("-----BEGIN PUBLIC KEY-----")


def test_register_page_and_api_publish_the_head_and_pin_the_key(instance):
    from web.app import create_app

    _fill(instance, 2)
    audit.rotate_signing_key(instance, ALICE)
    client = create_app(instance, {"TESTING": True}).test_client()
    data = client.get("/api/v1/register").get_json()["data"]["audit"]
    assert data["signing_key"]["fingerprint"] == instance.signer.fingerprint()
    assert len(data["key_history"]) == 2 and data["head"]["key_id"] == instance.signer.key_id()
    assert _verify(instance, [published_from_document({"audit": data})]).ok
    page = client.get("/register").get_data(as_text=True)
    assert instance.signer.fingerprint() in page and data["head"]["hash"] in page
    assert client.get("/api/v1/keys").get_json()["data"]["history"][0]["until_seq"] == 3


def test_disclosure_report_publishes_the_head_and_a_cut_tail_shows_against_it(instance, tmp_path):
    from products.manifest import verify_path
    from products.register import disclosure_report

    _fill(instance, 4)
    report = disclosure_report(instance, 2026, out=tmp_path / "r2026")
    saved = json.loads((tmp_path / "r2026" / "report.json").read_text())
    assert saved["audit"]["head"]["place"] == HeadPlace.DISCLOSURE_REPORT and report.audit == saved["audit"]
    assert saved["audit"]["head"]["hash"] in (tmp_path / "r2026" / "report.html").read_text()
    assert verify_path(tmp_path / "r2026", instance.signer.public_pem()).ok   # the head is inside the signed package
    _fill(instance, 2, start=4)
    _cut_tail(instance, 4)
    with instance.store.transaction() as s:
        s.execute(delete(PublishedHead))
    res = _cli(instance, "audit", "verify", "--published", str(tmp_path / "r2026" / "report.json"), "--json")
    assert res.exit_code == 1 and json.loads(res.output)["first_bad_seq"] == 5


def test_a_public_key_swapped_in_the_history_is_found(instance):
    """After a rotation, someone with the store and a key of their own puts that
    key's PEM in the history under the new key's id and fingerprint, and re-signs
    the records after the rotation: the fingerprint the old key signed names the
    real key, so the PEM does not match it."""
    _fill(instance, 2)
    result = audit.rotate_signing_key(instance, ALICE)
    _fill(instance, 2, start=2)
    mallory = SigningKey(Ed25519PrivateKey.generate())
    with instance.store.transaction() as s:
        s.execute(update(SigningKeyEntry).where(SigningKeyEntry.key_id == result["new_key_id"])
                  .values(public_key_pem=mallory.public_pem()))
        for r in s.execute(select(AuditRecord).where(AuditRecord.seq > result["seq"])).scalars():
            r.signature = mallory.sign(audit.signing_input(r.seq, r.hash, r.key_id))
        head = s.get(AuditHead, 1)
        head.signature = mallory.sign(audit.signing_input(head.seq, head.hash, head.key_id))
    report = _verify(instance)
    assert not report.ok and any("does not have the fingerprint listed" in p for p in report.problems)
