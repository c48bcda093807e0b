"""Operations: backup and restore under concurrent writers, master-key rotation,
and ``init`` refusing to replace the keys of a home that holds data; on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from queries.errors import BadMasterKey, InvalidInput, SandboxError
from sandbox.audit import Actor, verify_chain
from sandbox.cli import main
from sandbox.datasets import add_dataset, get_dataset, latest_version, published_digest
from sandbox.demo.data import write_health
from sandbox.execution.storage import unwrap_key, wrap_key
from sandbox.instance import Instance, init_home
from sandbox.operations import masterkey
from sandbox.operations.backup import MANIFEST, backup, check_backup, restore
from sandbox.operations.masterkey import current_wrapping, master_key_id, rotate_master_key
from sandbox.persistence.models import AuditRecord, DatasetVersion, MasterKeyRecord
from sandbox.service import run_query
from sandbox.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenario import OWNER, build

ADMIN = Actor("local:ops", "admin")
SQL = "SELECT COUNT(*) FROM people"
ROOT = Path(__file__).resolve().parents[2]


def ran(inst: Instance) -> bool:
    """A real query run on the instance's data answers with a noisy row."""
    return len(run_query(inst, "operator1", "health", SQL, epsilon=0.1).to_dict()["rows"]) == 1


def settings_of(inst: Instance, **overrides):
    return load_settings(env={}, home=str(inst.home), database_url=inst.settings.database_url, **overrides)


def dps(args: list[str], env_url: str = "", **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    if env_url:
        env["DPS_DATABASE_URL"] = env_url
    return subprocess.run([sys.executable, "-m", "sandbox.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300, **kw)


def records(inst: Instance, action: str | None = None) -> list[AuditRecord]:
    with inst.store.read() as s:
        stmt = select(AuditRecord).order_by(AuditRecord.seq)
        if action:
            stmt = stmt.where(AuditRecord.action == action)
        return list(s.execute(stmt).scalars())


# ---------------------------------------------------------------- init and missing keys

@pytest.mark.parametrize("lost", ["master.key", "signing.pem"])
def test_init_refuses_to_replace_a_missing_key_in_a_home_with_data(make_instance, store_url, tmp_path, lost):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    settings = settings_of(inst)
    inst.close()
    key = settings.keys_dir / lost
    kept = key.read_bytes()
    key.unlink()
    with pytest.raises(SandboxError) as refused:
        init_home(settings)
    assert refused.value.code == "keys_missing" and refused.value.fields["keys"] == [lost]
    assert not key.exists()          # nothing was made in its place
    env = {"DPS_DATABASE_URL": store_url}
    result = CliRunner().invoke(main, ["init", "--home", str(settings.home_path)], env=env)
    assert result.exit_code == 1 and "[keys_missing]" in result.output and not key.exists()
    # the key brought back, init is a no-op again and the data opens
    key.write_bytes(kept)
    key.chmod(0o600)
    assert init_home(settings) is False
    with Instance.open(settings) as again:
        assert ran(again)


def test_init_still_makes_the_keys_of_a_home_without_data(tmp_path):
    settings = load_settings(env={}, home=str(tmp_path / "fresh"))
    assert init_home(settings) is True
    settings.master_key_path.unlink()
    settings.signing_key_path.unlink()
    assert init_home(settings) is True      # an empty store: nothing to orphan
    assert settings.master_key_path.exists() and settings.signing_key_path.exists()


# ---------------------------------------------------------------- master-key rotation

def test_rotate_master_rewraps_every_data_key_and_data_stays_readable(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    server = Instance.open(settings_of(inst))          # another process's view, opened before the rotation
    try:
        assert ran(server)
        old_key = inst.master_key
        with inst.store.read() as s:
            ds = get_dataset(s, "health")
            digest_before = published_digest(inst, latest_version(s, ds), ds.classification)
            wrapped_before = {v.id: v.wrapped_key for v in s.execute(select(DatasetVersion)).scalars()}

        rotation = rotate_master_key(inst, ADMIN)

        new_key = inst.settings.master_key_path.read_bytes()
        assert new_key != old_key and inst.master_key == new_key
        assert (rotation.old_key_id, rotation.new_key_id) == (master_key_id(old_key), master_key_id(new_key))
        assert rotation.versions == len(wrapped_before) >= 1
        assert not masterkey.next_key_path(inst.settings).exists()
        with inst.store.read() as s:
            for v in s.execute(select(DatasetVersion)).scalars():
                assert v.wrapped_key != wrapped_before[v.id]
                assert unwrap_key(v.wrapped_key, new_key) == unwrap_key(wrapped_before[v.id], old_key)
                with pytest.raises(BadMasterKey):
                    unwrap_key(v.wrapped_key, old_key)
            keys = {k.key_id: k.retired_at for k in s.execute(select(MasterKeyRecord)).scalars()}
            assert set(keys) == {rotation.old_key_id, rotation.new_key_id}
            assert keys[rotation.old_key_id] is not None and keys[rotation.new_key_id] is None
            ds = get_dataset(s, "health")
            # published digests of keyed versions do not move with the master key
            assert published_digest(inst, latest_version(s, ds), ds.classification) == digest_before
            assert verify_chain(s, inst.signer.public).ok
        (record,) = records(inst, masterkey.ROTATE_ACTION)
        assert record.seq == rotation.audit_seq and record.actor == ADMIN.name
        assert record.payload == {"from": rotation.old_key_id, "to": rotation.new_key_id,
                                  "versions": rotation.versions}

        # the process opened before the rotation picks up the new key and still runs queries
        assert ran(server)
        # so does a new one, and a second rotation chains on the first
        with Instance.open(settings_of(inst)) as fresh:
            assert fresh.master_key == new_key
            second = rotate_master_key(fresh, ADMIN)
            assert second.old_key_id == rotation.new_key_id
            assert ran(fresh)
    finally:
        server.close()


def test_a_failed_rotation_changes_nothing_and_keeps_the_old_key(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    old_key = inst.master_key
    with inst.store.transaction() as s:     # one data key no longer opens under the master key
        v = s.execute(select(DatasetVersion)).scalars().first()
        assert v is not None
        broken_id, v.wrapped_key = v.id, wrap_key(os.urandom(32), os.urandom(32))
    seq_before = len(records(inst))
    with pytest.raises(BadMasterKey):
        rotate_master_key(inst, ADMIN)
    assert inst.settings.master_key_path.read_bytes() == old_key
    assert not masterkey.next_key_path(inst.settings).exists()
    assert len(records(inst)) == seq_before
    with inst.store.read() as s:
        assert s.execute(select(func.count()).select_from(MasterKeyRecord)).scalar_one() == 0
        assert s.get(DatasetVersion, broken_id) is not None


def test_a_rotation_cut_off_after_its_commit_is_finished_by_the_next_open(make_instance, store_url, tmp_path,
                                                                           monkeypatch):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    settings = settings_of(inst)
    real_replace = os.replace

    def crash(src, dst):
        raise OSError("power lost")

    monkeypatch.setattr(masterkey.os, "replace", crash)
    with pytest.raises(OSError):
        rotate_master_key(inst, ADMIN)
    monkeypatch.setattr(masterkey.os, "replace", real_replace)
    pending = masterkey.next_key_path(settings)
    assert pending.exists()            # committed: the store names the new key, the old file is still there
    new_key = pending.read_bytes()
    inst.close()
    with Instance.open(settings) as again:
        assert not pending.exists() and settings.master_key_path.read_bytes() == new_key
        assert ran(again)


def test_an_open_during_a_rotation_leaves_the_new_key_alone(make_instance, store_url):
    inst = make_instance(store_url)
    settings = settings_of(inst)
    pending = masterkey.next_key_path(settings)
    with masterkey.operations_lock(settings, exclusive=True):     # a rotation between its key file and commit
        pending.write_bytes(os.urandom(32))
        opener = threading.Thread(target=masterkey.settle_pending_rotation, args=(settings, inst.store))
        opener.start()
        opener.join(0.5)
        assert pending.exists()          # not taken for the leftover of a crash
    opener.join(30)
    assert not opener.is_alive() and not pending.exists()    # once the lock is free: not named by the store


def test_a_version_wrapped_before_a_rotation_is_stored_under_the_new_key(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    old_key = inst.master_key
    data_key = os.urandom(32)
    wrapped_old = wrap_key(data_key, old_key)        # a version being ingested while the key rotates
    other = Instance.open(settings_of(inst))
    try:
        rotate_master_key(other, ADMIN)
    finally:
        other.close()
    with inst.store.transaction() as s:
        stored = current_wrapping(s, inst, wrapped_old)
    new_key = inst.settings.master_key_path.read_bytes()
    assert unwrap_key(stored, new_key) == data_key


def test_a_version_added_while_the_key_rotates_is_stored_under_the_new_key(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    write_health(tmp_path / "src2", people=320)        # a new version of the same dataset
    rotations = []

    def rotate_after_encryption(stage: str, _count: int) -> None:
        if stage == "encrypt":          # the data key is wrapped, the version is not stored yet
            with Instance.open(settings_of(inst)) as other:
                rotations.append(rotate_master_key(other, ADMIN))

    added = add_dataset(inst, OWNER, tmp_path / "src2" / "policy.toml", progress=rotate_after_encryption)
    assert added.created and len(rotations) == 1
    new_key = inst.settings.master_key_path.read_bytes()
    assert master_key_id(new_key) == rotations[0].new_key_id
    with inst.store.read() as s:
        versions = list(s.execute(select(DatasetVersion).order_by(DatasetVersion.number)).scalars())
        assert [v.number for v in versions] == [1, 2]
        for v in versions:
            unwrap_key(v.wrapped_key, new_key)          # both open under the key now in force
    assert ran(inst)                                   # and the new version (the latest) answers


def test_open_refuses_a_master_key_the_store_does_not_name(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    rotate_master_key(inst, ADMIN)
    settings = settings_of(inst)
    inst.close()
    settings.master_key_path.write_bytes(os.urandom(32))
    with pytest.raises(SandboxError) as refused:
        Instance.open(settings)
    assert refused.value.code == "bad_master_key"


def test_rotate_master_on_the_command_line(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    old_id = master_key_id(inst.master_key)
    env = {"DPS_DATABASE_URL": store_url}
    result = CliRunner().invoke(main, ["keys", "rotate-master", "--home", str(inst.home), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["from"] == old_id and report["to"] == master_key_id(inst.master_key) and report["versions"] == 1


# ---------------------------------------------------------------- backup and restore

WRITER = """
import sys, time
from pathlib import Path
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.organisations import add_organisation
from sandbox.settings import load_settings

home, url, tag, stop = sys.argv[1:5]
inst = Instance.open(load_settings(env={}, home=home, database_url=url))
i = 0
try:
    while not Path(stop).exists():
        add_organisation(inst, Actor("writer", "admin"), f"{tag} office {i}", "department")
        i += 1
        print(i, flush=True)
finally:
    inst.close()
"""


def start_writers(inst: Instance, url: str, stop: Path, count: int = 2) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    return [subprocess.Popen([sys.executable, "-c", WRITER, str(inst.home), url, f"w{i}", str(stop)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(count)]


def wait_for_writes(writers: list[subprocess.Popen]) -> None:
    for w in writers:          # each writer has committed at least once before the backup starts
        assert w.stdout is not None
        line = w.stdout.readline()
        assert line.strip(), w.stderr.read() if w.stderr else ""


@pytest.mark.slow        # many processes for several seconds: CI runs it in the slow tier
def test_backup_under_concurrent_writers_restores_and_verifies(make_instance, store_url, tmp_path, pg_url_for):
    pg = store_url.startswith("postgresql")
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    assert ran(inst)
    stop = tmp_path / "stop"
    writers = start_writers(inst, inst.settings.database_url, stop)
    try:
        wait_for_writes(writers)
        seq_before = records(inst)[-1].seq
        report = backup(settings_of(inst), tmp_path / "backup", ADMIN)
        for _ in range(600):        # the writers go on after the backup: its snapshot was taken mid-stream
            seq_after = records(inst)[-1].seq
            if seq_after > report.audit_seq + 1:
                break
            time.sleep(0.1)
    finally:
        stop.touch()
        for w in writers:
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
    written = len(records(inst, "org.add"))
    assert written >= 2
    assert seq_before <= report.audit_seq < seq_after      # a snapshot taken while the chain grew
    (logged,) = records(inst, "instance.backup")
    assert logged.payload["manifest_sha256"] == report.manifest_sha256

    manifest = check_backup(report.out)
    assert manifest["store"] == ("postgresql" if pg else "sqlite")
    assert {"keys/signing.pem", "keys/master.key"} <= set(manifest["files"])
    assert manifest["master_key_id"] == master_key_id(inst.master_key)
    assert manifest["signing_key_id"] == inst.signer.key_id()
    assert any(name.startswith("data/health/") for name in manifest["files"])

    target_url = pg_url_for() if pg else ""
    new_home = tmp_path / "restored"
    args = ["restore", str(report.out), "--home", str(new_home)] + (["--database-url", target_url] if pg else [])
    result = dps(args)
    assert result.returncode == 0, result.stderr
    assert "audit verify" in result.stdout
    verified = dps(["audit", "verify", "--home", str(new_home), "--json"], env_url=target_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True

    restored = Instance.open(load_settings(env={}, home=str(new_home), database_url=target_url))
    try:
        chain = records(restored)
        assert chain[-1].action == "instance.restore" and chain[-1].seq == report.audit_seq + 1
        assert chain[-1].payload["backup_audit_seq"] == report.audit_seq
        with restored.store.read() as s:
            for v in s.execute(select(DatasetVersion)).scalars():
                assert Path(v.path).is_relative_to(new_home) and Path(v.path).is_file()
        assert ran(restored)     # the data opens
    finally:
        restored.close()


def test_a_signing_key_rotation_waits_for_a_running_backup(make_instance, store_url):
    inst = make_instance(store_url)
    settings = settings_of(inst)
    before = settings.signing_key_path.read_bytes()
    with masterkey.operations_lock(settings, exclusive=False):       # as a backup holds it
        rotation = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "keys", "rotate-signing", "--home",
                                     str(inst.home)], cwd=ROOT, env={**os.environ, "DPS_DATABASE_URL": store_url},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            rotation.wait(3)
        except subprocess.TimeoutExpired:
            pass
        assert rotation.poll() is None and settings.signing_key_path.read_bytes() == before
    out, err = rotation.communicate(timeout=120)
    assert rotation.returncode == 0, err
    assert settings.signing_key_path.read_bytes() != before


def test_restore_refusals(make_instance, store_url, tmp_path, pg_url_for):
    pg = store_url.startswith("postgresql")
    inst = make_instance(store_url)
    build(inst, tmp_path / "src", people=300)
    report = backup(settings_of(inst), tmp_path / "backup")
    # a backup goes into a new directory
    again = dps(["backup", "--home", str(inst.home), "--out", str(report.out)], env_url=inst.settings.database_url)
    assert again.returncode == 1 and "[backup_exists]" in again.stderr

    def settings_for(home: Path, url: str = ""):
        return load_settings(env={}, home=str(home), database_url=url)

    # a home that holds anything is never overwritten
    with pytest.raises(InvalidInput) as refused:
        restore(report.out, settings_for(inst.home, inst.settings.database_url), ADMIN)
    assert refused.value.code == "home_not_empty"
    if pg:
        with pytest.raises(InvalidInput) as refused:
            restore(report.out, settings_for(tmp_path / "r0"), ADMIN)
        assert refused.value.code == "database_url_required"
        with pytest.raises(InvalidInput) as refused:       # a database with tables is not empty
            restore(report.out, settings_for(tmp_path / "r0", inst.settings.database_url), ADMIN)
        assert refused.value.code == "store_not_empty"
    with pytest.raises(InvalidInput) as refused:       # the keys come from the backup, into the new home
        restore(report.out, load_settings(env={}, home=str(tmp_path / "r0"), master_key_file=str(tmp_path / "k"),
                                          database_url=pg_url_for() if pg else ""), ADMIN)
    assert refused.value.code == "key_files_set"
    assert not (tmp_path / "r0").exists()
    # a damaged backup is refused, naming the file, before anything is written
    victim = next(name for name in json.loads((report.out / MANIFEST).read_text())["files"]
                  if name.startswith("data/"))
    path = report.out / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput) as refused:
        restore(report.out, settings_for(tmp_path / "r1", pg_url_for() if pg else ""), ADMIN)
    assert refused.value.code == "backup_damaged" and refused.value.fields["file"] == victim
    assert not (tmp_path / "r1").exists()
    result = dps(["restore", str(tmp_path / "src"), "--home", str(tmp_path / "r2")])
    assert result.returncode == 1 and "[not_a_backup]" in result.stderr
