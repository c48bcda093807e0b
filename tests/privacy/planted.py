"""A small conditional dataset with one planted person T, registered through the
real ingestion path, and an instance to query it through the service and the API.

T (``person_id = 1``, the first row of every private table) is the only person in
city ``Planted``, earns far above the clamp, has a diagnosis nobody else has, a sex
outside the declared domain, and carries, column by column, a value that makes
some function fail or a fan-out blow up: an age that is not a month, the smallest
BIGINT, a date-part name that is not one, a code that is not a number, a day
count that overflows a date, a DOUBLE too large for a BIGINT, a NaN weight, a
NULL height and a NULL integer score, and visits (as many as a test asks) at the
only clinic with a long staff list.

Nobody lives in ``Nowhere``, so a condition ``city = 'Nowhere'`` selects no one.
``CITY_T`` and ``CITY_F`` have the same length, so a T query and its F twin refuse
at the same character offsets.

Public lookup tables: ``clinics`` (one row per clinic), ``staff`` (one row per
clinic, except 60 for T's clinic ``CQ9``), ``digits`` (0..9) and ``regions``
(one row per city, ``Planted`` included: the city list is public).

Every other person is ordinary and the groups they form are large (hundreds of
people), so partition selection keeps them with near certainty, and a group of
T alone is dropped with near certainty.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CITY_T, CITY_F = "Planted", "Nowhere"
assert len(CITY_T) == len(CITY_F)
CITIES = ("Oslo", "Bergen", "Tromso")
PEOPLE = 1023                      # ordinary people (T comes on top): 1023 · 2^53 = 2^63 - 2^53
DIAGNOSES = ("J06", "I10", "E11")
BLOOD = ("A", "B", "AB", "O")      # ordinary people cycle A, B, AB, O; T is "O" and comes first
CLINICS = ("C01", "C02", "C03", "C04")
T_CLINIC = "CQ9"
T_STAFF = 60                       # staff rows of T's clinic (fan-out 60 <= max_fan_out 100)

# T's values. The distinctive ones are canaries: none may ever reach a log.
T = {
    "person_id": 1, "age": 13, "sex": "X", "income": 987654, "city": CITY_T, "diagnosis": "Q9Z7",
    "blood": "O", "big": -9223372036854775808, "unit": "wxyzq", "code": "zq7x", "birth": date(1903, 7, 19),
    "days": 2_000_000_000, "weight": float("nan"), "height": None, "huge": 1e19, "score": None,
}
CANARIES = ("Q9Z7", "987654", "wxyzq", "zq7x", "9223372036854775808", "1903-07-19", "2000000000", "CQ9")

# Settings of the functional tests (not of the timing test, which keeps the defaults):
# one worker; responses padded to 1 ms only (response time is the timing test's
# subject); a short wall-clock limit, which is where failed runs answer; and no
# practical limit on runs in flight: runs are sequential there, and a run left in
# flight by a crash must not refuse every later query (the limit has its own test).
FAST = {"workers": 1, "min_response_ms": 1, "response_grid_ratio": 0.0, "query_timeout_s": 1.0,
        "max_concurrent_runs": 1000}

OWNER, OPERATOR = "owner1", "operator1"
PASSWORD = "planted person password"
DATASET = "planted"

POLICY = """\
[dataset]
name = "planted"
title = "One planted person"
description = "Synthetic people, one of them planted, for side-channel tests."
owner = "owner1"
classification = "conditional"
privacy_unit = "person_id"
max_groups_per_unit = 1

[budget]
epsilon = 1000.0
delta = 0.01
max_epsilon_per_query = 1.0
max_delta_per_query = 1e-7

[tables.people]
source = "people.parquet"
rows_per_unit = 1
columns.person_id = { class = "identifier" }
columns.age       = { class = "quasi", min = 0, max = 120 }
columns.sex       = { class = "quasi", domain = ["F", "M"] }
columns.income    = { class = "sensitive", min = 0, max = 200000 }
columns.city      = { class = "quasi" }
columns.diagnosis = { class = "sensitive" }
columns.blood     = { class = "quasi" }
columns.big       = { class = "sensitive" }
columns.unit      = { class = "quasi" }
columns.code      = { class = "quasi" }
columns.birth     = { class = "quasi" }
columns.days      = { class = "quasi", min = 0, max = 1000 }
columns.weight    = { class = "sensitive", min = 0, max = 200 }
columns.height    = { class = "sensitive", min = 0, max = 250 }
columns.huge      = { class = "sensitive" }
columns.score     = { class = "quasi", min = 0, max = 100 }

[tables.visits]
source = "visits.parquet"
max_rows_per_unit = 10
max_groups_per_unit = 2
columns.visit_id   = { class = "identifier" }
columns.person_id  = { class = "identifier" }
columns.clinic     = { class = "quasi" }
columns.cost       = { class = "sensitive", min = 0, max = 5000 }

[tables.clinics]
source = "clinics.csv"
public = true
columns.clinic   = { class = "public" }
columns.district = { class = "public", domain = ["North", "South"] }

[tables.staff]
source = "staff.csv"
public = true
columns.clinic = { class = "public" }
columns.role   = { class = "public" }

[tables.digits]
source = "digits.csv"
public = true
columns.d = { class = "public", min = 0, max = 9 }

[tables.regions]
source = "regions.csv"
public = true
columns.city   = { class = "public" }
columns.region = { class = "public", domain = ["East", "West"] }
"""


def _ordinary(i: int) -> dict:
    """Person ``i`` (0-based) of the ordinary population."""
    return {
        "person_id": i + 2, "age": 20 + i % 60, "sex": "FM"[i % 2],
        "income": 20000 + (i * 7919) % 120000, "city": CITIES[i % 3],
        "diagnosis": DIAGNOSES[(i // 3) % 3], "blood": BLOOD[i % 4], "big": i, "unit": "month",
        "code": str(100 + i), "birth": date(1950, 1, 1) + timedelta(days=i * 11), "days": i % 100,
        "weight": 50.0 + i % 50, "height": None if i % 10 == 0 else 150.0 + i % 40,
        "huge": float(i), "score": i % 101,
    }


def write_planted(folder: Path, *, with_t: bool = True, t_visits: int = 3) -> Path:
    """Write the planted dataset's files and policy into ``folder`` (``with_t=False``:
    the neighbouring dataset without T; ``t_visits``: T's visits at the clinic only
    T visits); returns the policy path."""
    folder.mkdir(parents=True, exist_ok=True)
    people = ([T] if with_t else []) + [_ordinary(i) for i in range(PEOPLE)]
    visits = []
    if with_t:   # T's visits come first: several at the clinic only T visits, one at a common clinic
        visits += [(1, T_CLINIC, 4000.0 + k % 1000) for k in range(t_visits)] + [(1, "C03", 4300.0)]
    for i in range(PEOPLE):     # two clinics each (two or three visits): clinic groups of hundreds
        for j in range(2 + i % 2):
            visits.append((i + 2, CLINICS[(i + min(j, 1)) % len(CLINICS)], 50.0 + (i * 13 + j * 7) % 900))
    types = {"person_id": pa.int64(), "age": pa.int32(), "sex": pa.string(), "income": pa.int64(),
             "city": pa.string(), "diagnosis": pa.string(), "blood": pa.string(), "big": pa.int64(),
             "unit": pa.string(), "code": pa.string(), "birth": pa.date32(), "days": pa.int32(),
             "weight": pa.float64(), "height": pa.float64(), "huge": pa.float64(), "score": pa.int32()}
    people_table = pa.table({c: pa.array([p[c] for p in people], type=t) for c, t in types.items()})
    visits_table = pa.table({"visit_id": pa.array(range(1, len(visits) + 1), type=pa.int64()),
                             "person_id": pa.array([v[0] for v in visits], type=pa.int64()),
                             "clinic": pa.array([v[1] for v in visits], type=pa.string()),
                             "cost": pa.array([v[2] for v in visits], type=pa.float64())})
    pq.write_table(people_table, folder / "people.parquet")
    pq.write_table(visits_table, folder / "visits.parquet")
    clinics = [(c, "North" if n % 2 == 0 else "South") for n, c in enumerate((*CLINICS, T_CLINIC))]
    (folder / "clinics.csv").write_text("clinic,district\n" + "".join(f"{c},{d}\n" for c, d in clinics))
    staff = [(c, "nurse") for c in CLINICS] + [(T_CLINIC, f"role{k:02d}") for k in range(T_STAFF)]
    (folder / "staff.csv").write_text("clinic,role\n" + "".join(f"{c},{r}\n" for c, r in staff))
    (folder / "digits.csv").write_text("d\n" + "".join(f"{d}\n" for d in range(10)))
    regions = [(c, "East" if n % 2 else "West") for n, c in enumerate((*CITIES, CITY_T))]
    (folder / "regions.csv").write_text("city,region\n" + "".join(f"{c},{r}\n" for c, r in regions))
    policy = folder / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return policy


def open_planted(home: Path, source: Path, *, neighbour: Path | None = None, licence_epsilon: float = 1000.0,
                 **settings):
    """A fresh instance at ``home`` (SQLite store), users, the planted dataset
    registered from ``source`` (version 1; ``neighbour``, if given, becomes
    version 2) and a licence for operator1. ``settings`` override the defaults."""
    from sandbox.audit import SYSTEM, Actor
    from sandbox.datasets import add_dataset
    from sandbox.instance import Instance, init_home
    from sandbox.licences import grant_licence
    from sandbox.settings import load_settings
    from sandbox.users import add_user

    s = load_settings(env={}, home=str(home), **settings)
    init_home(s)
    inst = Instance.open(s)
    for name, role in ((OWNER, "owner"), (OPERATOR, "operator"), ("operator2", "operator")):
        add_user(inst, SYSTEM, name, role, PASSWORD)
    owner = Actor(OWNER, "owner")
    add_dataset(inst, owner, source)
    if neighbour is not None:
        add_dataset(inst, owner, neighbour)
    grant_licence(inst, owner, dataset=DATASET, operator=OPERATOR, epsilon=licence_epsilon, delta=0.001,
                  purpose="side-channel tests", expires=date.today() + timedelta(days=30))
    return inst
