"""A small world for product tests: users of every role, the health dataset
registered as store rows, licences, and charged query runs built from real
plans (``queries.plan_query``) with noisy-looking results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, UTC
from typing import Any

from sqlalchemy import select

from queries import plan_query
from queries.policy import parse_policy
from sandbox.audit import Actor
from sandbox.demo.data import HEALTH_POLICY
from sandbox.licences import grant_licence
from sandbox.persistence.models import Budget, Dataset, DatasetVersion, QueryRun, User
from sandbox.users import add_user

PASSWORD = "long enough password"
ADMIN = Actor("setup", "admin")
OWNER = Actor("owner1", "owner")
USERS = [("owner1", "owner"), ("operator1", "operator"), ("operator2", "operator"), ("reviewer1", "reviewer"),
         ("reviewer2", "reviewer"), ("reviewer3", "reviewer"), ("admin1", "admin")]


@dataclass
class World:
    inst: Any
    licence_id: int
    dataset_id: int
    version_id: int

    def run(self, sql: str, rows: list[list[Any]], *, operator: str = "operator1", epsilon: float = 0.5,
            half_width: float = 3.0, licence_id: int | None = None,
            version_id: int | None = None) -> str:
        """Insert a charged run of ``sql`` with the given noisy rows (numbers get
        an interval of ± half_width) and charge the budgets."""
        policy = parse_policy(HEALTH_POLICY)
        plan = plan_query(sql, policy, salt="test")
        columns = [o.name for o in plan.outputs]
        intervals = [[[v - half_width, v + half_width] if isinstance(v, (int, float)) and not o.is_key else None
                      for v, o in zip(r, plan.outputs)] for r in rows]
        result = {"columns": columns, "rows": rows, "intervals": intervals, "alpha": 0.05, "epsilon": epsilon,
                  "delta": 0.0,
                  "mechanisms": [{"aggregate": "a0", "measure": "count", "mechanism": "discrete_laplace",
                                  "scale": 1 / epsilon, "sensitivity": 1.0, "epsilon": epsilon, "rho": 0.0,
                                  "delta": 0.0}], "notes": []}
        run_id = str(uuid.uuid4())
        with self.inst.store.transaction() as s:
            op = s.execute(select(User).where(User.name == operator)).scalar_one()
            s.add(QueryRun(id=run_id, licence_id=licence_id or self.licence_id, dataset_id=self.dataset_id,
                           version_id=version_id or self.version_id, operator_id=op.id, sql=sql,
                           fingerprint=plan.fingerprint, plan=plan.summary(), status="charged", epsilon=epsilon,
                           delta=0.0, result=result, finished_at=datetime.now(UTC)))
            for b in s.execute(select(Budget).where(Budget.dataset_id == self.dataset_id)).scalars():
                if b.scope == "dataset" or b.licence_id == (licence_id or self.licence_id):
                    b.spent_epsilon += epsilon
        return run_id


def build_world(inst) -> World:
    for name, role in USERS:
        add_user(inst, ADMIN, name, role, PASSWORD, organisation=f"{name} org")
    with inst.store.transaction() as s:
        owner = s.execute(select(User).where(User.name == "owner1")).scalar_one()
        ds = Dataset(name="health", title="Health records", description="synthetic", publisher="Health Agency",
                     owner_id=owner.id, classification="conditional", privacy_unit="person_id")
        s.add(ds)
        s.flush()
        v = DatasetVersion(dataset_id=ds.id, number=1, content_hash="a" * 64, policy_hash="b" * 64, path="/nonexistent",
                           wrapped_key=b"k", policy={}, row_counts={}, quality={}, created_by=owner.id)
        s.add(v)
        s.add(Budget(scope="dataset", dataset_id=ds.id, epsilon=20.0, delta=1e-5, max_epsilon_per_query=2.0,
                     max_delta_per_query=1e-6))
        s.flush()
        ids = ds.id, v.id
    lid = grant_licence(inst, OWNER, dataset="health", operator="operator1", epsilon=10.0, delta=1e-6,
                        purpose="service planning", expires=date.today() + timedelta(days=30))
    grant_licence(inst, OWNER, dataset="health", operator="operator2", epsilon=5.0, delta=1e-6,
                  purpose="other study", expires=date.today() + timedelta(days=30))
    return World(inst, lid, *ids)


CITY_SQL = "SELECT city, COUNT(*) AS n FROM people GROUP BY city"
CITY_ROWS = [["Oslo", 120.4], ["Bergen", 88.0], ["Trondheim", 5.2], ["Stavanger", 61.0]]


def release(world: World, run_ids: list[str], *, title: str = "A product", author: str = "operator1") -> int:
    """Draft, submit, approve twice and release; returns the product id."""
    from products.service import draft_product, release_product, review_product, submit_product

    inst = world.inst
    pid = draft_product(inst, author, title=title, run_ids=run_ids, purpose="planning").id
    submit_product(inst, author, pid, attestation="I am responsible.")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    review_product(inst, "reviewer2", pid, "approve", "checked")
    release_product(inst, author, pid)
    return pid
