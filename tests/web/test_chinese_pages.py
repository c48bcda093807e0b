"""Chinese pages: column classes and types, admin settings, check messages; every
stored word a page shows through ``term`` has its Chinese."""

from __future__ import annotations

import re

from test_product_upkeep import _released_product
from web_helpers import page_login

from web.i18n_settings import SETTINGS_ZH
from web.i18n_terms import TERMS_ZH


def test_every_class_type_status_and_setting_has_chinese():
    from products.vocabulary import DataRequestStatus
    from queries.vocabulary import Classification, ColumnClass, ColumnType
    from sandbox.settings import SETTINGS

    assert set(TERMS_ZH["column class"]) == set(ColumnClass)
    assert set(TERMS_ZH["column type"]) == set(ColumnType)
    assert set(TERMS_ZH["data class"]) == set(Classification)
    assert set(TERMS_ZH["request status"]) == set(DataRequestStatus)
    assert TERMS_ZH["request status"]["open"] != TERMS_ZH["data class"]["open"]
    assert set(SETTINGS_ZH) == {s.name for s in SETTINGS}


def test_dataset_page_in_chinese_names_classes_and_types(licensed_app):
    c = licensed_app.test_client()
    zh = c.get("/datasets/health?lang=zh").get_data(as_text=True)
    income = zh.split('data-column="income"', 1)[1].split("</tr>", 1)[0]
    assert "敏感" in income and "整数" in income and "sensitive" not in income and "integer" not in income
    en = c.get("/datasets/health?lang=en").get_data(as_text=True)
    assert "sensitive" in en.split('data-column="income"', 1)[1].split("</tr>", 1)[0]


def test_admin_settings_in_chinese(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "admin1")
    zh = c.get("/admin/?lang=zh").get_data(as_text=True)
    row = zh.split('data-setting="workers"', 1)[1].split("</tr>", 1)[0]
    assert "查询工作进程的数量" in row and "Number of query worker processes" not in zh


def test_check_messages_in_chinese(licensed_app):
    c = licensed_app.test_client()
    pid, _ = _released_product(c)
    page_login(c, "operator1")
    zh = c.get(f"/products/{pid}?lang=zh").get_data(as_text=True)
    checks = zh.split('id="checks"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<td>([^<]*)</td></tr>", checks)
    assert cells and all(re.search(r"[\u4e00-\u9fff]", text) for text in cells), cells


def test_the_editor_preview_in_chinese_has_no_planner_english(licensed_app):
    from web_helpers import csrf_of

    c = licensed_app.test_client()
    page_login(c, "operator1")
    c.get("/operator/?lang=zh")
    zh = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "action": "preview",
                                    "sql": "SELECT city, AVG(income) AS m FROM people GROUP BY city"}).get_data(as_text=True)
    assert "无需限制贡献" in zh and "bounding skipped" not in zh
    assert "(approx)" not in zh and "近似差分隐私" in zh
