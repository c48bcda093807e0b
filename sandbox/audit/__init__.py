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

The package: ``chain`` (append), ``signing_keys`` (history, rotation), ``heads``
(publication), ``verify``, ``export``, ``view`` (reading the trail, records of
reads) and ``reconcile`` (the store checked against the chain). The names below
are the ones the rest of dp-sandbox uses.
"""

from sandbox.audit.chain import (FORMAT, GENESIS, HEAD_PUBLISH, KEY_ROTATE, SYSTEM, Actor, append, canonical_json,
                                 digest, record_hash, signing_input)
from sandbox.audit.export import EXPORT_FIELDS, export_chain, keys_file_for
from sandbox.audit.heads import PublishedHeadInfo, publish_head, published_from_document, stored_published_heads
from sandbox.audit.signing_keys import (KeyInfo, instance_public_keys, key_history, rotate_signing_key,
                                        signing_key_document)
from sandbox.audit.verify import ChainReport, verify_chain, verify_records

__all__ = ["FORMAT", "GENESIS", "HEAD_PUBLISH", "KEY_ROTATE", "SYSTEM", "EXPORT_FIELDS", "Actor", "ChainReport",
           "KeyInfo", "PublishedHeadInfo", "append", "canonical_json", "digest", "export_chain",
           "instance_public_keys", "key_history", "keys_file_for", "publish_head", "published_from_document",
           "record_hash", "rotate_signing_key", "signing_input", "signing_key_document", "stored_published_heads",
           "verify_chain", "verify_records"]
