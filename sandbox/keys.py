"""Instance keys: the Ed25519 signing key and the master key for encryption at rest.

``init`` creates them in ``<home>/keys`` (files mode 0600) unless settings point
at existing files. Signing and verifying use ``cryptography`` only.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from queries.errors import BadMasterKey, SandboxError

MASTER_KEY_BYTES = 32


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def create_signing_key(path: Path) -> None:
    _write_secret(path, private_key_pem(Ed25519PrivateKey.generate()))


def create_master_key(path: Path) -> None:
    _write_secret(path, secrets.token_bytes(MASTER_KEY_BYTES))


class SigningKey:
    """The instance's Ed25519 signing key. ``path`` is the file it was loaded
    from: after a rotation by another process, ``reload`` picks up the new key."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self.private = private
        self.path = path

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        return cls(_load_private(path), path)

    def reload(self) -> None:
        if self.path is not None:
            self.private = _load_private(self.path)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.private.sign(data)).decode("ascii")

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_pem(self) -> str:
        return public_key_pem(self.public)

    def key_id(self) -> str:
        return key_id(self.public)

    def fingerprint(self) -> str:
        return fingerprint(self.public)


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise SandboxError(f"signing key not found at {path}; run 'dp-sandbox init'", code="not_initialised") from None
    except ValueError:
        raise SandboxError(f"{path} is not an Ed25519 private key in PEM", code="bad_signing_key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SandboxError(f"{path} is not an Ed25519 key", code="bad_signing_key")
    return key


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def fingerprint(public: Ed25519PublicKey) -> str:
    """A public key's fingerprint: the SHA-256 of its 32 raw bytes, in lowercase hex."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex characters of its fingerprint."""
    return fingerprint(public)[:16]


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise SandboxError("not an Ed25519 public key", code="bad_public_key")
    return key


def verify_signature(public: Ed25519PublicKey, signature_b64: str, data: bytes) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), data)
        return True
    except (InvalidSignature, ValueError):
        return False


def load_master_key(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SandboxError(f"master key not found at {path}; run 'dp-sandbox init'", code="not_initialised") from None
    if len(data) != MASTER_KEY_BYTES:
        raise BadMasterKey(f"{path} must hold exactly {MASTER_KEY_BYTES} bytes")
    return data
