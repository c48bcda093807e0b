"""Requests, decisions and refusals on SQLite and PostgreSQL: every refusal has
its own code and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sharing_world import CONDITIONS


def snapshot(inst):
    """Everything a refusal must leave alone: the audit head and every sharing table."""
    from sandbox.persistence import models as m

    with inst.store.read() as s:
        counts = tuple(s.execute(select(func.count()).select_from(t)).scalar_one() for t in (
            m.ShareRequest, m.ShareDelivery, m.ShareObjection, m.ShareDemand, m.Notification,
            m.SharingChange, m.SharingSetting))
        head = s.execute(select(m.AuditHead.seq)).scalar_one()
        statuses = tuple((r.id, r.status, r.last_version) for r in s.execute(select(m.ShareRequest)).scalars())
    return head, counts, statuses


def refused(inst, code, fn, *args, **kwargs):
    from queries.errors import SandboxError

    before = snapshot(inst)
    with pytest.raises(SandboxError) as err:
        fn(*args, **kwargs)
    assert err.value.code == code, err.value.message
    assert snapshot(inst) == before
    return err.value


def test_conditional_request_refusal_must_name_a_declared_condition(world):
    from sandbox.sharing.grants import decide_share, request_share

    inst = world.inst
    refused(inst, "condition_required", request_share, inst, "taxclerk", dataset="benefits", columns=["amount"],
            purpose="Check claims", basis="Benefits Act s. 4")
    refused(inst, "undeclared_condition", request_share, inst, "taxclerk", dataset="benefits", columns=["amount"],
            purpose="Check claims", basis="Benefits Act s. 4", condition="a condition nobody declared")
    req = request_share(inst, "taxclerk", dataset="benefits", columns=["region", "amount"], purpose="Check claims",
                        basis="Benefits Act s. 4", condition=CONDITIONS[0])
    assert req.status.value == "pending"
    # the refusal is refused: it imposes a condition that is not declared, or none
    refused(inst, "undeclared_condition", decide_share, inst, "owner1", req.id, "reject",
            reason="we want more", condition="sign our extra agreement")
    refused(inst, "refusal_condition_required", decide_share, inst, "owner1", req.id, "reject", reason="no")
    refused(inst, "not_dataset_owner", decide_share, inst, "taxboss", req.id, "approve")
    done = decide_share(inst, "owner1", req.id, "reject", reason="no impact assessment received",
                        condition=CONDITIONS[1])
    assert (done.status.value, done.refusal_condition) == ("rejected", CONDITIONS[1])
    refused(inst, "not_pending", decide_share, inst, "owner1", req.id, "approve")

    again = request_share(inst, "taxclerk", dataset="benefits", columns=["amount"], purpose="Check claims",
                          basis="Benefits Act s. 4", condition=CONDITIONS[1])
    from sandbox.sharing.delivery import open_grant

    refused(inst, "grant_pending", open_grant, inst, "taxclerk", again.id)
    assert decide_share(inst, "owner1", again.id, "approve", reason="DPIA on file").status.value == "granted"
    assert open_grant(inst, "taxclerk", again.id).scope.tables == {"claims": {"amount": "integer"}}


def test_revoked_grant_and_other_holders_are_refused(world, tmp_path):
    from products.sharing_extract import write_extract
    from sandbox.sharing.grants import request_share, revoke_share
    from sandbox.sharing.delivery import run_shared_query

    inst = world.inst
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["age"], purpose="p", basis="b")
    refused(inst, "not_grantee", write_extract, inst, "taxboss", grant.id, tmp_path / "x.parquet")
    refused(inst, "not_dataset_owner", revoke_share, inst, "taxboss", grant.id, "not mine")
    assert revoke_share(inst, "owner1", grant.id, "duty ended").status.value == "revoked"
    refused(inst, "grant_revoked", write_extract, inst, "taxclerk", grant.id, tmp_path / "x.parquet")
    refused(inst, "grant_revoked", run_shared_query, inst, "taxclerk", grant.id, "SELECT age FROM people")
    refused(inst, "not_revocable", revoke_share, inst, "owner1", grant.id)
    assert not (tmp_path / "x.parquet").exists()


def test_who_may_not_hold_grants_and_what_never_leaves(world, tmp_path):
    from products.sharing_extract import write_extract
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.feedback import responsibility_list

    inst = world.inst
    ask = dict(dataset="registry", columns=["age"], purpose="Market study", basis="none")
    refused(inst, "company_not_eligible", request_share, inst, "acme", **ask)        # a company operator
    refused(inst, "not_a_department", request_share, inst, "loner", **ask)           # no organisation
    refused(inst, "company_not_eligible", responsibility_list, inst, "acme")
    refused(inst, "column_not_shareable", request_share, inst, "taxclerk", dataset="registry",
            columns=["age", "income"], purpose="p", basis="b")                        # a non-shareable column
    refused(inst, "unknown_column", request_share, inst, "taxclerk", dataset="registry", columns=["salary"],
            purpose="p", basis="b")
    refused(inst, "dataset_restricted", request_share, inst, "taxclerk", dataset="secret", columns=["kind"],
            purpose="p", basis="b")
    refused(inst, "missing_basis", request_share, inst, "taxclerk", dataset="registry", columns=["age"],
            purpose="p", basis=" ")
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["age"], purpose="p", basis="b")
    refused(inst, "column_not_granted", write_extract, inst, "taxclerk", grant.id, tmp_path / "x.csv", "csv",
            where="income > 1000")                                                   # not even in a filter
    refused(inst, "bad_format", write_extract, inst, "taxclerk", grant.id, tmp_path / "x.xlsx", "xlsx")
    refused(inst, "table_not_granted", write_extract, inst, "taxclerk", grant.id, tmp_path / "x.csv", "csv",
            table="visits")


def test_changing_the_sharing_class_is_governed(world, tmp_path):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.sharing.grants import decide_sharing_change, list_sharing_changes, request_share
    from sandbox.sharing.delivery import open_grant
    from sharing_world import write_registry

    inst = world.inst
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["person_id", "age"], purpose="p", basis="b")
    narrower = '[sharing]\nclass = "unconditional"\ncolumns = ["people.age"]\nupdate_frequency = "monthly"'
    add_dataset(inst, Actor("owner1", "owner"), write_registry(world.source / "r2", sharing=narrower))
    [change] = list_sharing_changes(inst, status="pending")
    assert change.proposed["columns"] == ["people.age"]
    # until a reviewer approves, the registered section stays in force
    assert set(open_grant(inst, "taxclerk", grant.id).scope.tables["people"]) == {"person_id", "age"}
    refused(inst, "wrong_role", decide_sharing_change, inst, "owner1", change.id, "approve")
    refused(inst, "missing_reason", decide_sharing_change, inst, "reviewer1", change.id, "reject")
    assert decide_sharing_change(inst, "reviewer1", change.id, "approve", "narrower is fine") == "approved"
    opened = open_grant(inst, "taxclerk", grant.id)
    assert opened.scope.tables == {"people": {"age": "integer"}} and opened.withheld == ("people.person_id",)
    refused(inst, "not_pending", decide_sharing_change, inst, "reviewer1", change.id, "reject", "late")


def test_policy_section_is_validated():
    from queries.errors import PolicyError
    from queries.policy import parse_policy

    base = '[dataset]\nname = "d"\nowner = "o"\nclassification = "{cls}"\n{sharing}\n' \
           '[tables.t]\nsource = "t.csv"\ncolumns.id = {{ class = "identifier" }}\ncolumns.x = {{ class = "public" }}\n'
    ok = parse_policy(base.format(cls="open", sharing='[sharing]\nclass = "unconditional"\ncolumns = ["t.*"]'))
    assert ok.sharing.columns == ("t.x",) and ok.sharing.update_frequency.value == "irregular"
    for cls, sharing, key in (
        ("restricted", '[sharing]\nclass = "unconditional"\ncolumns = ["t.x"]', "sharing.class"),
        ("open", '[sharing]\nclass = "sometimes"', "sharing.class"),
        ("open", '[sharing]\nclass = "conditional"\ncolumns = ["t.x"]', "sharing.conditions"),
        ("open", '[sharing]\nclass = "unconditional"\ncolumns = ["t.x"]\nconditions = ["c"]', "sharing.conditions"),
        ("open", '[sharing]\nclass = "unconditional"\ncolumns = ["t.y"]', "sharing.columns"),
        ("open", '[sharing]\nclass = "unconditional"\ncolumns = ["t.x"]\nupdate_frequency = "often"',
         "sharing.update_frequency"),
        ("open", '[sharing]\nclass = "none"\nextra = 1', "sharing.extra"),
    ):
        with pytest.raises(PolicyError) as err:
            parse_policy(base.format(cls=cls, sharing=sharing))
        assert err.value.key == key
