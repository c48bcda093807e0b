"""Golden accepted queries: each plans, its bounded SQL matches rewrites.sql, runs
in plain DuckDB over the demo data, and (where a reference is given) returns
exactly what the hand-written reference query returns.

Regenerate rewrites.sql after a deliberate change with
``DPS_UPDATE_GOLDEN=1 python -m pytest tests/queries/test_accepted.py``.
"""

from __future__ import annotations

import math
import os

from queries import plan_query

SALT = "golden-salt"


def _blocks(path) -> list[dict]:
    blocks = []
    for raw in path.read_text(encoding="utf-8").split("\n\n"):
        lines = raw.strip("\n").splitlines()
        names = [line[len("-- name:"):].strip() for line in lines if line.startswith("-- name:")]
        body = "\n".join(line for line in lines if not line.startswith("--")).strip()
        if names and body:
            blocks.append({"name": names[0], "sql": body[:-1] if body.endswith(";") else body})
    return blocks


def test_enough_golden_queries(accepted_blocks):
    assert len(accepted_blocks) >= 60
    assert sum(1 for b in accepted_blocks if b.get("ref")) >= 30


def test_rewrites_match_golden(policy, accepted_blocks, fixtures_dir):
    plans = {b["name"]: plan_query(b["sql"], policy, salt=SALT).bounded_sql for b in accepted_blocks}
    path = fixtures_dir / "rewrites.sql"
    if os.environ.get("DPS_UPDATE_GOLDEN"):
        text = "-- Expected bounded SQL for each query of accepted.sql (generated, then reviewed).\n\n"
        text += "\n\n".join(f"-- name: {name}\n{sql};" for name, sql in plans.items()) + "\n"
        path.write_text(text, encoding="utf-8")
    expected = {b["name"]: b["sql"] for b in _blocks(path)}
    assert plans == expected


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def _normalise(rows):
    return sorted((tuple(r) for r in rows), key=lambda r: tuple((x is None, str(x)) for x in r))


def test_bounded_sql_runs_and_matches_reference(accepted_block, health_db, policy, loose_policy):
    block = accepted_block
    plan = plan_query(block["sql"], loose_policy if block.get("ref") else policy, salt=SALT)
    # any selection is keyed by the secret salt (per-unit aggregation needs none)
    assert ("hash(" in plan.bounded_sql) == ("$salt" in plan.bounded_sql)
    assert "random" not in plan.bounded_sql.lower()
    con = health_db.cursor()
    got = con.execute(plan.bounded_sql, {"salt": SALT} if "$salt" in plan.bounded_sql else None).fetchall()
    width = len(plan.group_keys) + sum(len(a.columns) for a in plan.aggregates) + (1 if plan.units_column else 0)
    assert got and len(got[0]) == width
    if not block.get("ref"):
        return
    expected = con.execute(block["ref"]).fetchall()
    got, expected = _normalise(got), _normalise(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert len(g) == len(e)
        assert all(_close(x, y) for x, y in zip(g, e)), (g, e)
