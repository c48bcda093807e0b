"""The transparency register lists approved query templates per licence; a
confidential template's SQL stays out of it. (Templates are stored as rows, as
the world stores its runs; their approval flow is tested in tests/runtime.)"""

from __future__ import annotations

from sqlalchemy import select

from products.service import transparency_register
from sandbox.persistence.approval_models import QueryTemplate
from sandbox.persistence.models import User

SQL = "SELECT COUNT(*) AS n FROM people WHERE city = :city"
CITY = [{"name": "city", "type": "string", "allowed": ["Oslo", "Bergen"]}]


def _template(w, title: str, status: str, confidential: bool = False, runs_used: int = 0) -> int:
    with w.inst.store.transaction() as s:
        op = s.execute(select(User).where(User.name == "operator1")).scalar_one()
        t = QueryTemplate(licence_id=w.licence_id, dataset_id=w.dataset_id, author_id=op.id, title=title,
                          purpose="Planning per city", sql=SQL, parameters=CITY, epsilon_per_run=0.1, max_runs=5,
                          runs_used=runs_used, epsilon_used=0.1 * runs_used, confidential=confidential,
                          status=status, fingerprint="f" * 64, policy_hash="p" * 64)
        s.add(t)
        s.flush()
        return t.id


def test_register_lists_approved_templates(sqlite_world):
    w = sqlite_world
    open_id = _template(w, "Open counts", "approved", runs_used=2)
    secret_id = _template(w, "Secret counts", "approved", confidential=True)
    pending_id = _template(w, "Not yet decided", "proposed")
    rejected_id = _template(w, "Refused", "rejected")
    reg = transparency_register(w.inst).to_dict()
    by_id = {t["id"]: t for t in reg["templates"]}
    assert set(by_id) == {open_id, secret_id}
    assert pending_id not in by_id and rejected_id not in by_id
    shown = by_id[open_id]
    assert (shown["title"], shown["purpose"], shown["epsilon_per_run"], shown["runs_used"]) == (
        "Open counts", "Planning per city", 0.1, 2)
    assert shown["licence_id"] == w.licence_id and shown["dataset"] == "health"
    assert shown["sql"] == SQL
    assert by_id[secret_id]["sql"] is None
    assert ":city" not in str(by_id[secret_id])
    assert by_id[secret_id]["parameters"] == CITY
