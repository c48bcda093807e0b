"""Deterministic synthetic data for the demo and the tests.

Every value is a function of the row number and a column label through DuckDB's
``hash()``: the same call always writes the same files, on any number of
threads. This is synthetic test data, not privacy noise: released numbers get
their noise from OpenDP only.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

CITIES = ("Oslo", "Bergen", "Trondheim", "Stavanger", "Drammen", "Kristiansand",
          "Tromso", "Bodo", "Alesund", "Hamar")
DIAGNOSES = ("J06", "I10", "E11", "M54", "F32", "K21", "Z00", "J45", "N39", "R51")
CLINICS = tuple(f"C{i:02d}" for i in range(1, 41))

HEALTH_POLICY = """\
[dataset]
name = "health"
title = "Clinic visits 2025"
description = "Synthetic people and their clinic visits in 2025 (demo data)."
owner = "owner1"
publisher = "Demo Health Agency"
classification = "conditional"
privacy_unit = "person_id"
max_groups_per_unit = 1
keywords = ["health", "visits"]

[budget]
epsilon = 10.0
delta = 1e-6
max_epsilon_per_query = 1.0
max_delta_per_query = 1e-7

[tables.people]
source = "people.parquet"
rows_bound = 12_000_000
rows_per_unit = 1
columns.person_id = { class = "identifier" }
columns.age       = { class = "quasi", min = 0, max = 120 }
columns.sex       = { class = "quasi", domain = ["F", "M"] }
columns.income    = { class = "sensitive", min = 0, max = 200000 }
columns.city      = { class = "quasi", domain = [%(cities)s] }
columns.diagnosis = { class = "sensitive" }

[tables.visits]
source = "visits.csv"
rows_bound = 25_000_000
max_rows_per_unit = 10
max_groups_per_unit = 5
columns.visit_id   = { class = "identifier" }
columns.person_id  = { class = "identifier" }
columns.clinic     = { class = "quasi" }
columns.cost       = { class = "sensitive", min = 0, max = 5000 }
columns.visit_date = { class = "quasi" }

[tables.clinics]
source = "clinics.csv"
public = true
description = "Public list of clinics (a lookup table)."
columns.clinic   = { class = "public" }
columns.district = { class = "public", domain = ["North", "South", "East", "West"] }
columns.kind     = { class = "public", domain = ["hospital", "gp", "specialist"] }
""" % {"cities": ", ".join(f'"{c}"' for c in CITIES)}

TRANSPORT_POLICY = """\
[dataset]
name = "transport"
title = "Bus ridership by stop and month"
description = "Open data: monthly boardings per bus stop (demo data)."
owner = "owner1"
publisher = "Demo Transport Authority"
classification = "open"
keywords = ["transport", "open data"]

[tables.ridership]
source = "ridership.csv"
public = true
columns.stop     = { class = "public" }
columns.month    = { class = "public" }
columns.boardings = { class = "public", min = 0, max = 1000000 }
"""

TAX_POLICY = """\
[dataset]
name = "tax"
title = "Personal income tax returns"
description = "Restricted: listed in the catalog, never queryable (demo data)."
owner = "owner1"
publisher = "Demo Tax Office"
classification = "restricted"
privacy_unit = "taxpayer_id"

[tables.returns]
source = "returns.parquet"
rows_per_unit = 1
columns.taxpayer_id = { class = "identifier" }
columns.municipality = { class = "quasi" }
columns.taxable_income = { class = "sensitive", min = 0, max = 10000000 }
"""


def _u(label: str, key: str = "i") -> str:
    """A uniform number in (0, 1) derived from the row key and a label."""
    return f"((hash({key}, '{label}') % 1000000007)::DOUBLE + 0.5) / 1000000007.0"


def _pick(values: tuple[str, ...], u: str, skew: float = 1.0) -> str:
    items = ", ".join(f"'{v}'" for v in values)
    return f"[{items}][1 + floor(pow({u}, {skew}) * {len(values)})::INTEGER]"


def write_health(folder: Path, people: int = 100_000, *, visits_per_person: int | None = None) -> Path:
    """Write the health demo dataset (people.parquet, visits.csv, clinics.csv and
    policy.toml) into ``folder``; returns the policy path. ``visits_per_person``
    declares a total bound on each person's visits (``max_total_rows_per_unit``:
    the benchmarks' workload says "at most 5 visits per person", as the peers do)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        normal = f"sqrt(-2 * ln({_u('inc1')})) * cos(2 * pi() * {_u('inc2')})"
        con.execute(f"""
            CREATE TABLE people AS
            SELECT i + 1 AS person_id,
                   least(floor(90 * pow({_u('age')}, 0.9) + 8 * {_u('age2')})::INTEGER, 104) AS age,
                   CASE WHEN {_u('sex')} < 0.51 THEN 'F' ELSE 'M' END AS sex,
                   least(round(exp(10.3 + 0.75 * {normal})), 400000)::BIGINT AS income,
                   {_pick(CITIES, _u('city'), 1.8)} AS city,
                   {_pick(DIAGNOSES, _u('diag'), 1.5)} AS diagnosis,
                   1 + least(floor(-ln({_u('nv')}) * 1.6)::INTEGER, 9) AS n_visits
            FROM range({int(people)}) t(i)
        """)
        con.execute(f"""
            CREATE TABLE visits AS
            SELECT row_number() OVER (ORDER BY p.person_id, v.j) AS visit_id,
                   p.person_id,
                   {_pick(CLINICS, _u('clinic', 'p.person_id * 17 + v.j // 3'), 1.3)} AS clinic,
                   round(least(exp(4.6 + 1.1 * sqrt(-2 * ln({_u('c1', 'p.person_id * 31 + v.j')}))
                        * cos(2 * pi() * {_u('c2', 'p.person_id * 31 + v.j')})), 9000), 2) AS cost,
                   DATE '2025-01-01' + floor(365 * {_u('d', 'p.person_id * 13 + v.j')})::INTEGER AS visit_date
            FROM people p, range(10) v(j)
            WHERE v.j < p.n_visits
        """)
        con.execute(f"""
            CREATE TABLE clinics AS
            SELECT c AS clinic,
                   ['North', 'South', 'East', 'West'][1 + (hash(c, 'district') % 4)::INTEGER] AS district,
                   ['hospital', 'gp', 'specialist'][1 + (hash(c, 'kind') % 3)::INTEGER] AS kind
            FROM unnest([{", ".join(f"'{c}'" for c in CLINICS)}]) t(c)
        """)
        con.execute(f"COPY (SELECT * EXCLUDE (n_visits) FROM people ORDER BY person_id) "
                    f"TO '{folder / 'people.parquet'}' (FORMAT parquet)")
        con.execute(f"COPY (SELECT * FROM visits ORDER BY visit_id) TO '{folder / 'visits.csv'}' (HEADER)")
        con.execute(f"COPY (SELECT * FROM clinics ORDER BY clinic) TO '{folder / 'clinics.csv'}' (HEADER)")
    finally:
        con.close()
    policy = folder / "policy.toml"
    text = HEALTH_POLICY
    if visits_per_person is not None:
        text = text.replace("max_groups_per_unit = 5\n",
                            f"max_groups_per_unit = 5\nmax_total_rows_per_unit = {int(visits_per_person)}\n", 1)
    policy.write_text(text, encoding="utf-8")
    return policy


def load_health(con: duckdb.DuckDBPyConnection, folder: Path, schema: str = "ds") -> duckdb.DuckDBPyConnection:
    """Load the health files written by ``write_health`` into ``schema`` of an
    existing DuckDB connection, in clear (for reference answers in tests and
    benchmarks; the sandbox itself only reads encrypted versions)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"CREATE TABLE {schema}.people AS SELECT * FROM read_parquet('{folder / 'people.parquet'}')")
    con.execute(f"CREATE TABLE {schema}.visits AS SELECT * FROM read_csv('{folder / 'visits.csv'}')")
    con.execute(f"CREATE TABLE {schema}.clinics AS SELECT * FROM read_csv('{folder / 'clinics.csv'}')")
    return con


def write_transport(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"""
            COPY (
              SELECT 'S' || lpad((s + 1)::VARCHAR, 3, '0') AS stop,
                     strftime(DATE '2025-01-01' + INTERVAL (m) MONTH, '%Y-%m') AS month,
                     (200 + (hash(s, m) % 20000))::BIGINT AS boardings
              FROM range(120) a(s), range(12) b(m)
              ORDER BY stop, month
            ) TO '{folder / 'ridership.csv'}' (HEADER)
        """)
    finally:
        con.close()
    policy = folder / "policy.toml"
    policy.write_text(TRANSPORT_POLICY, encoding="utf-8")
    return policy


def write_tax(folder: Path, taxpayers: int = 5_000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"""
            COPY (
              SELECT i + 1 AS taxpayer_id,
                     {_pick(CITIES, _u('muni'))} AS municipality,
                     (hash(i, 'ti') % 2000000)::BIGINT AS taxable_income
              FROM range({int(taxpayers)}) t(i)
            ) TO '{folder / 'returns.parquet'}' (FORMAT parquet)
        """)
    finally:
        con.close()
    policy = folder / "policy.toml"
    policy.write_text(TAX_POLICY, encoding="utf-8")
    return policy


def write_all(folder: Path, people: int = 100_000) -> dict[str, Path]:
    """All three demo datasets under ``folder``; returns name -> policy path."""
    return {
        "health": write_health(folder / "health", people=people),
        "transport": write_transport(folder / "transport"),
        "tax": write_tax(folder / "tax"),
    }
