"""Every refusal code the front end can raise is documented with examples, and
the documented examples behave as the table says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queries import plan_query
from queries.errors import QueryRejected

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "query-language.md").read_text(encoding="utf-8")


def _codes_in_source() -> set[str]:
    codes = set()
    for path in (ROOT / "queries").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'(?:reject|QueryRejected)\(\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'identifiers="([a-z_]+)"', text))
    return codes


# the sharing front end (queries/shared_sql.py) documents its codes with the sharing mode
SHARING_DOC = (ROOT / "docs" / "sharing.md").read_text(encoding="utf-8")


def test_every_code_is_documented():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC + "\n" + SHARING_DOC, flags=re.M))
    missing = _codes_in_source() - documented
    assert not missing, missing


ROWS = [(code, refused, accepted) for code, refused, accepted in
        re.findall(r"^\| `([a-z_]+)` \| `([^`]+)` \| `([^`]+)` \|$", DOC, flags=re.M)
        if refused.upper().startswith(("SELECT", "INSTALL")) and accepted.upper().startswith(("SELECT", "WITH"))]


@pytest.mark.parametrize("code, refused, accepted", ROWS, ids=[r[0] for r in ROWS])
def test_documented_examples(code, refused, accepted, policy):
    with pytest.raises(QueryRejected) as info:
        plan_query(refused, policy)
    assert info.value.code == code
    plan_query(accepted, policy)
