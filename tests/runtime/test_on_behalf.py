"""A person deciding in someone else's queue is recorded as acting on that
person's behalf: a delegated reviewer deciding the owner's query templates and
query approvals. The owner deciding for themselves names nobody else. On SQLite
and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from sandbox.approvals import (decide_request, decide_template, delegate, parse_parameter_spec, propose_template,
                               request_query)
from sandbox.audit import verify_chain
from sandbox.persistence.models import AuditRecord
from scenario import build


def decisions(inst, prefix: str) -> list[tuple[str, str, str | None]]:
    with inst.store.read() as s:
        rows = s.execute(select(AuditRecord).where(AuditRecord.action.like(prefix + "%"))
                         .order_by(AuditRecord.seq)).scalars()
        return [(r.action, r.actor, r.on_behalf_of) for r in rows]


def test_a_delegated_reviewer_decides_on_the_owners_behalf(instance, tmp_path_factory):
    build(instance, tmp_path_factory.getbasetemp() / "src-behalf", approval="templates")
    delegate(instance, "owner1", "health", "reviewer1")
    spec = [parse_parameter_spec("city:string:Oslo|Bergen")]
    sql = "SELECT COUNT(*) AS n FROM people WHERE city = :city"
    first = propose_template(instance, "operator1", "health", title="a", purpose="p", sql=sql, parameters=spec,
                             epsilon_per_run=0.1)
    second = propose_template(instance, "operator1", "health", title="b", purpose="p", sql=sql, parameters=spec,
                              epsilon_per_run=0.1)
    decide_template(instance, "reviewer1", first, "approve")
    decide_template(instance, "owner1", second, "reject", "not needed")
    assert decisions(instance, "template.") == [
        ("template.propose", "operator1", None), ("template.propose", "operator1", None),
        ("template.approve", "reviewer1", "owner1"), ("template.reject", "owner1", None)]
    with instance.store.read() as s:
        assert verify_chain(s, instance.signer.public).ok


def test_a_delegated_reviewer_decides_query_approvals_on_the_owners_behalf(instance, tmp_path_factory):
    build(instance, tmp_path_factory.getbasetemp() / "src-behalf-each", approval="each")
    delegate(instance, "owner1", "health", "reviewer2")
    rid = request_query(instance, "operator1", "health", "SELECT COUNT(*) AS n FROM people", purpose="size",
                        epsilon=0.1)
    decide_request(instance, "reviewer2", rid, "reject", "too broad")
    assert decisions(instance, "request.") == [("request.submit", "operator1", None),
                                               ("request.reject", "reviewer2", "owner1")]
