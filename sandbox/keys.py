"""Instance keys: the Ed25519 signing key and the master key for encryption at rest.

``init`` creates them in ``<home>/keys`` (files mode 0600) unless settings point
at existing files. Signing and verifying use ``cryptography`` only.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
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
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_secret(path, pem)


def create_master_key(path: Path) -> None:
    _write_secret(path, secrets.token_bytes(MASTER_KEY_BYTES))


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise SandboxError(f"signing key not found at {path}; run 'dp-sandbox init'", code="not_initialised") from None
        except ValueError:
            raise SandboxError(f"{path} is not an Ed25519 private key in PEM", code="bad_signing_key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SandboxError(f"{path} is not an Ed25519 key", code="bad_signing_key")
        return cls(key)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.private.sign(data)).decode("ascii")

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_pem(self) -> str:
        return public_key_pem(self.public)

    def key_id(self) -> str:
        return key_id(self.public)


def public_key_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key (hex of its SHA-256, first 16 chars)."""
    import hashlib

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


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
