"""Builds a small, real instance for service-level tests: demo data ingested,
users for each role, one licence."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sandbox.audit import Actor
from sandbox.datasets import add_dataset
from sandbox.demo.data import write_health
from sandbox.licences import grant_licence
from sandbox.users import add_user

OWNER = Actor("owner1", "owner")
PASSWORD = "long enough password"


def build(inst, source: Path, *, people: int = 3_000, epsilon: float = 5.0, approval: str = "automatic",
          accounting: str = "approx") -> int:
    """Users owner1, operator1, operator2, reviewer1, reviewer2; the health dataset;
    a licence for operator1. Returns the licence id."""
    admin = Actor("setup", "admin")
    for name, role in [("owner1", "owner"), ("operator1", "operator"), ("operator2", "operator"),
                       ("reviewer1", "reviewer"), ("reviewer2", "reviewer")]:
        add_user(inst, admin, name, role, PASSWORD)
    if not (source / "policy.toml").exists():
        write_health(source, people=people)
    add_dataset(inst, OWNER, source / "policy.toml")
    return grant_licence(inst, OWNER, dataset="health", operator="operator1", epsilon=epsilon, delta=1e-6,
                         purpose="tests", expires=date.today() + timedelta(days=30), approval=approval,
                         accounting=accounting)
