"""The bounded SQL emitted for Spark is a rewrite of the same tree (no Spark-only
string formatting anywhere else in queries/), every DuckDB-only construct is
rewritten or refused by code, and the policy's engine key is read and kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from queries.dialects import emit_bounded
from queries.errors import PolicyError, QueryRejected
from queries.policy import parse_policy
from queries.vocabulary import Engine
from sandbox.demo.data import HEALTH_POLICY

ROOT = Path(__file__).resolve().parents[2]
REWRITES = ROOT / "tests" / "fixtures" / "sql" / "rewrites.sql"


def _rewrites() -> dict[str, str]:
    out = {}
    for raw in REWRITES.read_text(encoding="utf-8").split("\n\n"):
        lines = raw.strip("\n").splitlines()
        if lines and lines[0].startswith("-- name:"):
            out[lines[0][len("-- name:"):].strip()] = "\n".join(lines[1:]).strip().removesuffix(";")
    return out


def test_only_dialects_py_emits_for_spark():
    for path in (ROOT / "queries").glob("*.py"):
        if path.name != "dialects.py":
            assert not re.search(r"dialect\s*=\s*['\"]spark", path.read_text(encoding="utf-8")), path.name


def test_every_golden_rewrite_is_emitted_for_spark_or_refused_by_code():
    refused = set()
    for name, sql in _rewrites().items():
        try:
            emitted = emit_bounded(sql, Engine.SPARK)
        except QueryRejected as exc:
            assert exc.code == "spark_unsupported" and exc.fields["construct"], name
            refused.add(name)
            continue
        tree = sqlglot.parse_one(emitted.sql, dialect="spark")
        assert not list(tree.find_all(exp.Try)), name
        names = {f.name.lower() for f in tree.find_all(exp.Anonymous)}
        assert not names & {"hash", "isfinite", "list", "range", "unnest"}, name
        assert "INT128" not in emitted.sql and "HUGEINT" not in emitted.sql, name
        assert all(not t.db for t in tree.find_all(exp.Table)), name
        assert ("$salt" in sql) == (":salt" in emitted.sql), name
    assert refused == {"median_age", "quantile_cost_by_kind", "many_aggregates", "codelab_median_spend"}


def test_duckdb_emission_is_the_plan_itself():
    sql = next(iter(_rewrites().values()))
    assert emit_bounded(sql, Engine.DUCKDB).sql == sql


def test_policy_engine_key():
    assert parse_policy(HEALTH_POLICY).engine is None
    assert "engine" not in parse_policy(HEALTH_POLICY).to_dict()
    text = HEALTH_POLICY.replace("[dataset]\n", '[dataset]\nengine = "spark"\n', 1)
    policy = parse_policy(text)
    assert policy.engine is Engine.SPARK
    assert type(policy).from_dict(policy.to_dict()) == policy
    with pytest.raises(PolicyError) as info:
        parse_policy(HEALTH_POLICY.replace("[dataset]\n", '[dataset]\nengine = "presto"\n', 1))
    assert info.value.key == "dataset.engine"
