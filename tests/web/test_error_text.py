"""Errors in plain Chinese on Chinese pages, chosen by their stable code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from web_helpers import bearer, csrf_of, page_login, token_for

from queries.errors import BudgetExceeded, ExecutionFailed, Forbidden, PolicyError, QueryRejected, Span
from web.error_text import ZH_ERRORS, chinese_text, error_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "query-language.md"
CJK = re.compile(r"[\u4e00-\u9fff]")

SERVICE_CODES = (
    "budget_exceeded", "no_licence", "licence_revoked", "licence_expired", "dataset_restricted", "dataset_open",
    "template_required", "approval_required", "template_not_approved", "template_cap_reached",
    "parameter_out_of_domain", "missing_parameter", "unknown_parameter", "request_not_approved",
    "request_already_ran", "self_review", "already_reviewed", "policy_invalid", "bad_credentials",
    "accuracy_unreachable", "invalid_budget", "execution_failed", "query_timeout", "query_resources",
    "wrong_role", "forbidden", "not_found", "query_invalid", "run_failed", "epsilon_below_floor", "too_many_runs",
    "query_limit_reached", "missing_reason", "override_reason_required", "invisible_reason", "unknown_data_request",
    "missing_product", "bad_page", "open_with_identifiers", "duplicate_source", "same_classification",
    "not_queryable_policy", "invalid_classification", "unknown_classification_change", "not_pending")
SHARING_DOCS = DOCS.with_name("sharing.md")


def documented_refusal_codes() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("## Refusal codes", 1)[1]
    return re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)


def documented_sharing_codes() -> list[str]:
    """Every code in the first column of docs/sharing.md's code tables (several to a row)."""
    rows = [line for line in SHARING_DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    return [c for line in rows if "|" in line[1:] for c in re.findall(r"`([a-z_]+)`", line.split("|")[1])
            if re.fullmatch(r"[a-z]+(_[a-z]+)+|[a-z]+", c) and c not in SHARING_KEYS]


SHARING_KEYS = ("class", "columns", "update_frequency", "conditions")     # the policy-key table


def test_every_documented_refusal_and_service_code_has_chinese():
    refusals = documented_refusal_codes()
    assert len(refusals) >= 40 and "identifier_in_output" in refusals and "invalid_order_by" in refusals
    sharing = documented_sharing_codes()
    assert "column_not_granted" in sharing and "grant_expired" in sharing and "not_a_correction" in sharing
    missing = sorted(c for c in (*refusals, *sharing, *SERVICE_CODES) if c not in ZH_ERRORS)
    assert not missing, missing


@pytest.mark.parametrize("code", sorted(ZH_ERRORS))
def test_each_sentence_is_chinese_and_fully_filled(code):
    text = chinese_text(code, {})
    assert CJK.search(text) and "{" not in text and "}" not in text, text
    entry = ZH_ERRORS[code]
    if entry.named is not None:
        fields = {name: "x" for name in entry.fields_named()} | {"table": "t", "column": "c"}
        named = chinese_text(code, fields)
        assert CJK.search(named) and "{" not in named and "}" not in named and named != text, named


def test_names_come_from_the_fields_never_from_the_message():
    english = "identifier column people.person_id cannot appear in the output"
    built = chinese_text("identifier_in_output", {"table": "people", "column": "person_id"})
    assert built == "标识列 people.person_id 不能出现在查询结果中。"
    # the English message alone names nothing: no field, no name
    assert chinese_text("identifier_in_output", {}) == "标识列不能出现在查询结果中。"
    error = QueryRejected("identifier_in_output", english, None)
    assert error_text(error, "zh").text == "标识列不能出现在查询结果中。"
    assert chinese_text("no_licence", {"dataset": "health"}) == "您没有数据集“health”的许可。"
    assert chinese_text("missing_parameter", {"parameters": ["city", "year"]}) == "缺少参数：city、year。"
    assert chinese_text("unknown_column", {"column": "salary", "table": "p"}) == "没有列“salary”。"
    assert chinese_text("function_not_allowed", {"function": "read_csv"}) == "不允许使用函数 read_csv()。"
    assert chinese_text("accuracy_unreachable", {"output": "n", "max_epsilon": 2.0}) == \
        "输出列 n 在 ε 不超过 2 时达不到这个精度，请放宽目标半宽。"
    # a sentence that names two things needs both
    assert chinese_text("unbounded_aggregate", {"function": "SUM"}) == ZH_ERRORS["unbounded_aggregate"].text
    assert chinese_text("unbounded_aggregate", {"function": "SUM", "columns": ["people.income"]}) == \
        "SUM 聚合的列 people.income 没有声明取值范围，请用 LEAST/GREATEST 等限定范围。"
    # a class's fallback sentence never takes names meant for another code
    assert chinese_text("some_new_refusal", {"column": "c"}, kind=QueryRejected) == ZH_ERRORS["query_rejected"].text


def test_structured_fields_fill_the_sentence():
    exc = BudgetExceeded("the query needs ...", level="licence_per_query",
                         requested={"epsilon": 6.0, "delta": 0.0},
                         remaining={"epsilon": 1.5, "delta": 1e-6, "difference": {"epsilon": 4.5, "delta": 0.0}})
    shown = error_text(exc, "zh")
    assert shown.text.startswith("隐私预算不足：本次查询需要 ε = 6，但许可的单次查询上限只剩 ε = 1.5，还差 ε = 4.5。")
    assert shown.code == "budget_exceeded" and shown.original == "the query needs ..."
    span = Span.from_offsets("SELECT\n  person_id FROM people", 9, 18)
    rejected = QueryRejected("identifier_in_output", "identifier column people.person_id cannot appear in the output",
                             span, table="people", column="person_id")
    assert error_text(rejected, "zh").text == "第 2 行第 3 列：标识列 people.person_id 不能出现在查询结果中。"
    failed = ExecutionFailed("The query ran longer ... (error id abc123)", error_id="abc123", code="query_timeout")
    assert "abc123" in error_text(failed, "zh").text and "终止" in error_text(failed, "zh").text
    policy = PolicyError("bounds must be numbers", key="tables.people.columns.age", line=12)
    assert error_text(policy, "zh").text == "策略文件有误（键 tables.people.columns.age）（第 12 行），请修改后重新登记。"


def test_unlisted_codes_fall_back_to_their_class_and_english_is_unchanged():
    exc = Forbidden("only the dataset's owner or an admin sees its budget", code="some_new_code")
    assert error_text(exc, "zh").text == ZH_ERRORS["forbidden"].text and error_text(exc, "zh").code == "some_new_code"
    assert error_text(exc, "en").text == exc.message and error_text(exc, "en").original is None


REJECTED_SQL = "SELECT person_id FROM people"


def test_zh_operator_sees_a_refusal_in_chinese_with_code_and_span(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    c.get("/operator/?lang=zh")
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": REJECTED_SQL,
                                   "action": "preview"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "查询被拒绝" in html
    assert '<p class="error-text">第 1 行第 8 列：标识列 people.person_id 不能出现在查询结果中。</p>' in html
    assert 'id="rejection-code">identifier_in_output<' in html
    assert '<mark class="bad" id="offending-span">person_id</mark>' in html
    assert "identifier column people.person_id cannot appear in the output" in html   # the details line
    # English pages are unchanged
    c.get("/operator/?lang=en")
    html = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": REJECTED_SQL,
                                      "action": "preview"}).get_data(as_text=True)
    assert '<p class="error-text">identifier column people.person_id cannot appear in the output</p>' in html
    assert not CJK.search(html.split('id="rejection"')[1].split("</section>")[0])


def test_zh_budget_refusal_shows_chinese_with_the_numbers(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    c.get("/operator/?lang=zh")
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "action": "run",
                                   "sql": "SELECT COUNT(*) FROM people", "epsilon": "7"})
    html = r.get_data(as_text=True)
    assert r.status_code == 409, html[-2000:]
    box = html.split('id="failure"')[1].split("</section>")[0]
    assert "budget_exceeded" in box
    match = re.search(r"本次查询需要 ε = 7，但(?:许可|数据集)的(?:预算|单次查询上限)只剩 ε = ([0-9.]+)，还差 ε = ([0-9.]+)。", box)
    assert match, box
    left, short = float(match.group(1)), float(match.group(2))
    assert "short by ε=" in box   # the English original stays as a detail
    assert 0 < left <= 5 and short == pytest.approx(7 - left, rel=1e-3)


NAMED = {
    "SELECT COUNT(*) FROM patients": "数据集中没有数据表“patients”。",
    "SELECT SUM(salary) FROM people": "没有列“salary”。",
    "SELECT person_id, COUNT(*) FROM people GROUP BY 1": "标识列 people.person_id 不能作为分组键。",
    "SELECT SUM(person_id) FROM people": "标识列 people.person_id 只能被计数。",
    "SELECT COUNT(*) FROM people WHERE person_id = 42": "标识列 people.person_id 不能用于筛选条件或连接条件。",
    "SELECT age, COUNT(*) FROM people": "列 people.age 必须出现在 GROUP BY 中或放在聚合函数内。",
    "SELECT COUNT(*) FROM people WHERE random() < 0.5": "不允许使用函数 rand()。",
    "SELECT COUNT(*) FROM visits v JOIN clinics c ON v.clinic = c.clinic WHERE clinic = 'C01'":
        "列“clinic”有歧义，请在列名前加上表名。",
    "SELECT COUNT(*) FROM people UNION SELECT COUNT(*) FROM people": "不允许 UNION 等集合运算：一次只能有一个 SELECT。",
    "SELECT COUNT(*) FROM people ORDER BY 3": "ORDER BY 中的序号 3 超出了 SELECT 列表的范围。",
}


def test_names_come_from_the_fields_of_the_front_end_refusals(licensed_app):
    """Each refusal of the SQL front end carries the names it is about as fields
    (the API sends them as problem members); the Chinese sentence is built from
    the code and those fields alone."""
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    for sql, expected in NAMED.items():
        body = c.post("/api/v1/queries/preview", headers=h, json={"dataset": "health", "sql": sql}).get_json()
        assert CJK.search(body["detail"]) is None and body["status"] == 422
        fields = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail", "code", "kind",
                                                             "span")}
        assert chinese_text(body["code"], fields) == expected, (sql, body)


def test_zh_error_page_shows_the_role_refusal_in_chinese(client):
    page_login(client, "operator1")
    r = client.get("/admin/?lang=zh")
    html = r.get_data(as_text=True)
    assert r.status_code == 403
    assert '<p class="error-text">您的角色无权执行此操作。</p>' in html and "<code>wrong_role</code>" in html
    assert "详细信息" in html and "this needs the role admin" in html
    html = client.get("/admin/?lang=en").get_data(as_text=True)
    assert '<p class="error-text">this needs the role admin</p>' in html and "Details" not in html
