"""A version's Parquet copy for Spark, encrypted with Parquet modular encryption.

Spark reads a version from ``<version file stem>.parquet/`` next to the version's
``.dpsv`` file: one folder of Parquet files per table, and ``manifest.json``
(the tables and their row counts, which bound the rows a query reads before it
runs). Every Parquet file is encrypted by Parquet itself (AES-GCM modules, the
footer encrypted too: without the key not even the schema or the row-group
statistics can be read), through Parquet's ``PropertiesDrivenCryptoFactory``.

Keys. Parquet wraps each file's random data keys with a *master key* it asks a
key service for. That service is :file:`java/VersionKeyKms.java`: it returns the
key the sandbox put in the reading session's Hadoop settings, and nothing else.
The key is derived (HKDF-SHA256) from the version's data key, which the
instance's master key wraps in the store, so:

* the Parquet files need the instance's master key, as the ``.dpsv`` file does;
* a master-key rotation re-wraps the data key and leaves the files valid;
* each version has its own key and key identifier, and each reading session is
  given the key of the one version it reads.

The copy is made once per version, when the version is added to a dataset whose
engine is Spark, or by the first Spark run of a version added before: the
``.dpsv`` file is decrypted into a private temporary folder, written as clear
Parquet there by DuckDB, read by Spark and written encrypted into the store; the
temporary folder is then removed. Two processes making the same copy each write
a folder of their own and the first rename wins.

The key service class is compiled once per Java source (``javac``, against
PySpark's jars) into ``$XDG_CACHE_HOME/dp-sandbox/spark/`` and put on the class
path of the driver and the executors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from queries.errors import SandboxError
from sandbox.execution.storage import decrypt_file

KMS_SOURCE = Path(__file__).resolve().parent / "java" / "VersionKeyKms.java"
KMS_CLASS = "org.dpsandbox.spark.VersionKeyKms"
KEY_SETTING = "dps.version.key."
MANIFEST = "manifest.json"
FORMAT = 1


class SparkUnavailable(SandboxError):
    """The Spark engine cannot start on this machine: PySpark, Java or a Java
    compiler (for the key service) is missing."""

    code = "spark_unavailable"
    status = 503


# ---------------------------------------------------------------- the key service

def find_jdk_tool(name: str) -> str | None:
    """``java`` or ``javac``: in ``$JAVA_HOME/bin``, else on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / name).exists():
        return str(Path(home) / "bin" / name)
    return shutil.which(name)


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "dp-sandbox" / "spark"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def kms_jar(cache: Path | None = None) -> Path:
    """The key service's jar, compiled from :data:`KMS_SOURCE` on first use.

    Raises ``spark_missing_javac`` when it has not been built yet and no Java
    compiler (a JDK 17 or newer) is on ``PATH`` or in ``JAVA_HOME``."""
    source = KMS_SOURCE.read_bytes()
    folder = cache or _cache_dir()
    jar = folder / f"dps-kms-{hashlib.sha256(source).hexdigest()[:16]}.jar"
    if jar.exists():
        return jar
    javac = find_jdk_tool("javac")
    if javac is None:
        raise SparkUnavailable("the Spark engine builds its key service with a Java compiler: install a JDK 17 "
                              "or newer (javac on PATH or in JAVA_HOME)", code="spark_missing_javac",
                              missing="javac")
    import pyspark

    jars = Path(pyspark.__file__).resolve().parent / "jars"
    build = Path(tempfile.mkdtemp(prefix="dps-kms-", dir=folder))
    try:
        done = subprocess.run([javac, "--release", "17", "-nowarn", "-cp", str(jars / "*"), "-d", str(build),
                               str(KMS_SOURCE)], capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise SparkUnavailable("the Spark engine's key service did not compile with this JDK and PySpark",
                                  code="spark_kms_build_failed", detail=done.stderr[-2000:])
        partial = build / "kms.jar"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: dp-sandbox\n\n")
            for cls in sorted(build.rglob("*.class")):
                out.write(cls, cls.relative_to(build).as_posix())
        os.replace(partial, jar)
        return jar
    finally:
        shutil.rmtree(build, ignore_errors=True)


# ---------------------------------------------------------------- keys

@dataclass(frozen=True)
class ParquetKey:
    """One version's Parquet master key and its identifier (not secret)."""

    key_id: str
    key: bytes

    @classmethod
    def of(cls, data_key: bytes) -> ParquetKey:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"dp-sandbox spark parquet master key v1").derive(data_key)
        key_id = "dps-" + hashlib.sha256(b"dp-sandbox parquet key id\n" + key).hexdigest()[:24]
        return cls(key_id, key)

    def read_settings(self) -> dict[str, str]:
        """The Hadoop settings of one session that reads (or writes) this version.

        Parquet caches key services by access token and key-service instance.
        Each session gets an access token of its own, so a session is served
        only the key it was given, never one a cache kept from another session;
        the cached services expire after a minute."""
        return {
            "parquet.crypto.factory.class": "org.apache.parquet.crypto.keytools.PropertiesDrivenCryptoFactory",
            "parquet.encryption.kms.client.class": KMS_CLASS,
            "parquet.encryption.kms.instance.id": self.key_id,
            "parquet.encryption.key.access.token": secrets.token_hex(16),
            "parquet.encryption.cache.lifetime.seconds": "60",
            "parquet.encryption.double.wrapping": "false",
            KEY_SETTING + self.key_id: base64.b64encode(self.key).decode("ascii"),
        }

    def write_options(self) -> dict[str, str]:
        """Every column and the footer under this version's key (AES-GCM)."""
        return {"parquet.encryption.uniform.key": self.key_id,
                "parquet.encryption.algorithm": "AES_GCM_V1",
                "parquet.encryption.plaintext.footer": "false"}


# ---------------------------------------------------------------- the copy

@dataclass(frozen=True)
class ParquetVersion:
    folder: Path
    rows: dict[str, int]

    def tables(self) -> dict[str, Path]:
        return {name: self.folder / name for name in self.rows}


def parquet_folder(version_path: Path) -> Path:
    return Path(version_path).with_suffix(".parquet")


def read_copy(version_path: Path) -> ParquetVersion | None:
    folder = parquet_folder(version_path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT:
        return None
    return ParquetVersion(folder, {str(k): int(v) for k, v in manifest["tables"].items()})


def clear_tables(database: Path, folder: Path) -> dict[str, tuple[Path, int]]:
    """Each table of a clear version database as ``<folder>/<table>.parquet``, with its row count."""
    con = duckdb.connect(str(database), read_only=True,
                         config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        out = {}
        for name in names:
            path = folder / f"{name}.parquet"
            quoted = '"' + name.replace('"', '""') + '"'
            con.execute(f"COPY (SELECT * FROM {quoted}) TO ? (FORMAT parquet)", [str(path)])
            rows = con.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()
            out[name] = (path, int(rows[0]) if rows else 0)
        return out
    finally:
        con.close()


def write_encrypted(spark: object, clear: Mapping[str, Path], dest: Path, key: ParquetKey) -> None:
    """Spark reads each clear Parquet table and writes it encrypted to ``dest/<table>``."""
    session = spark.newSession()              # type: ignore[attr-defined]
    for name, value in key.read_settings().items():
        session.conf.set(name, value)
    for name, path in clear.items():
        writer = session.read.parquet(str(path)).write.mode("errorifexists")
        for option, value in key.write_options().items():
            writer = writer.option(option, value)
        writer.parquet(str(dest / name))


def make_copy(spark: object, version_path: Path, data_key: bytes, temp_root: Path | None = None) -> ParquetVersion:
    """The version's encrypted Parquet copy, made now unless it exists."""
    existing = read_copy(version_path)
    if existing is not None:
        return existing
    final = parquet_folder(version_path)
    key = ParquetKey.of(data_key)
    work = Path(tempfile.mkdtemp(prefix="dps-spark-", dir=temp_root))
    os.chmod(work, 0o700)
    staged = final.with_name(f"{final.name}.tmp-{secrets.token_hex(4)}")
    try:
        decrypt_file(Path(version_path), data_key, work / "ds.duckdb")
        clear = clear_tables(work / "ds.duckdb", work)
        (work / "ds.duckdb").unlink()
        staged.mkdir(mode=0o700)
        write_encrypted(spark, {name: path for name, (path, _) in clear.items()}, staged, key)
        manifest = {"format": FORMAT, "key_id": key.key_id, "tables": {n: rows for n, (_, rows) in clear.items()}}
        (staged / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
        try:
            os.rename(staged, final)
        except OSError:                      # another process made it first
            if read_copy(version_path) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staged, ignore_errors=True)
    made = read_copy(version_path)
    assert made is not None
    return made


def remove_copy(version_path: Path) -> None:
    shutil.rmtree(parquet_folder(version_path), ignore_errors=True)
