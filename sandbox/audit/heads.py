"""Published chain heads: a signed (seq, hash) that goes out with the transparency
register and each disclosure report, and is kept to check the live chain against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import SandboxError
from sandbox.keys import SigningKey
from sandbox.persistence.models import PublishedHead
from sandbox.vocabulary import HeadPlace

from sandbox.audit.chain import HEAD_PUBLISH, SYSTEM, _locked_head, _now, append, signing_input
from sandbox.audit.signing_keys import KeyInfo, key_history

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
