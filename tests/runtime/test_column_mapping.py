"""Column mapping: a policy column may read a file's header of any spelling
(``source = "Money spent (euros)"``) under a safe SQL name; the file is registered
as it is, queries and downloads use the SQL names, and docs/policy.md's example
registers and answers a query."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from queries.errors import PolicyError, QueryRejected
from queries.policy import DatasetPolicy, parse_policy

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def mapped_example() -> str:
    """The policy of docs/policy.md's "Mapping a file's headers" section."""
    section = DOCS.read_text(encoding="utf-8").split("## Mapping a file's headers", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def mapped_csv() -> str:
    section = DOCS.read_text(encoding="utf-8").split("## Mapping a file's headers", 1)[1]
    return re.search(r"```csv\n(.*?)```", section, re.S).group(1)


def test_the_policy_maps_headers_to_safe_names():
    p = parse_policy(mapped_example())
    shops = p.table("purchases")
    assert shops.column("visitor_id").source == "VisitorId"
    assert shops.column("money_spent").source == "Money spent (euros)"
    assert shops.column("city").source is None                       # the header is the name
    assert DatasetPolicy.from_dict(p.to_dict()) == p
    # a policy without mappings keeps its stored form (and hash): no "source" key on columns
    from sandbox.demo.data import HEALTH_POLICY

    health = parse_policy(HEALTH_POLICY).to_dict()
    assert all("source" not in c for t in health["tables"] for c in t["columns"])


BASE = """
[dataset]
name = "shop"
owner = "owner1"
classification = "open"
[tables.purchases]
source = "p.csv"
"""


@pytest.mark.parametrize("columns, key, words", [
    ('columns.VisitorId = { class = "public" }', "tables.purchases.columns.VisitorId", "source ="),
    ('columns.a = { source = "X", class = "public" }\ncolumns.b = { source = "X", class = "public" }',
     "tables.purchases.columns.b", "already read"),
    ('columns.a = { source = "b", class = "public" }\ncolumns.b = { class = "public" }',
     "tables.purchases.columns.b", "already read"),
    ('columns.a = { source = 3, class = "public" }', "tables.purchases.columns.a.source", "non-empty string"),
    ('columns.a = { source = "  ", class = "public" }', "tables.purchases.columns.a.source", "non-empty string"),
    ('columns.a = { source = "bad\\nline", class = "public" }', "tables.purchases.columns.a.source", "control"),
])
def test_bad_mappings_are_refused_with_the_key(columns, key, words):
    with pytest.raises(PolicyError) as e:
        parse_policy(BASE + columns + "\n")
    assert e.value.key == key and words in e.value.message, e.value.message


def test_a_file_with_unsafe_headers_registers_and_answers(make_instance, tmp_path):
    from sandbox.audit import SYSTEM, Actor
    from sandbox.datasets import add_dataset
    from sandbox.licences import grant_licence
    from sandbox.service import run_query
    from sandbox.users import add_user

    inst = make_instance()
    add_user(inst, SYSTEM, "owner1", "owner", "long enough password")
    add_user(inst, SYSTEM, "operator1", "operator", "long enough password")
    folder = tmp_path / "src"
    folder.mkdir()
    text = mapped_example()
    (folder / "policy.toml").write_text(text, encoding="utf-8")
    rows = mapped_csv().strip().splitlines()
    assert rows[0] == "VisitorId,Money spent (euros),city"          # the file as it comes
    (folder / "purchases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    add_dataset(inst, Actor("owner1", "owner"), folder / "policy.toml")
    grant_licence(inst, Actor("owner1", "owner"), dataset="shop", operator="operator1", epsilon=2.0, delta=1e-6,
                  purpose="Tests", expires=date.today() + timedelta(days=3))
    result = run_query(inst, "operator1", "shop", "SELECT city, SUM(money_spent) AS spent, COUNT(*) AS n "
                                                  "FROM purchases GROUP BY city", epsilon=1.0)
    assert result.to_dict()["columns"] == ["city", "spent", "n"]
    assert sorted(r[0] for r in result.to_dict()["rows"]) == ["Bergen", "Oslo"]      # the public domain
    with pytest.raises(QueryRejected) as e:                                    # the header is no SQL name
        run_query(inst, "operator1", "shop", 'SELECT SUM("Money spent (euros)") AS s FROM purchases', epsilon=0.5)
    assert e.value.code == "unknown_column"


def test_a_missing_mapped_header_names_the_header(make_instance, tmp_path):
    from sandbox.audit import SYSTEM, Actor
    from sandbox.datasets import add_dataset
    from sandbox.users import add_user

    inst = make_instance()
    add_user(inst, SYSTEM, "owner1", "owner", "long enough password")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "policy.toml").write_text(mapped_example(), encoding="utf-8")
    (folder / "purchases.csv").write_text("VisitorId,Money spent,city\nv1,3,Oslo\n", encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        add_dataset(inst, Actor("owner1", "owner"), folder / "policy.toml")
    assert "Money spent (euros)" in e.value.message
