"""A small world for the sharing tests: three organisations, their users, and
three datasets written as CSV with their policies (one per sharing class)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PASSWORD = "correct horse battery"

HEALTH = "Health Department"
TAX = "Tax Department"
ACME = "Acme Analytics"

USERS = (  # name, role, organisation
    ("owner1", "owner", HEALTH),
    ("reviewer1", "reviewer", None),
    ("admin1", "admin", None),
    ("taxclerk", "operator", TAX),
    ("taxboss", "operator", TAX),
    ("acme", "operator", ACME),
    ("loner", "operator", None),
)

CONDITIONS = ("statutory duty to assess benefits", "data protection impact assessment on file")


def people_rows(n: int, shift: int = 0) -> list[str]:
    cities = ("Oslo", "Bergen", "Tromso")
    return [f"{i},{20 + (i * 7 + shift) % 60},{cities[i % 3]},{1000 * i}" for i in range(1, n + 1)]


def write_registry(folder: Path, *, rows: int = 12, shift: int = 0, sharing: str | None = None) -> Path:
    """``registry``: conditional for licences, unconditional for sharing of
    person_id, age and city (income is never shareable)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.csv").write_text("person_id,age,city,income\n" + "\n".join(people_rows(rows, shift)) + "\n")
    (folder / "policy.toml").write_text(f'''
[dataset]
name = "registry"
title = "Population registry"
owner = "owner1"
publisher = "{HEALTH}"
classification = "conditional"
privacy_unit = "person_id"

[budget]
epsilon = 5.0
delta = 1e-6

{sharing if sharing is not None else SHARING_UNCONDITIONAL}

[tables.people]
source = "people.csv"
rows_per_unit = 1
columns.person_id = {{ class = "identifier" }}
columns.age       = {{ class = "quasi", min = 0, max = 120 }}
columns.city      = {{ class = "quasi" }}
columns.income    = {{ class = "sensitive", min = 0, max = 1000000 }}
''')
    return folder / "policy.toml"


SHARING_UNCONDITIONAL = '''[sharing]
class = "unconditional"
columns = ["people.person_id", "people.age", "people.city"]
update_frequency = "monthly"'''


def write_benefits(folder: Path) -> Path:
    """``benefits``: conditional for licences (an open dataset may not hold the
    claim_id identifier), conditionally shareable; ``claims.*`` leaves claim_id out."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims.csv").write_text("claim_id,region,amount\n" + "\n".join(
        f"{i},{('North', 'South')[i % 2]},{i * 10}" for i in range(1, 9)) + "\n")
    conditions = ", ".join(f'"{c}"' for c in CONDITIONS)
    (folder / "policy.toml").write_text(f'''
[dataset]
name = "benefits"
title = "Benefit claims"
owner = "owner1"
classification = "conditional"
privacy_unit = "claim_id"

[budget]
epsilon = 5.0
delta = 1e-6

[sharing]
class = "conditional"
columns = ["claims.*"]
update_frequency = "yearly"
conditions = [{conditions}]

[tables.claims]
source = "claims.csv"
columns.claim_id = {{ class = "identifier" }}
columns.region   = {{ class = "public" }}
columns.amount   = {{ class = "public" }}
''')
    return folder / "policy.toml"


def write_secret(folder: Path) -> Path:
    """``secret``: restricted, sharing class none."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cases.csv").write_text("case_id,kind\n1,a\n2,b\n")
    (folder / "policy.toml").write_text('''
[dataset]
name = "secret"
title = "Sealed cases"
owner = "owner1"
classification = "restricted"

[sharing]
class = "none"

[tables.cases]
source = "cases.csv"
columns.case_id = { class = "identifier" }
columns.kind    = { class = "quasi" }
''')
    return folder / "policy.toml"


@dataclass
class World:
    inst: object
    source: Path


def build_world(inst, source: Path) -> World:
    from sandbox.audit import SYSTEM, Actor
    from sandbox.datasets import add_dataset
    from sandbox.organisations import add_organisation
    from sandbox.users import add_user

    add_organisation(inst, SYSTEM, HEALTH, "department")
    add_organisation(inst, SYSTEM, TAX, "department")
    add_organisation(inst, SYSTEM, ACME, "company")
    for name, role, org in USERS:
        add_user(inst, SYSTEM, name, role, PASSWORD, display_name=name.title(), org=org)
    owner = Actor("owner1", "owner")
    add_dataset(inst, owner, write_registry(source / "registry"))
    add_dataset(inst, owner, write_benefits(source / "benefits"))
    add_dataset(inst, owner, write_secret(source / "secret"))
    return World(inst, source)
