"""The signing-key history: each key with the records it signed, the document
``keys show`` gives, and rotating to a new key (a ``key.rotate`` record signed
by the outgoing key)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.keys import SigningKey, fingerprint, key_id, load_public_key, private_key_pem, public_key_pem
from sandbox.persistence.models import SigningKeyEntry

from sandbox.audit.chain import KEY_ROTATE, Actor, _key_in_force, _locked_head, _now, append, signing_input

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
