"""Numbers for people: digits chosen from the interval width, one rule
(sandbox.numbers) in the CLI, the pages and the charts; one chart panel per
measure with error bars, honouring the chart hints."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from sandbox.numbers import format_cell, format_estimate, format_plain, format_tick, nice_ticks


@pytest.mark.parametrize("value, interval, shown", [
    (1000001, [999998, 1000004], "1,000,001 [999,998, 1,000,004]"),
    (1000001.27, [999998.1, 1000004.4], "1,000,001.3 [999,998.1, 1,000,004.4]"),
    (3905349655.0, [3904149655.0, 3906549655.0], "3,905,300,000 [3,904,100,000, 3,906,500,000]"),
    (0.2999999999997, [0.25, 0.35], "0.300 [0.250, 0.350]"),
    (61290.4, [61190.0, 61390.0], "61,290 [61,190, 61,390]"),
    (12.0, None, "12"),
    ("Oslo", None, "Oslo"),
    (2023, None, "2023"),
])
def test_digits_follow_the_interval_width(value, interval, shown):
    assert format_cell(value, interval) == shown


def test_an_interval_never_collapses_to_one_number():
    for centre in (1.0, 1e3, 1e6, 1e9, 1e12):
        for half in (centre * 1e-6, centre * 1e-3, centre * 0.2):
            v, iv = format_estimate(centre, [centre - half, centre + half])
            lo, hi = iv.strip("[]").split(", ")
            assert lo != v != hi and lo != hi, (centre, half, v, iv)


def test_plain_numbers_and_ticks():
    assert format_plain(0.2999999999997) == "0.3"
    assert format_plain(1e-7) == "1e-7"
    assert [format_plain(d) for d in (1e-6, 5e-7, 2.5e-6, 1e-5, 0.0001)] == ["1e-6", "5e-7", "2.5e-6", "1e-5", "0.0001"]
    ticks, step = nice_ticks(0, 61290)
    assert step == 20000 and [format_tick(t, step) for t in ticks] == ["0", "20,000", "40,000", "60,000", "80,000"]
    ticks, step = nice_ticks(0.1, 0.93)
    assert [format_tick(t, step) for t in ticks][:3] == ["0.0", "0.2", "0.4"]


RESULT = {"columns": ["city", "n", "income"], "alpha": 0.05,
          "rows": [["Oslo", 1000001, 3905349655.0], ["Bergen", 61290.4, 0.2999999999997]],
          "intervals": [[None, [999998, 1000004], [3904149655.0, 3906549655.0]],
                        [None, [61190.0, 61390.0], [0.25, 0.35]]]}


def test_the_cli_prints_by_the_same_rule():
    from sandbox.cli.output import print_table

    @click.command()
    def show():
        print_table(RESULT)

    out = CliRunner().invoke(show).output
    assert "1,000,001" in out and "[999,998, 1,000,004]" in out
    assert "3,905,300,000" in out and "[3,904,100,000, 3,906,500,000]" in out
    assert "1e+06" not in out and "3.90415e+09" not in out


def test_the_pages_print_by_the_same_rule(app):
    from flask import render_template

    with app.test_request_context("/"):
        from flask import g

        from web.auth import ANONYMOUS

        g.principal = ANONYMOUS
        html = render_template("_result.html", r=RESULT)
    assert "1,000,001" in html and "[999,998, 1,000,004]" in html
    assert "0.300" in html and "0.2999999999997" not in html and "3.90415e+09" not in html


def test_charts_have_a_panel_per_measure_with_error_bars_and_nice_ticks(app):
    from web.charts import bar_chart

    with app.test_request_context("/"):
        svg = str(bar_chart(RESULT))
        assert svg.count('class="chart-panel"') == 2
        assert re.findall(r'data-measure="([^"]+)"', svg) == ["n", "income"]
        assert svg.count('class="errorbar"') == 4
        ticks = re.findall(r'class="tick"[^>]*>([^<]+)<', svg)
        assert ticks and all("e+" not in t for t in ticks)
        assert "1,000,001 [999,998, 1,000,004]" in svg
        line = str(bar_chart(RESULT, hint={"chart": "line"}))
        assert line.count('data-kind="line"') == 2 and line.count('class="errorbar"') == 4
        assert str(bar_chart(RESULT, hint={"chart": "table"})) == ""
    with app.test_request_context("/?lang=zh"):
        assert "置信区间" in str(bar_chart(RESULT))


def test_the_product_page_honours_the_chart_hint(licensed_app, licensed_instance):
    from products.service import draft_product
    from web_helpers import bearer, page_login, token_for

    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    run = c.post("/api/v1/queries", headers=h, json={
        "dataset": "health", "sql": "SELECT city, COUNT(*) AS people, SUM(income) AS income FROM people GROUP BY city",
        "epsilon": 0.5}).get_json()["data"]["run_id"]
    plain = draft_product(licensed_instance, "operator1", title="Plain", run_ids=[run]).id
    line = draft_product(licensed_instance, "operator1", title="Line", run_ids=[run],
                         chart_hints={run: {"chart": "line"}}).id
    none = draft_product(licensed_instance, "operator1", title="None", run_ids=[run],
                         chart_hints={"table_1": {"chart": "table"}}).id
    page_login(c, "operator1")
    page = c.get(f"/products/{plain}").get_data(as_text=True)
    assert page.count('data-kind="bar"') == 2           # people and income: one panel each
    page = c.get(f"/products/{line}").get_data(as_text=True)
    assert page.count('data-kind="line"') == 2 and 'data-kind="bar"' not in page
    page = c.get(f"/products/{none}").get_data(as_text=True)
    assert 'class="chart-panel"' not in page
