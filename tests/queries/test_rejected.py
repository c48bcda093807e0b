"""Golden refusals: every statement of rejected.sql is refused with its code and
a span inside the text; nothing else ever escapes."""

from __future__ import annotations

from queries import plan_query
from queries.errors import QueryRejected


def test_enough_rejections():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "fixtures" / "sql" / "rejected.sql").read_text(encoding="utf-8")
    assert text.count("-- code:") >= 120


def test_rejected_with_code_and_span(rejected_block, policy):
    sql = rejected_block["sql"]
    try:
        plan_query(sql, policy, salt="s")
    except QueryRejected as exc:
        assert exc.code == rejected_block["code"], (exc.code, exc.message)
        assert exc.message and "person_id = 42" not in exc.message
        if exc.span is not None:
            assert 0 <= exc.span.start <= exc.span.end <= len(sql)
            assert exc.span.line >= 1 and exc.span.column >= 1
        return
    raise AssertionError(f"accepted, expected {rejected_block['code']}")
