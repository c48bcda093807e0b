"""Signed packages: a folder of files with ``manifest.json`` and ``manifest.sig``.

``manifest.json`` lists every other file of the package with its SHA-256 and
size, and names the signing key (Ed25519, with its PEM and key id).
``manifest.sig`` holds the base64 Ed25519 signature of the exact bytes of
``manifest.json``. ``verify_path`` checks a package offline — a folder or a zip
of one — with the embedded key or, better, with a public key obtained
independently (``dp-sandbox keys show`` or the instance's ``/keys`` page).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from products.model import VerificationReport
from sandbox.keys import SigningKey, key_id, load_public_key, verify_signature

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CHUNK = 1 << 20


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The serialised manifest: sorted keys, two-space indent, UTF-8, final newline."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def sign_package(folder: Path, body: dict[str, Any], signer: SigningKey) -> str:
    """Hash every file under ``folder``, write the manifest (``body`` plus
    ``files`` and ``signer``) and its detached signature. Returns the manifest's SHA-256."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in (MANIFEST, SIGNATURE):
            continue
        sha, size = file_digest(path)
        files[rel] = {"sha256": sha, "bytes": size}
    manifest = dict(body)
    manifest["files"] = files
    manifest["signer"] = {"algorithm": "Ed25519", "key_id": signer.key_id(), "public_key_pem": signer.public_pem()}
    data = manifest_bytes(manifest)
    (folder / MANIFEST).write_bytes(data)
    (folder / SIGNATURE).write_text(signer.sign(data) + "\n", encoding="ascii")
    return hashlib.sha256(data).hexdigest()


class _Reader:
    """Uniform access to a package folder or a zip of one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_file():
            self.zip = zipfile.ZipFile(path)
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
            tops = [n for n in names if PurePosixPath(n).name == MANIFEST]
            if tops:
                shortest = min(tops, key=len)
                self.prefix = shortest[: -len(MANIFEST)]

    def stray_members(self) -> list[str]:
        """Problems of the zip's own listing: a member named twice (which copy a
        tool extracts is up to the tool), or a member outside the package folder."""
        if self.zip is None:
            return []
        problems = []
        seen: dict[str, int] = {}
        for n in self.zip.namelist():
            seen[n] = seen.get(n, 0) + 1
        for n, count in seen.items():
            if count > 1:
                problems.append(f"{n}: the zip holds {count} members with this name")
        for n in seen:
            inside = n.startswith(self.prefix) and _safe_name(n[len(self.prefix):] or ".")
            if n.endswith("/") and (self.prefix.startswith(n) or inside):
                continue
            if not inside:
                problems.append(f"{n}: outside the package folder in the zip")
        return problems

    def names(self) -> list[str]:
        if self.zip is not None:
            return sorted(n[len(self.prefix):] for n in self.zip.namelist()
                          if n.startswith(self.prefix) and not n.endswith("/"))
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes | None:
        try:
            if self.zip is not None:
                return self.zip.read(self.prefix + name)
            return (self.path / name).read_bytes()
        except (KeyError, FileNotFoundError, IsADirectoryError):
            return None

    def digest(self, name: str) -> tuple[str, int] | None:
        if self.zip is not None:
            try:
                fh: Any = self.zip.open(self.prefix + name)
            except KeyError:
                return None
        else:
            target = self.path / name
            if not target.is_file():
                return None
            fh = target.open("rb")
        h = hashlib.sha256()
        size = 0
        with fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest(), size

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and name != ""


def _pick_key(pem: str | bytes | Sequence[str], wanted: object) -> Ed25519PublicKey:
    """The key named ``wanted`` among one or more PEM public keys (a key history:
    a package signed before a rotation verifies with the key it names), else the
    first."""
    if isinstance(pem, bytes):
        pem = pem.decode("ascii", "replace")
    blocks = [pem] if isinstance(pem, str) else list(pem)
    keys = [load_public_key(b.strip() + "\n" if b.strip().endswith("-----") else b)
            for block in blocks for b in _pem_blocks(block)]
    if not keys:
        raise ValueError("no public key")
    return next((k for k in keys if key_id(k) == wanted), keys[0])


def _pem_blocks(text: str) -> list[str]:
    end = "-----END PUBLIC KEY-----"
    parts = [p + end for p in text.split(end) if "-----BEGIN" in p]
    return [p[p.index("-----BEGIN"):] for p in parts]


def verify_path(path: str | Path, public_key_pem: str | bytes | Sequence[str] | None = None) -> VerificationReport:
    """Check a signed package offline: the signature over ``manifest.json`` and
    the SHA-256 and size of every listed file. Unlisted files, and in a zip
    members named twice or lying outside the package folder, are problems too.
    ``public_key_pem`` may hold several keys (the instance's key history, as
    ``dp-sandbox keys show`` and the register list them): the one the manifest
    names is used. Without it the key embedded in the manifest is used
    (``key_source == "manifest"``): that proves the files match the manifest,
    not who signed it."""
    path = Path(path)
    problems: list[str] = []

    def report(ok: bool, manifest: dict[str, Any] | None = None, kid: str | None = None, n: int = 0):
        kind = subject = None
        if manifest:
            kind = manifest.get("kind")
            subject = _subject(manifest)
        return VerificationReport(ok and not problems, str(path), kind, subject, kid, n, tuple(problems),
                                  "given" if public_key_pem is not None else "manifest")

    if not path.exists():
        problems.append("no such file or folder")
        return report(False)
    try:
        reader = _Reader(path)
    except zipfile.BadZipFile:
        problems.append("not a folder or a zip file")
        return report(False)
    try:
        problems.extend(reader.stray_members())
        raw = reader.read(MANIFEST)
        if raw is None:
            problems.append("manifest.json is missing")
            return report(False)
        try:
            manifest = json.loads(raw)
            if not isinstance(manifest, dict):
                raise ValueError
        except ValueError:
            problems.append("manifest.json is not a JSON object")
            return report(False)
        sig = reader.read(SIGNATURE)
        signer = manifest.get("signer") or {}
        kid = None
        try:
            key = _pick_key(public_key_pem if public_key_pem is not None else signer.get("public_key_pem", ""),
                            signer.get("key_id"))
            kid = key_id(key)
        except Exception:
            key = None
            problems.append("no usable Ed25519 public key (give one, or the manifest's is malformed)")
        if key is not None and signer.get("key_id") not in (None, kid):
            problems.append(f"the manifest names key {signer.get('key_id')} but was checked with key {kid}")
        if sig is None:
            problems.append("manifest.sig is missing")
        elif key is not None and not verify_signature(key, sig.decode("ascii", "replace").strip(), raw):
            problems.append("the signature does not match manifest.json for this key")
        files = manifest.get("files")
        if not isinstance(files, dict):
            problems.append("the manifest lists no files")
            files = {}
        checked = 0
        for name, meta in sorted(files.items()):
            if not _safe_name(name) or name in (MANIFEST, SIGNATURE):
                problems.append(f"{name}: not a valid file name in a package")
                continue
            got = reader.digest(name)
            checked += 1
            if got is None:
                problems.append(f"{name}: missing")
            elif got[0] != (meta or {}).get("sha256") or got[1] != (meta or {}).get("bytes"):
                problems.append(f"{name}: SHA-256 or size differs from the manifest (the file was changed)")
        for name in reader.names():
            if name not in files and name not in (MANIFEST, SIGNATURE):
                problems.append(f"{name}: not listed in the manifest")
        return report(True, manifest, kid, checked)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        problems.append("the zip file is corrupt (a member does not decompress or fails its CRC)")
        return report(False)
    finally:
        reader.close()


def _subject(manifest: dict[str, Any]) -> str | None:
    if manifest.get("kind") == "data_product":
        p = manifest.get("product") or {}
        return f"product {p.get('id')} v{p.get('version')}"
    if manifest.get("kind") == "disclosure_report":
        return f"disclosure report {manifest.get('year')}"
    return None


def zip_folder(folder: Path, target: Path, arcroot: str,
               on_file: Callable[[str], None] | None = None) -> Path:
    """Zip a package folder under one top-level directory ``arcroot``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                zf.write(p, f"{arcroot}/{rel}")
                if on_file:
                    on_file(rel)
    return target


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_bytes())

