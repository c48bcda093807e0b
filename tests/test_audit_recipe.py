"""The third-party recipe of docs/audit.md, implemented with the standard library
and ``cryptography`` alone (``verify_export`` imports nothing from dp-sandbox),
verifies an exported chain of over 1,000 records — with a key rotation, records
acting on someone's behalf, non-ASCII text and floats — on SQLite and PostgreSQL,
and fails on tampered copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def verify_export(jsonl: Path, keys_json: Path, published: dict | None = None) -> tuple[bool, str]:
    """docs/audit.md, "The recipe", step by step. Returns (ok, reason)."""
    import base64
    import hashlib

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def canonical(value) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def sha256_hex(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def signature_ok(key: Ed25519PublicKey, sig_b64: str, data: bytes) -> bool:
        try:
            key.verify(base64.b64decode(sig_b64, validate=True), data)
            return True
        except (InvalidSignature, ValueError):
            return False

    keys_doc = json.loads(keys_json.read_text(encoding="utf-8"))
    keys: dict[str, Ed25519PublicKey] = {}
    for k in keys_doc["keys"]:
        pub = serialization.load_pem_public_key(k["public_key_pem"].encode("ascii"))
        assert isinstance(pub, Ed25519PublicKey)
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if sha256_hex(raw) != k["fingerprint"] or k["fingerprint"][:16] != k["key_id"]:
            return False, f"key {k['key_id']}: fingerprint does not match its public key"
        keys[k["key_id"]] = pub
    first_key = keys_doc["keys"][0]["key_id"]
    since = int(keys_doc.get("since") or 0)
    in_force = next(k["key_id"] for k in keys_doc["keys"]
                    if k["from_seq"] <= since + 1 and (k["until_seq"] is None or since + 1 <= k["until_seq"]))
    prev_hash = None if since else "0" * 64
    expected_seq = since + 1
    hashes: dict[int, str] = {}
    text = jsonl.read_bytes().decode("utf-8")
    for line in text.split("\n"):          # LF only
        if not line:
            continue
        rec = json.loads(line)
        if rec["seq"] != expected_seq:
            return False, f"record {expected_seq} missing (found {rec['seq']})"
        if prev_hash is not None and rec["prev_hash"] != prev_hash:
            return False, f"record {rec['seq']}: prev_hash link broken"
        if sha256_hex(canonical(rec["payload"])) != rec["payload_digest"]:
            return False, f"record {rec['seq']}: payload_digest"
        fields = {name: rec[name] for name in ("seq", "time", "actor", "role", "action", "object_type",
                                                "object_id", "payload_digest", "prev_hash")}
        if rec["format"] == 2:
            fields["on_behalf_of"] = rec["on_behalf_of"]
        if sha256_hex(canonical(fields)) != rec["hash"]:
            return False, f"record {rec['seq']}: hash"
        if rec["format"] == 2:
            if rec["key_id"] != in_force:
                return False, f"record {rec['seq']}: signed by {rec['key_id']}, {in_force} is in force"
            data = canonical({"seq": rec["seq"], "hash": rec["hash"], "key_id": rec["key_id"]})
            key = keys[rec["key_id"]]
        else:
            data = rec["hash"].encode("ascii")
            key = keys[first_key]
        if not signature_ok(key, rec["signature"], data):
            return False, f"record {rec['seq']}: signature"
        if rec["format"] == 2 and rec["action"] == "key.rotate":
            in_force = rec["payload"]["new_key_id"]
        hashes[rec["seq"]] = rec["hash"]
        prev_hash = rec["hash"]
        expected_seq += 1
    if published is not None:
        h = published["head"]
        pinned = {k["key_id"]: k["fingerprint"] for k in published["key_history"]}
        if any(pinned.get(kid) != fp for kid, fp in ((k["key_id"], k["fingerprint"]) for k in keys_doc["keys"])
               if kid in pinned) or h["key_id"] not in pinned:
            return False, "the keys file does not hold the keys the register pinned"
        data = canonical({"seq": h["seq"], "hash": h["hash"], "key_id": h["key_id"]})
        if not signature_ok(keys[h["key_id"]], h["signature"], data):
            return False, "published head: signature"
        if h["seq"] not in hashes:
            return False, f"published head {h['seq']} is beyond the export's end: records were removed"
        if hashes[h["seq"]] != h["hash"]:
            return False, f"record {h['seq']} differs from the published head"
    return True, f"{expected_seq - since - 1} records"


# --- building a real chain with dp-sandbox and exporting it ------------------------------

PAYLOADS = [
    lambda i: {"i": i, "epsilon": 0.1 * (i % 7), "delta": 1e-06, "big": 1e16 * i, "tiny": 2.5e-07},
    lambda i: {"name": "数据局 — «Zürich»", "note": "line\nbreak\ttab \u2028 sep \x7f \x01", "n": -i},
    lambda i: {"nested": {"b": [1, 2.0, None, True], "a": {"z": "", "é": 0.0001}}, "sql": "SELECT 1"},
    lambda i: {},
]


def _build(inst, n: int) -> dict:
    from sandbox import audit
    from sandbox.audit import Actor
    from sandbox.vocabulary import HeadPlace

    actors = [Actor("alice", "admin"), Actor("rita", "reviewer", on_behalf_of="olga"), audit.SYSTEM]
    written = 0
    published = None
    while written < n:
        with inst.store.transaction() as s:
            for _ in range(100):
                audit.append(s, inst.signer, actors[written % 3], "test.event", "thing", written,
                             PAYLOADS[written % len(PAYLOADS)](written))
                written += 1
        if written == 500:
            audit.rotate_signing_key(inst, actors[0])
        if written == 800:
            with inst.store.transaction() as s:
                published = audit.publish_head(s, inst.signer, HeadPlace.REGISTER)
    assert published is not None
    return published


def _export(inst, out: Path, since: int = 0) -> Path:
    from sandbox.audit import export_chain

    with inst.store.read() as s:
        export_chain(s, out, since=since)
    return Path(str(out) + ".keys.json")


@pytest.mark.slow        # an end-to-end run of several seconds: CI runs it in the slow tier
def test_recipe_verifies_an_exported_chain_and_fails_on_tampered_copies(instance, tmp_path):
    published = json.loads(json.dumps(_build(instance, 1_000)))
    out = tmp_path / "chain.jsonl"
    keys = _export(instance, out)
    lines = out.read_bytes().decode("utf-8").split("\n")[:-1]
    assert len(lines) >= 1_000 + 2   # the rotation and publication records
    ok, reason = verify_export(out, keys, published)
    assert ok, reason
    assert len(json.loads(keys.read_text())["keys"]) == 2

    def tampered(name: str, new_lines: list[str]) -> Path:
        p = tmp_path / name
        p.write_bytes(("\n".join(new_lines) + "\n").encode("utf-8"))
        return p

    # a payload value edited
    edited = list(lines)
    rec = json.loads(edited[41])
    rec["payload"]["n"] = 7
    edited[41] = json.dumps(rec, ensure_ascii=False)
    assert verify_export(tampered("edited.jsonl", edited), keys) == (False, "record 42: payload_digest")

    # the digest and hash recomputed too: the signature fails
    rec["payload_digest"] = _sha(rec["payload"])
    fields = {k: rec[k] for k in ("seq", "time", "actor", "role", "action", "object_type", "object_id",
                                  "payload_digest", "prev_hash", "on_behalf_of")}
    rec["hash"] = _sha(fields)
    edited[41] = json.dumps(rec, ensure_ascii=False)
    ok, reason = verify_export(tampered("rehashed.jsonl", edited), keys)
    assert not ok and reason in ("record 42: signature", "record 43: prev_hash link broken")

    # the tail cut after the published head was taken: only the head catches it
    head_seq = published["head"]["seq"]
    cut = lines[:head_seq - 10]
    assert verify_export(tampered("cut.jsonl", cut), keys)[0]
    ok, reason = verify_export(tampered("cut.jsonl", cut), keys, published)
    assert not ok and "beyond the export's end" in reason

    # a record removed in the middle
    assert not verify_export(tampered("gap.jsonl", lines[:10] + lines[11:]), keys)[0]


def test_recipe_verifies_an_export_since_a_record(instance, tmp_path):
    _build(instance, 1_000)
    out = tmp_path / "tail.jsonl"
    keys = _export(instance, out, since=600)
    ok, reason = verify_export(out, keys)
    assert ok, reason
    assert out.read_bytes().decode().split("\n")[0].startswith('{"action"')


def _sha(value) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()
