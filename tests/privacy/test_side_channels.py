"""Only noise leaves a run: each pair of the catalogue (side_channel_pairs.py) is
two queries that differ only in a condition true for the planted person T or for
nobody. Run on the same planted dataset, through the real service and through the
HTTP API, the two must be indistinguishable apart from the noisy numbers: same
success or failure, code, status, message and span; same result fields, columns,
row count, key values in order, notes, mechanisms and cost; same stored run,
audit records, ledger entries and budget movement; the same shape of whatever
reached the logs, and none of T's values anywhere.

A pair that only differs in its noisy numbers passes; a pair whose outcome
depends on whether T's row reached an expression fails, naming the field.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest

from .observe import Observer, diff, leaked
from .planted import CANARIES, CITY_F, CITY_T, FAST, OPERATOR, PASSWORD, open_planted, write_planted
from .side_channel_pairs import CLASSES, PAIRS, Pair


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One planted instance for the module (SQLite store, ``FAST`` settings), an API
    client of the real app and operator1's bearer token."""
    from web.app import create_app

    root = tmp_path_factory.mktemp("side-channels")
    inst = open_planted(root / "home", write_planted(root / "source"), **FAST)
    client = create_app(inst, {"TESTING": True}).test_client()
    r = client.post("/api/v1/tokens", json={"user": OPERATOR, "password": PASSWORD})
    assert r.status_code == 201, r.get_json()
    observer = Observer(inst, client, r.get_json()["data"]["token"]).open()
    # the worker starts and decrypts the version before any pair is observed
    observer.service("SELECT COUNT(*) FROM people", CITY_F)
    yield observer
    observer.close()
    inst.close()


def check_pair(pair: Pair, t, f) -> None:
    for label, obs in (("T", t), ("F", f)):
        run = obs.view["run"]
        assert not run["outcome"].startswith("exception") and run.get("status") != 500, \
            f"{pair.name}: {label} broke the service: {run}"
        assert run["outcome"] != "run_failed", f"{pair.name}: {label} failed after it reached the data"
    found = leaked(t.texts + f.texts, CANARIES)
    assert not found, f"{pair.name}: T's values {found} reached a response, the store or a log"
    differences = diff(t.view, f.view)
    assert not differences, f"{pair.name} ({pair.cls}): T and F differ in\n  " + "\n  ".join(differences[:12])
    if pair.expect is not None:
        assert t.outcome == pair.expect, f"{pair.name}: expected {pair.expect}, both got {t.outcome}"


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_pair_through_the_service(world, pair):
    t = world.service(pair.sql_t, CITY_T)
    f = world.service(pair.sql_f, CITY_F)
    check_pair(pair, t, f)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_pair_through_the_api(world, pair):
    t = world.http(pair.sql_t, CITY_T)
    f = world.http(pair.sql_f, CITY_F)
    check_pair(pair, t, f)


def test_catalogue_covers_every_class():
    assert len(PAIRS) >= 30
    assert len({p.name for p in PAIRS}) == len(PAIRS)
    per_class = Counter(p.cls for p in PAIRS)
    for cls in CLASSES:
        assert per_class[cls] >= (3 if cls not in ("logs",) else 2), (cls, per_class)
    for p in PAIRS:
        # the queries differ only in the city literal, at the same offsets
        assert p.sql_t.replace(CITY_T, CITY_F) == p.sql_f and len(p.sql_t) == len(p.sql_f), p.name
        assert CITY_T in p.sql_t and CITY_F not in p.sql_t, p.name
        assert not any(c in p.sql_t for c in CANARIES), p.name


@pytest.fixture(scope="module")
def naive_engine(tmp_path_factory):
    """The planted tables in a plain DuckDB: the operator's SQL as written, no rewrite."""
    folder = write_planted(tmp_path_factory.mktemp("naive")).parent
    con = duckdb.connect()
    for table in ("people", "visits"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{folder / (table + '.parquet')}')")
    for table in ("clinics", "staff", "digits", "regions"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{folder / (table + '.csv')}')")
    con.execute("CREATE MACRO date_from_parts(y, m, d) AS make_date(y, m, d)")   # sqlglot's name for it
    yield con
    con.close()


def _fails(con, sql: str) -> bool:
    try:
        con.execute(sql).fetchall()
    except duckdb.Error:
        return True
    return False


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.naive], ids=lambda p: p.name)
def test_error_pair_is_a_real_probe(naive_engine, pair):
    """Without the rewrite, T's query fails and F's does not: the pair can tell."""
    assert _fails(naive_engine, pair.sql_t) and not _fails(naive_engine, pair.sql_f)
