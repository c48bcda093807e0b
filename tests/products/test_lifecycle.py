"""The product state machine, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest
from sqlalchemy import select

from products.manifest import verify_path
from products.service import (
    draft_product, edit_product, get_product, list_products, release_product, review_product, submit_product,
    withdraw_product,
)
from products_world import CITY_ROWS, CITY_SQL, OWNER, release
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from sandbox.audit import verify_chain
from sandbox.licences import revoke_licence
from sandbox.persistence.models import AuditRecord, Budget, Licence


def actions(inst, product_id: int) -> list[str]:
    with inst.store.read() as s:
        return [r.action for r in s.execute(select(AuditRecord).where(AuditRecord.object_type == "product",
                                                                     AuditRecord.object_id == str(product_id))
                                            .order_by(AuditRecord.seq)).scalars()]


def test_draft_submit_two_reviews_release(world):
    inst = world.inst
    run = world.run(CITY_SQL, CITY_ROWS)
    d = draft_product(inst, "operator1", title="Visits by city", run_ids=[run], purpose="planning")
    assert d.state == "draft" and d.versions[0].run_ids == (run,)
    with pytest.raises(Conflict) as e:
        release_product(inst, "operator1", d.id)
    assert e.value.code == "wrong_state"
    with pytest.raises(InvalidInput) as e:
        submit_product(inst, "operator1", d.id, attestation="  ")
    assert e.value.code == "missing_attestation"
    d = submit_product(inst, "operator1", d.id, attestation="I am responsible.")
    assert d.state == "submitted" and d.review_round == 1 and d.checks
    with pytest.raises(Forbidden) as e:
        review_product(inst, "operator1", d.id, "approve", "checked")
    assert e.value.code == "self_review"
    with pytest.raises(Forbidden):
        review_product(inst, "operator2", d.id, "approve", "checked")
    d = review_product(inst, "reviewer1", d.id, "approve", "checked")
    assert (d.state, d.approvals) == ("submitted", 1)
    with pytest.raises(Conflict) as e:
        review_product(inst, "reviewer1", d.id, "approve", "checked")
    assert e.value.code == "already_reviewed"
    assert get_product(inst, "operator1", d.id).approvals == 1
    d = review_product(inst, "reviewer2", d.id, "approve", "checked")
    assert (d.state, d.approvals) == ("approved", 2)
    with pytest.raises(Forbidden):
        release_product(inst, "operator2", d.id)
    pkg = release_product(inst, "operator1", d.id)
    assert get_product(inst, None, d.id).state == "released"
    assert verify_path(pkg.path, inst.signer.public_pem()).ok
    assert actions(inst, d.id) == ["product.draft", "product.submit", "product.review", "product.review",
                                   "product.release"]
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok


def test_return_loop_and_edit_resets_votes(world):
    inst = world.inst
    run = world.run(CITY_SQL, CITY_ROWS)
    pid = draft_product(inst, "operator1", title="t", run_ids=[run]).id
    submit_product(inst, "operator1", pid, attestation="ok")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    with pytest.raises(InvalidInput) as e:
        review_product(inst, "reviewer2", pid, "return")
    assert e.value.code == "missing_reason"
    d = review_product(inst, "reviewer2", pid, "return", "describe the method")
    assert d.state == "returned"
    with pytest.raises(Conflict):
        review_product(inst, "reviewer3", pid, "approve", "checked")
    edit_product(inst, "operator1", pid, description="Counts of people per city, ε = 0.5.")
    d = submit_product(inst, "operator1", pid, attestation="ok")
    assert (d.state, d.review_round, d.approvals) == ("submitted", 2, 0)
    review_product(inst, "reviewer1", pid, "approve", "checked")          # a new round: votes again
    # editing a submitted product resets the votes
    d = edit_product(inst, "operator1", pid, title="Visits by city")
    assert (d.state, d.review_round, d.approvals) == ("submitted", 3, 0)
    review_product(inst, "reviewer1", pid, "approve", "checked")
    d = review_product(inst, "reviewer3", pid, "approve", "checked")
    assert d.state == "approved"
    old_votes = [r for r in d.reviews if r.round < 3]
    assert old_votes and not any(r.counts for r in old_votes)


def test_reject_is_final(sqlite_world):
    inst = sqlite_world.inst
    pid = draft_product(inst, "operator1", title="t", run_ids=[sqlite_world.run(CITY_SQL, CITY_ROWS)]).id
    submit_product(inst, "operator1", pid, attestation="ok")
    d = review_product(inst, "reviewer1", pid, "reject", "not within the licence's purpose")
    assert d.state == "rejected"
    for call in (lambda: submit_product(inst, "operator1", pid, attestation="ok"),
                 lambda: edit_product(inst, "operator1", pid, title="x"),
                 lambda: withdraw_product(inst, "operator1", pid, "x")):
        with pytest.raises(Conflict):
            call()


def test_only_own_charged_runs_of_one_dataset(sqlite_world):
    w = sqlite_world
    inst = w.inst
    mine = w.run(CITY_SQL, CITY_ROWS)
    theirs = w.run(CITY_SQL, CITY_ROWS, operator="operator2", licence_id=w.licence_id + 1)
    with pytest.raises(NotFound) as e:
        draft_product(inst, "operator2", title="t", run_ids=[mine])
    assert e.value.code == "unknown_run"
    with pytest.raises(InvalidInput):
        draft_product(inst, "operator1", title="t", run_ids=[])
    with pytest.raises(InvalidInput):
        draft_product(inst, "operator1", title="  ", run_ids=[mine])
    with pytest.raises(InvalidInput):
        draft_product(inst, "operator1", title="t", run_ids=[mine, mine])
    with pytest.raises(Forbidden):
        draft_product(inst, "reviewer1", title="t", run_ids=[mine])
    assert draft_product(inst, "operator2", title="t", run_ids=[theirs]).author == "operator2"


def test_visibility_of_unreleased_products(sqlite_world):
    inst = sqlite_world.inst
    pid = draft_product(inst, "operator1", title="t", run_ids=[sqlite_world.run(CITY_SQL, CITY_ROWS)]).id
    for viewer in (None, "operator2"):
        with pytest.raises(NotFound):
            get_product(inst, viewer, pid)
        assert list_products(inst, viewer) == []
    assert [p.id for p in list_products(inst, "reviewer1")] == [pid]
    assert [p.id for p in list_products(inst, "owner1")] == [pid]


def test_withdrawals(world):
    inst = world.inst
    draft = draft_product(inst, "operator1", title="t", run_ids=[world.run(CITY_SQL, CITY_ROWS)]).id
    with pytest.raises(Forbidden):
        withdraw_product(inst, "operator2", draft, "not mine")
    assert withdraw_product(inst, "operator1", draft, "changed my mind").state == "withdrawn"

    pid = release(world, [world.run(CITY_SQL, CITY_ROWS)])
    with inst.store.read() as s:
        spent = s.execute(select(Budget.spent_epsilon).where(Budget.scope == "dataset")).scalar_one()
    with pytest.raises(Forbidden) as e:
        withdraw_product(inst, "operator1", pid, "oops")
    assert e.value.code == "admin_only"
    with pytest.raises(InvalidInput):
        withdraw_product(inst, "admin1", pid, "")
    d = withdraw_product(inst, "admin1", pid, "An input file was found to be wrong.")
    assert d.state == "withdrawn"
    public = get_product(inst, None, pid)                 # still public, marked withdrawn
    assert public.state == "withdrawn" and public.withdraw_reason.startswith("An input")
    from products.service import package_path

    assert verify_path(package_path(inst, None, pid)).ok
    with inst.store.read() as s:                          # ε is never refunded
        assert s.execute(select(Budget.spent_epsilon).where(Budget.scope == "dataset")).scalar_one() == spent


def test_licence_revocation_cancels_pending_products(world):
    inst = world.inst
    pid = draft_product(inst, "operator1", title="t", run_ids=[world.run(CITY_SQL, CITY_ROWS)]).id
    submit_product(inst, "operator1", pid, attestation="ok")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    revoke_licence(inst, OWNER, world.licence_id, "breach of terms")
    assert get_product(inst, "operator1", pid).state == "cancelled"
    with pytest.raises(Conflict):
        review_product(inst, "reviewer2", pid, "approve", "checked")
    assert actions(inst, pid)[-1] == "product.cancel"


def test_licence_expiry_cancels_pending_products(sqlite_world):
    w = sqlite_world
    inst = w.inst
    run = w.run(CITY_SQL, CITY_ROWS)
    pid = draft_product(inst, "operator1", title="t", run_ids=[run]).id
    submit_product(inst, "operator1", pid, attestation="ok")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    with inst.store.transaction() as s:
        s.get(Licence, w.licence_id).expires_at = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(Conflict):
        review_product(inst, "reviewer2", pid, "approve", "checked")
    d = get_product(inst, "operator1", pid)
    assert d.state == "cancelled"
    with pytest.raises(Forbidden) as e:
        draft_product(inst, "operator1", title="again", run_ids=[run])
    assert e.value.code == "licence_expired"


def test_reviewers_required_setting(make_instance):
    from products_world import build_world

    w = build_world(make_instance(reviewers_required=3))
    pid = draft_product(w.inst, "operator1", title="t", run_ids=[w.run(CITY_SQL, CITY_ROWS)]).id
    submit_product(w.inst, "operator1", pid, attestation="ok")
    for i, name in enumerate(("reviewer1", "reviewer2", "reviewer3"), start=1):
        d = review_product(w.inst, name, pid, "approve", "checked")
        assert d.approvals == i
    assert d.state == "approved"
