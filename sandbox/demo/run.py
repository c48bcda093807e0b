"""``dp-sandbox demo``: a working instance with synthetic data in under a minute.

Idempotent: a second run reuses the home, its users, datasets and licence, and
does not spend budget again.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import date, timedelta
from collections.abc import Callable

from sqlalchemy import select

from sandbox.audit import Actor
from sandbox.demo.data import write_all
from sandbox.instance import Instance, init_home
from sandbox.persistence.models import Licence, QueryRun, User
from sandbox.settings import Settings
from sandbox.vocabulary import LicenceStatus, Role

DEMO_USERS = (
    ("admin1", Role.ADMIN, "Platform administrator", "Demo Data Authority"),
    ("owner1", Role.OWNER, "Dataset owner", "Demo Health Agency"),
    ("operator1", Role.OPERATOR, "Analyst", "Demo Analytics Ltd"),
    ("reviewer1", Role.REVIEWER, "Output reviewer", "Demo Data Authority"),
    ("reviewer2", Role.REVIEWER, "Output reviewer", "Demo Data Authority"),
)
THIN_PATH = (
    "SELECT sex, COUNT(*) AS people FROM people GROUP BY sex",
    "SELECT SUM(income) AS total_income FROM people",
)
SETUP = Actor("demo-setup", Role.ADMIN)


def _credentials(inst: Instance) -> dict[str, str]:
    path = inst.home / "demo-credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    creds = {name: secrets.token_urlsafe(9) for name, *_ in DEMO_USERS}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    return creds


def run_demo(settings: Settings, *, people: int = 100_000, echo: Callable[[str], None] = print) -> Instance:
    from sandbox.datasets import add_dataset
    from sandbox.licences import grant_licence
    from sandbox.numbers import format_cell
    from sandbox.service import run_query
    from sandbox.users import add_user

    t0 = time.perf_counter()
    init_home(settings)
    inst = Instance.open(settings)
    creds = _credentials(inst)
    with inst.store.read() as s:
        existing = set(s.execute(select(User.name)).scalars())
    for name, role, display, org in DEMO_USERS:
        if name not in existing:
            add_user(inst, SETUP, name, role, creds[name], display_name=display, organisation=org)
    source = inst.home / "demo-source"
    if not (source / "health" / "policy.toml").exists():
        echo(f"generating synthetic data ({people:,} people) ...")
        write_all(source, people=people)
    for name in ("health", "transport", "tax"):
        v = add_dataset(inst, Actor("owner1", Role.OWNER), source / name / "policy.toml")
        echo(f"dataset {v.dataset}: version {v.number} {'added' if v.created else '(already added)'}")
    with inst.store.read() as s:
        has_licence = s.execute(select(Licence).where(Licence.status == LicenceStatus.ACTIVE)).first() is not None
        has_runs = s.execute(select(QueryRun)).first() is not None
    if not has_licence:
        lid = grant_licence(inst, Actor("owner1", Role.OWNER), dataset="health", operator="operator1", epsilon=5.0,
                            delta=5e-7, purpose="Demo: service planning for clinics",
                            expires=date.today() + timedelta(days=365))
        echo(f"granted licence {lid} to operator1 on health (ε = 5)")
    if not has_runs:
        for sql in THIN_PATH:
            result = run_query(inst, "operator1", "health", sql, epsilon=0.5).to_dict()
            echo(f"ran: {sql}")
            for row, ivs in zip(result["rows"], result["intervals"]):
                # the same rule as the CLI and the pages: digits chosen from the interval's width
                echo("   " + "  ".join(format_cell(v, iv) for v, iv in zip(row, ivs)) + "   (95% intervals)")
            echo(f"   charged ε = {result['cost']['epsilon']:g}")
    echo(f"demo ready in {time.perf_counter() - t0:.1f} s: home {inst.home}")
    echo("users (name / role / password):")
    for name, role, *_ in DEMO_USERS:
        echo(f"   {name:<10} {role:<9} {creds[name]}")
    echo(f"act as one of them in the command line with their password: echo PASSWORD | dp-sandbox COMMAND "
         f"--home {inst.home} --as NAME --password-stdin (or set DPS_TOKEN to one of their API tokens)")
    return inst
