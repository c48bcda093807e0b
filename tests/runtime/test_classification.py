"""Governed classification and one source per dataset, on SQLite and PostgreSQL.

A move to a less protected class waits for a reviewer, who is never the person
who asked; a move to a more protected class applies at once; an open dataset
holds no identifier column; data that already belongs to a dataset cannot
become a second dataset (and a second budget), only a new version of the first.
"""

from __future__ import annotations

import shutil
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound, PolicyError, SandboxError
from sandbox.audit import Actor
from sandbox.classification import decide_change, list_changes, reclassify
from sandbox.datasets import add_dataset, list_datasets
from sandbox.demo.data import write_tax, write_transport
from sandbox.licences import grant_licence
from sandbox.persistence.models import AuditRecord, Budget, Dataset, DatasetVersion, Notification, User
from scenario import OWNER, build

ADMIN = Actor("admin1", "admin")


@pytest.fixture
def world(instance, tmp_path):
    """The scenario's users and health dataset (conditional, a licence for
    operator1), the open transport dataset and the restricted tax dataset."""
    build(instance, tmp_path / "health", people=300)
    add_dataset(instance, OWNER, write_transport(tmp_path / "transport"))
    add_dataset(instance, OWNER, write_tax(tmp_path / "tax", taxpayers=200))
    return instance


def _class(inst, name: str) -> str:
    return next(d.classification for d in list_datasets(inst) if d.name == name)


def _records(inst, action: str) -> list[dict]:
    with inst.store.read() as s:
        return [dict(r.payload) for r in s.execute(select(AuditRecord).where(AuditRecord.action == action)
                                                   .order_by(AuditRecord.seq)).scalars()]


def _audit_count(inst) -> int:
    with inst.store.read() as s:
        return s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()


def _rewrite(policy: Path, old: str, new: str) -> Path:
    text = policy.read_text(encoding="utf-8")
    assert old in text
    policy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return policy


def test_an_open_policy_with_identifier_columns_is_refused(world, tmp_path):
    policy = _rewrite(tmp_path / "tax" / "policy.toml", 'classification = "restricted"', 'classification = "open"')
    policy = _rewrite(policy, 'name = "tax"', 'name = "tax_open"')
    before = _audit_count(world)
    with pytest.raises(PolicyError) as err:
        add_dataset(world, OWNER, policy)
    assert err.value.code == "open_with_identifiers"
    assert err.value.fields["columns"] == ["returns.taxpayer_id"]
    assert "returns.taxpayer_id" in err.value.message
    assert "tax_open" not in {d.name for d in list_datasets(world)}
    assert _audit_count(world) == before
    assert not list((world.home / "data" / "tax_open").glob("*.dpsv"))     # refused before any ingest


def test_a_dataset_with_identifiers_cannot_be_opened(world):
    before = _audit_count(world)
    with pytest.raises(PolicyError) as err:
        reclassify(world, OWNER, "health", "open", "publish it")
    assert err.value.code == "open_with_identifiers"
    assert "people.person_id" in err.value.fields["columns"]
    assert _class(world, "health") == "conditional" and list_changes(world) == []
    assert _audit_count(world) == before


def test_a_less_protected_class_waits_for_a_reviewer(world):
    raised = reclassify(world, OWNER, "transport", "restricted", "stop publishing for now")
    assert (raised.status, raised.from_class, raised.to_class) == ("applied", "open", "restricted")
    assert _class(world, "transport") == "restricted"
    assert _records(world, "dataset.reclassify")[-1] == {
        "dataset": "transport", "from": "open", "to": "restricted", "reason": "stop publishing for now",
        "version": None, "superseded": []}

    asked = reclassify(world, OWNER, "transport", "open", "checked again: bus counts only")
    assert asked.status == "pending" and asked.change_id is not None
    assert _class(world, "transport") == "restricted"           # keeps its class until approved
    [pending] = list_changes(world, status="pending")
    assert (pending.dataset, pending.from_class, pending.to_class, pending.requested_by) == \
        ("transport", "restricted", "open", "owner1")
    with world.store.read() as s:                              # each reviewer is told, in the same transaction
        told = s.execute(select(User.name, Notification.facts).join(User, User.id == Notification.recipient_id)
                         .where(Notification.kind == "classification_waiting")).all()
    assert sorted(name for name, _ in told) == ["reviewer1", "reviewer2"]
    assert all(facts == {"request": asked.change_id, "dataset": "transport", "from": "restricted", "to": "open"}
               for _, facts in told)

    with pytest.raises(Forbidden) as err:                       # the owner is no reviewer
        decide_change(world, "owner1", asked.change_id, "approve", "mine")
    assert err.value.code == "wrong_role"
    with pytest.raises(InvalidInput) as err:
        decide_change(world, "reviewer1", asked.change_id, "approve", "  ")
    assert err.value.code == "missing_reason"
    with pytest.raises(InvalidInput) as err:
        decide_change(world, "reviewer1", asked.change_id, "maybe", "hm")
    assert err.value.code == "invalid_decision"
    assert _class(world, "transport") == "restricted"

    assert decide_change(world, "reviewer1", asked.change_id, "approve", "aggregates of public counts") == "approved"
    assert _class(world, "transport") == "open"
    assert _records(world, "classification.approve")[-1] == {
        "dataset": "transport", "from": "restricted", "to": "open", "reason": "aggregates of public counts",
        "class": "open"}
    with pytest.raises(Conflict) as err:
        decide_change(world, "reviewer2", asked.change_id, "reject", "too late")
    assert err.value.code == "not_pending"
    [done] = list_changes(world, dataset="transport")
    assert (done.status, done.decided_by, done.decision_reason) == ("approved", "reviewer1",
                                                                    "aggregates of public counts")


def test_a_rejected_request_leaves_the_class(world):
    with pytest.raises(InvalidInput) as err:    # tax has no dataset budget: it cannot be conditional
        reclassify(world, ADMIN, "tax", "conditional", "needed for research")
    assert err.value.code == "not_queryable_policy"
    reclassify(world, ADMIN, "transport", "restricted", "complaint received")
    asked = reclassify(world, ADMIN, "transport", "open", "complaint answered")
    assert asked.status == "pending"
    assert decide_change(world, "reviewer1", asked.change_id, "reject", "wait for the inquiry") == "rejected"
    assert _class(world, "transport") == "restricted"
    assert _records(world, "classification.reject")[-1] == {
        "dataset": "transport", "from": "restricted", "to": "open", "reason": "wait for the inquiry",
        "class": "restricted"}
    [request] = _records(world, "classification.request")
    assert (request["from"], request["to"], request["reason"]) == ("restricted", "open", "complaint answered")


def test_bad_requests_change_nothing(world):
    before = _audit_count(world)
    with pytest.raises(InvalidInput) as err:
        reclassify(world, OWNER, "transport", "public", "why not")
    assert err.value.code == "invalid_classification"
    with pytest.raises(InvalidInput) as err:
        reclassify(world, OWNER, "transport", "restricted", "")
    assert err.value.code == "missing_reason"
    with pytest.raises(Conflict) as err:
        reclassify(world, OWNER, "transport", "open", "again")
    assert err.value.code == "same_classification"
    with pytest.raises(NotFound) as err:
        reclassify(world, OWNER, "nothing", "open", "x")
    assert err.value.code == "unknown_dataset"
    with pytest.raises(Forbidden):
        reclassify(world, Actor("operator1", "operator"), "transport", "restricted", "mine now")
    with pytest.raises(NotFound) as err:
        decide_change(world, "reviewer1", 999, "approve", "x")
    assert err.value.code == "unknown_classification_change"
    assert _audit_count(world) == before
    assert _class(world, "transport") == "open"


def test_a_version_whose_policy_lowers_the_class_files_a_request(world, tmp_path):
    policy = tmp_path / "tax" / "policy.toml"
    _rewrite(policy, 'classification = "restricted"', 'classification = "conditional"')
    policy.write_text(policy.read_text(encoding="utf-8") + "\n[budget]\nepsilon = 4.0\ndelta = 1e-6\n"
                      "max_epsilon_per_query = 1.0\nmax_delta_per_query = 1e-7\n", encoding="utf-8")
    added = add_dataset(world, OWNER, policy)
    assert added.created and added.number == 2
    assert added.classification == "restricted" and added.classification_change is not None
    assert _class(world, "tax") == "restricted"
    with pytest.raises(SandboxError) as err:     # still restricted: no licence
        grant_licence(world, OWNER, dataset="tax", operator="operator1", epsilon=1.0, delta=0, purpose="t",
                      expires=date.today() + timedelta(days=5))
    assert err.value.code == "not_licensable"
    [change] = list_changes(world, status="pending")
    assert (change.version, change.from_class, change.to_class) == (2, "restricted", "conditional")
    assert decide_change(world, "reviewer2", change.id, "approve", "aggregate research needs it") == "approved"
    assert _class(world, "tax") == "conditional"
    assert grant_licence(world, OWNER, dataset="tax", operator="operator1", epsilon=1.0, delta=0, purpose="t",
                         expires=date.today() + timedelta(days=5)) > 0


def test_a_more_protected_class_applies_at_once_and_supersedes_a_request(world, tmp_path):
    policy = _rewrite(tmp_path / "health" / "policy.toml", 'classification = "conditional"',
                      'classification = "restricted"')
    added = add_dataset(world, OWNER, policy)
    assert added.classification == "restricted" and added.classification_change is None
    assert _class(world, "health") == "restricted"
    assert _records(world, "dataset.reclassify")[-1]["version"] == added.number

    assert reclassify(world, OWNER, "transport", "restricted", "pause").status == "applied"
    first = reclassify(world, OWNER, "transport", "open", "resume")
    second = reclassify(world, OWNER, "transport", "open", "resume, with the inquiry's answer")
    assert [(c.id, c.status) for c in list_changes(world, dataset="transport")] == [
        (first.change_id, "superseded"), (second.change_id, "pending")]
    with pytest.raises(Conflict) as err:
        decide_change(world, "reviewer1", first.change_id, "approve", "fine")
    assert err.value.code == "not_pending"


def test_the_same_data_under_another_name_is_refused(world, tmp_path):
    copy = tmp_path / "health_copy"
    shutil.copytree(tmp_path / "health", copy)
    _rewrite(copy / "policy.toml", 'name = "health"', 'name = "health2"')
    before = _audit_count(world)
    with pytest.raises(Conflict) as err:
        add_dataset(world, OWNER, copy / "policy.toml")
    assert err.value.code == "duplicate_source" and err.value.fields["dataset"] == "health"
    assert "--version-of health" in err.value.message
    assert "health2" not in {d.name for d in list_datasets(world)}
    assert _audit_count(world) == before
    assert not any((world.home / "data" / "health2").glob("*.enc*"))


def test_a_new_version_of_the_source_keeps_its_budget(world, tmp_path):
    from sandbox.service import run_query

    run_query(world, "operator1", "health", "SELECT COUNT(*) AS n FROM people", epsilon=0.5)
    with world.store.read() as s:
        spent = s.execute(select(Budget.spent_epsilon).join(Dataset, Dataset.id == Budget.dataset_id)
                          .where(Dataset.name == "health", Budget.scope == "dataset")).scalar_one()
    assert spent > 0

    copy = tmp_path / "health_copy"
    shutil.copytree(tmp_path / "health", copy)
    _rewrite(copy / "policy.toml", 'name = "health"', 'name = "health2"')
    _rewrite(copy / "policy.toml", "epsilon = 10.0", "epsilon = 20.0")
    with pytest.raises(NotFound) as err:
        add_dataset(world, OWNER, copy / "policy.toml", version_of="nothing")
    assert err.value.code == "unknown_dataset"
    added = add_dataset(world, OWNER, copy / "policy.toml", version_of="health")
    assert (added.dataset, added.number, added.created) == ("health", 2, True)
    with world.store.read() as s:
        budgets = s.execute(select(Budget).join(Dataset, Dataset.id == Budget.dataset_id)
                            .where(Dataset.name == "health", Budget.scope == "dataset")).scalars().all()
        assert [(b.spent_epsilon, b.epsilon) for b in budgets] == [(spent, 20.0)]
        assert s.execute(select(func.count()).select_from(Dataset).where(Dataset.name == "health2")).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(DatasetVersion)
                         .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                         .where(Dataset.name == "health")).scalar_one() == 2


def test_two_racing_registrations_of_the_same_data_make_one_dataset(world, tmp_path):
    folders = []
    for name in ("twin_a", "twin_b"):
        folder = tmp_path / name
        write_transport(folder)
        _rewrite(folder / "policy.toml", 'name = "transport"', f'name = "{name}"')
        # the same rows as each other, not as transport: one more stop
        with (folder / "ridership.csv").open("a", encoding="utf-8") as f:
            f.write("S999,2024-01,7\n")
        folders.append(folder)
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def register(folder: Path) -> None:
        start.wait()
        try:
            outcomes.append(add_dataset(world, OWNER, folder / "policy.toml"))
        except SandboxError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=register, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    added = [o for o in outcomes if not isinstance(o, SandboxError)]
    refused = [o for o in outcomes if isinstance(o, SandboxError)]
    assert len(added) == 1 and len(refused) == 1, [(getattr(o, "dataset", o), getattr(o, "content_hash", "")) for o in outcomes]
    assert refused[0].code == "duplicate_source" and refused[0].fields["dataset"] == added[0].dataset
    names = {d.name for d in list_datasets(world)}
    assert len(names & {"twin_a", "twin_b"}) == 1


def test_the_store_migration_claims_each_existing_source_once(world):
    from sandbox.persistence.models import DatasetSource

    with world.store.read() as s:
        sources = {src.content_hash: src.dataset_id for src in s.execute(select(DatasetSource)).scalars()}
        versions = {v.content_hash: v.dataset_id for v in s.execute(select(DatasetVersion)).scalars()}
    assert sources == versions



def test_migration_0009_gives_each_registered_source_to_its_first_dataset(store_url):
    """A store at 0008 with versions already registered (two datasets sharing one
    source, one dataset with the same source in two versions) is upgraded: each
    content hash belongs to the dataset that registered it first."""
    from alembic import command
    from sqlalchemy import text

    from sandbox.persistence.store import Store, alembic_config

    store = Store(store_url)
    try:
        cfg = alembic_config(store_url)
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0008")
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, name, role, display_name, organisation, password_hash, active, "
                              "created_at) VALUES (1, 'owner1', 'owner', '', '', 'x', :t, :now)"),
                         {"t": True, "now": "2026-01-01 00:00:00+00:00"})
            for ds_id, name in ((1, "first"), (2, "second"), (3, "other")):
                conn.execute(text("INSERT INTO datasets (id, name, title, description, publisher, owner_id, "
                                  "classification, created_at) VALUES (:id, :name, :name, '', '', 1, 'open', :now)"),
                             {"id": ds_id, "name": name, "now": f"2026-01-0{ds_id} 00:00:00+00:00"})
            for vid, ds_id, number, chash in ((1, 1, 1, "a" * 64), (2, 1, 2, "a" * 64), (3, 2, 1, "a" * 64),
                                              (4, 3, 1, "b" * 64)):
                conn.execute(text("INSERT INTO dataset_versions (id, dataset_id, number, content_hash, policy_hash, "
                                  "path, wrapped_key, policy, row_counts, quality, created_by, created_at) VALUES "
                                  "(:id, :ds, :n, :h, 'p', 'x', :k, '{}', '{}', '{}', 1, :now)"),
                             {"id": vid, "ds": ds_id, "n": number, "h": chash, "k": b"k",
                              "now": f"2026-01-0{vid} 00:00:00+00:00"})
        store.migrate()
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT content_hash, dataset_id FROM dataset_sources ORDER BY content_hash"))
            assert [tuple(r) for r in rows] == [("a" * 64, 1), ("b" * 64, 3)]
            assert conn.execute(text("SELECT count(*) FROM classification_changes")).scalar_one() == 0
    finally:
        store.dispose()
