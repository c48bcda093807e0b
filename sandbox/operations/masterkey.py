"""The master key: its key id, the instance's key ring, and rotation.

The master key wraps (AES key wrap) the data key of every dataset version; the
store's ``dataset_versions.wrapped_key`` is the copy every read uses. (Each
version file also holds the data key wrapped under the master key current when
the file was written, in its header: the header is the associated data of every
chunk, so it cannot change without re-encrypting the file. Once a rotation has
retired that key, the header copy opens nothing.)

:func:`rotate_master_key` makes a new key, writes it beside the current one
(``<master key file>.next``), re-wraps every data key under it and records the
rotation in ``master_keys`` and the audit chain, all in one transaction; only
then does the new key replace the old key file (an atomic rename). A crash
before the commit leaves the old key and the store as they were (the ``.next``
file is discarded on the next open); a crash after it leaves a ``.next`` file the
store names as current, which the next open moves into place.

A running process (the web server) notices the new key file on its next use of
the master key, and keeps every key it has seen in its ring, so a version added
while the key was rotated is re-wrapped under the current key as it is stored
(:func:`current_wrapping`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from queries.errors import BadMasterKey, SandboxError
from sandbox.keys import MASTER_KEY_BYTES
from sandbox.persistence.models import AuditHead, DatasetVersion, MasterKeyRecord
from sandbox.persistence.store import Store, lock_for_update
from sandbox.vocabulary import OperationAction

if TYPE_CHECKING:
    from sandbox.audit import Actor
    from sandbox.instance import Instance
    from sandbox.settings import Settings

ROTATE_ACTION = OperationAction.ROTATE_MASTER
KEY_ID_LABEL = b"dp-sandbox master key id v1\n"
LOCK_NAME = "operations.lock"


def master_key_id(key: bytes) -> str:
    """The master key's public name: the first 16 hex digits of SHA-256 over a
    fixed label and the key. It identifies a key without revealing it."""
    return hashlib.sha256(KEY_ID_LABEL + bytes(key)).hexdigest()[:16]


def next_key_path(settings: Settings) -> Path:
    path = settings.master_key_path
    return path.with_name(path.name + ".next")


def digest_key_path(settings: Settings) -> Path:
    return settings.keys_dir / "digest.key"


@contextlib.contextmanager
def operations_lock(settings: Settings, *, exclusive: bool) -> Iterator[None]:
    """The home's operations lock: a backup holds it shared, a rotation
    exclusively, so a backup never copies a key file from one side of a rotation
    and a store from the other."""
    path = settings.keys_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _read_key(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) != MASTER_KEY_BYTES:
        raise BadMasterKey(f"{path} must hold exactly {MASTER_KEY_BYTES} bytes")
    return data


def _write_key(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())


def current_key_id(s: Session) -> str | None:
    """The key id the store names as current; None before the first rotation
    (the store then records no key: the key file is the current key), and in a
    store whose schema predates the record."""
    if not inspect(s.connection()).has_table(MasterKeyRecord.__tablename__):
        return None
    return s.execute(select(MasterKeyRecord.key_id).where(MasterKeyRecord.retired_at.is_(None))).scalar_one_or_none()


def settle_pending_rotation(settings: Settings, store: Store) -> None:
    """Finish or discard a rotation a crash interrupted: move a ``.next`` key the
    store names as current into place, or remove one it does not name. A rotation
    in progress holds the operations lock: this waits for it (and then finds
    nothing to settle)."""
    if not next_key_path(settings).exists():
        return
    with operations_lock(settings, exclusive=True):
        _settle(settings, store)


def _settle(settings: Settings, store: Store) -> None:
    pending = next_key_path(settings)
    key = _read_key(pending)
    if key is None:
        return
    with store.read() as s:
        current = current_key_id(s)
    if current == master_key_id(key):
        os.replace(pending, settings.master_key_path)
    else:
        pending.unlink(missing_ok=True)


class KeyRing:
    """The master keys one process has seen, by key id; the current one is the
    key file's (or, while a rotation is between its commit and its rename, the
    ``.next`` key the store already names)."""

    def __init__(self, settings: Settings, store: Store, key: bytes) -> None:
        self.settings = settings
        self.store = store
        self.keys: dict[str, bytes] = {master_key_id(key): key}
        self._current = key
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.settings.master_key_path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _learn(self, key: bytes) -> bytes:
        self.keys.setdefault(master_key_id(key), key)
        return key

    def current(self) -> bytes:
        stamp = self._file_stamp()
        if stamp != self._stamp and stamp is not None:
            key = _read_key(self.settings.master_key_path)
            if key is not None:
                self._current, self._stamp = self._learn(key), stamp
        try:
            pending = _read_key(next_key_path(self.settings))
        except BadMasterKey:       # a rotation is writing it: not named by the store yet
            pending = None
        if pending is not None:
            with self.store.read() as s:
                if current_key_id(s) == master_key_id(pending):
                    return self._learn(pending)
        return self._current

    def by_id(self, key_id: str) -> bytes:
        if key_id not in self.keys:
            self.current()
        if key_id not in self.keys:
            raise BadMasterKey(f"the store's data keys are wrapped under master key {key_id}, "
                               "which this instance does not have")
        return self.keys[key_id]

    def unwrap(self, wrapped: bytes) -> tuple[bytes, str]:
        """The data key and the id of the key that opened it."""
        from sandbox.execution.storage import unwrap_key

        for key_id, key in list(self.keys.items()):
            try:
                return unwrap_key(wrapped, key), key_id
            except BadMasterKey:
                continue
        raise BadMasterKey("no master key of this instance opens this data key")


def current_wrapping(s: Session, inst: Instance, wrapped: bytes) -> bytes:
    """``wrapped`` (a new version's data key, wrapped when its file was written)
    as the store must hold it: under the master key the store names now. Called
    in the transaction that stores the version; it locks the audit head, as a
    rotation does, so the two cannot interleave."""
    s.execute(lock_for_update(select(AuditHead).where(AuditHead.id == 1), s)).scalar_one_or_none()
    current = current_key_id(s)
    if current is None:
        return wrapped
    from sandbox.execution.storage import wrap_key

    data_key, used = inst.key_ring.unwrap(wrapped)
    return wrapped if used == current else wrap_key(data_key, inst.key_ring.by_id(current))


@dataclass(frozen=True)
class Rotation:
    old_key_id: str
    new_key_id: str
    versions: int
    audit_seq: int

    def to_dict(self) -> dict[str, object]:
        return {"from": self.old_key_id, "to": self.new_key_id, "versions": self.versions,
                "audit_seq": self.audit_seq}


def _ensure_digest_key(settings: Settings, master_key: bytes) -> None:
    """Published digests of keyed versions are HMACs under a key derived from the
    master key; before the first rotation that derived key is written to
    ``keys/digest.key`` so that every digest already published stays the same."""
    from sandbox.execution.storage import derive_digest_key

    path = digest_key_path(settings)
    if not path.exists():
        _write_key(path, derive_digest_key(master_key))


def rotate_master_key(inst: Instance, actor: Actor) -> Rotation:
    """Re-wrap every data key under a new master key, in one transaction with its
    audit record; then put the new key in place of the old key file."""
    from sandbox import audit
    from sandbox.execution.storage import unwrap_key, wrap_key

    settings = inst.settings
    with operations_lock(settings, exclusive=True):
        _settle(settings, inst.store)
        old = inst.master_key
        old_id = master_key_id(old)
        _ensure_digest_key(settings, old)
        new = secrets.token_bytes(MASTER_KEY_BYTES)
        new_id = master_key_id(new)
        pending = next_key_path(settings)
        _write_key(pending, new)
        try:
            with inst.store.transaction() as s:
                s.execute(lock_for_update(select(AuditHead).where(AuditHead.id == 1), s)).scalar_one_or_none()
                current = s.execute(lock_for_update(
                    select(MasterKeyRecord).where(MasterKeyRecord.retired_at.is_(None)), s)).scalar_one_or_none()
                if current is not None and current.key_id != old_id:
                    raise BadMasterKey(f"the store's data keys are wrapped under master key {current.key_id}, "
                                       f"not under this instance's key {old_id}")
                now = datetime.now(UTC)
                if current is None:
                    s.add(MasterKeyRecord(key_id=old_id, retired_at=now))
                else:
                    current.retired_at = now
                versions = s.execute(lock_for_update(select(DatasetVersion).order_by(DatasetVersion.id), s)).scalars()
                count = 0
                for v in versions:
                    v.wrapped_key = wrap_key(unwrap_key(v.wrapped_key, old), new)
                    count += 1
                s.add(MasterKeyRecord(key_id=new_id, created_at=now))
                record = audit.append(s, inst.signer, actor, ROTATE_ACTION, "master_key", new_id,
                                      {"from": old_id, "to": new_id, "versions": count})
                seq = record.seq
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        os.replace(pending, settings.master_key_path)
        inst.key_ring.current()
    return Rotation(old_id, new_id, count, seq)


def check_master_key(settings: Settings, store: Store, key: bytes) -> None:
    """Refuse a master key that is not the one the store names as current."""
    with store.read() as s:
        current = current_key_id(s)
    if current is not None and current != master_key_id(key):
        raise SandboxError(f"the master key at {settings.master_key_path} (key id {master_key_id(key)}) is not "
                           f"the key the store's data keys are wrapped under ({current})", code="bad_master_key")
