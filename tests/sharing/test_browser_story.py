"""A department user's story in a real headless Chromium (Debian's, no download),
in English and in Chinese: they read the responsibility list, request a
conditional dataset (the owner approves it on the decisions page), pull a
signed extract that verifies, and file a quality objection; then, in Chinese, they
request an unconditional dataset, are granted at once, pull it and object.
Screenshots of each page in both languages go to tests/sharing/screenshots/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from sharing_world import CONDITIONS, PASSWORD
from web_helpers import start_live_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).parent / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                       reason=f"{CHROMIUM} is not installed (Debian package chromium; .ci/run installs it)"),
]


@pytest.fixture
def live(sqlite_world):
    from web.app import create_app

    server = start_live_server(create_app(sqlite_world.inst, {"TESTING": True}), threads=4)
    yield server.url
    server.stop()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(browser, url: str, name: str, lang: str = "en"):
    page = browser.new_context(accept_downloads=True, locale="en-GB").new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{url}/login?lang={lang}")
    page.locator("#user").fill(name)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    page.wait_for_url(lambda u: "/login" not in u)
    return page


def shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    base = page.url.split("?")[0]
    for lang in ("en", "zh"):
        page.goto(f"{base}?lang={lang}")
        page.screenshot(path=str(SHOTS / f"{name}-{lang}.png"), full_page=True)


def test_department_user_story(browser, live, sqlite_world, tmp_path):
    from products.manifest import verify_path

    key = sqlite_world.inst.signer.public_pem()
    clerk = sign_in(browser, live, "taxclerk")

    # English: the responsibility list, a conditional request
    clerk.goto(f"{live}/sharing/?lang=en")
    assert clerk.locator("#entry-benefits").get_by_text("conditional").count() == 1
    shoot(clerk, "s01-responsibility-list")
    clerk.goto(f"{live}/sharing/?lang=en")
    clerk.locator("#request-benefits").click()
    clerk.get_by_label("claims.amount").check()
    clerk.get_by_label("Duty (purpose)").fill("Check benefit claims against tax returns")
    clerk.get_by_label("Legal basis").fill("Benefits Act s. 4")
    clerk.get_by_label("Condition met").select_option(CONDITIONS[0])
    clerk.get_by_role("button", name="Send request").click()
    assert clerk.locator("#grant-status").inner_text() == "pending"
    grant_url = clerk.url.split("?")[0]
    shoot(clerk, "s02-request-pending")

    # the owner approves on the decisions page
    owner = sign_in(browser, live, "owner1")
    owner.goto(f"{live}/sharing/decisions?lang=en")
    shoot(owner, "s03-owner-decisions")
    owner.goto(f"{live}/sharing/decisions?lang=en")
    owner.locator("#pending-requests button[value=approve]").click()
    owner.get_by_text("Decision recorded.").wait_for()

    # granted: pull a signed extract and file an objection
    clerk.goto(f"{grant_url}?lang=en")
    assert clerk.locator("#grant-status").inner_text() == "granted"
    clerk.get_by_label("Format").select_option("csv")
    clerk.get_by_label("Row filter (optional)").fill("amount >= 40")
    with clerk.expect_download() as dl:
        clerk.locator("#pull").click()
    target = tmp_path / "benefits.zip"
    dl.value.save_as(target)
    report = verify_path(target, key)
    assert report.ok, report.problems
    clerk.goto(f"{grant_url}?lang=en")
    clerk.locator("#sql").fill("SELECT COUNT(*) AS claims, SUM(amount) AS total FROM claims")
    clerk.locator("#run-query").click()
    assert clerk.locator("#query-result tbody td").all_inner_texts() == ["8", "360"]
    clerk.locator("#objection-form").get_by_label("claims.amount").check()
    clerk.get_by_label("What is wrong").fill("Amounts for March are in cents, not euros")
    clerk.locator("#file-objection").click()
    clerk.get_by_text("Objection filed.").wait_for()
    assert "Amounts for March" in clerk.locator("#objections").inner_text()
    shoot(clerk, "s04-grant-with-objection")

    # Chinese: an unconditional dataset is granted at once, pulled, objected to
    zh = sign_in(browser, live, "taxboss", lang="zh")
    zh.goto(f"{live}/sharing/?lang=zh")
    zh.locator("#request-registry").click()
    zh.get_by_label("people.age").check()
    zh.get_by_label("履职用途").fill("核定房产税减免")
    zh.get_by_label("法律依据").fill("税法第12条")
    zh.get_by_role("button", name="提交申请").click()
    zh.get_by_text("已获授权。").wait_for()
    assert zh.locator("#grant-status").inner_text() == "granted"
    with zh.expect_download() as dl:
        zh.get_by_role("button", name="获取", exact=True).click()
    target = tmp_path / "registry.zip"
    dl.value.save_as(target)
    assert verify_path(target, key).ok
    zh.locator("#objection-form").get_by_label("people.age").check()
    zh.get_by_label("问题描述").fill("八十岁以上的年龄缺失")
    zh.get_by_role("button", name="提出异议").click()
    zh.get_by_text("异议已提交。").wait_for()
    shoot(zh, "s05-zh-grant-with-objection")

    # the provider's record shows the open objections; usage shows two pulls
    owner.goto(f"{live}/sharing/?lang=zh")
    assert owner.locator("#entry-registry .open-objections").inner_text() == "1"
    owner.goto(f"{live}/sharing/usage?lang=en")
    assert owner.locator("#total-pulls").inner_text() == "2"
    shoot(owner, "s06-usage")
