"""Policy files: the documented example parses; malformed ones are refused with
the key and line named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queries.errors import PolicyError
from queries.policy import DatasetPolicy, parse_policy
from sandbox.demo.data import HEALTH_POLICY, TAX_POLICY, TRANSPORT_POLICY

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def test_demo_policies_parse():
    health = parse_policy(HEALTH_POLICY)
    assert health.privacy_unit == "person_id"
    assert health.table("people").rows_per_unit == 1
    assert health.table("visits").max_rows_per_unit == 10
    assert health.table("clinics").public
    assert health.table("people").column("sex").domain == ("F", "M")
    assert health.budget.epsilon == 10.0
    assert parse_policy(TRANSPORT_POLICY).classification == "open"
    assert parse_policy(TAX_POLICY).classification == "restricted"


def test_round_trip_through_dict():
    p = parse_policy(HEALTH_POLICY)
    assert DatasetPolicy.from_dict(p.to_dict()) == p


def test_documented_example_parses():
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert blocks
    for block in blocks:
        parse_policy(block)


def _mutate(old: str, new: str) -> str:
    assert old in HEALTH_POLICY
    return HEALTH_POLICY.replace(old, new, 1)


@pytest.mark.parametrize("old,new,key,line", [
    ('columns.age       = { class = "quasi", min = 0, max = 120 }',
     'columns.age       = { class = "secret", min = 0, max = 120 }', "tables.people.columns.age", True),
    ('columns.age       = { class = "quasi", min = 0, max = 120 }',
     'columns.age       = { class = "quasi", min = 130, max = 120 }', "tables.people.columns.age", True),
    ('columns.age       = { class = "quasi", min = 0, max = 120 }',
     'columns.age       = { class = "quasi", min = 0 }', "tables.people.columns.age", True),
    ('privacy_unit = "person_id"', 'privacy_unit = "patient"', "tables.people.columns", None),
    ('classification = "conditional"', 'classification = "secret"', "dataset.classification", True),
    ('epsilon = 10.0', 'epsilon = -1', "budget.epsilon", True),
    ('max_epsilon_per_query = 1.0', 'max_epsilon_per_query = 20.0', "budget.max_epsilon_per_query", True),
    ('rows_per_unit = 1', 'rows_per_unit = 1\ncolour = "red"', "tables.people.colour", None),
    ('source = "visits.csv"', 'source = "visits.xlsx"', "tables.visits.source", None),
    ('columns.sex       = { class = "quasi", domain = ["F", "M"] }',
     'columns.sex       = { class = "quasi", domain = ["F", "F"] }', "tables.people.columns.sex", True),
])
def test_malformed_policies_name_the_key(old, new, key, line):
    with pytest.raises(PolicyError) as info:
        parse_policy(_mutate(old, new))
    assert info.value.key == key
    if line:
        text = _mutate(old, new)
        expected = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith(new.splitlines()[0]))
        assert info.value.line == expected
    assert key in str(info.value)


def test_not_toml_names_the_line():
    with pytest.raises(PolicyError) as info:
        parse_policy("[dataset]\nname = 'x'\nowner = \n")
    assert info.value.line == 3


def test_conditional_without_unit_or_budget():
    with pytest.raises(PolicyError, match="privacy_unit"):
        parse_policy(_mutate('privacy_unit = "person_id"\n', ""))
    text = HEALTH_POLICY.split("[budget]")[0] + "[tables" + HEALTH_POLICY.split("[tables", 1)[1]
    with pytest.raises(PolicyError, match="budget"):
        parse_policy(text)
