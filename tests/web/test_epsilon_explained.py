"""ε in plain language: an explainer on the product page and the licence form,
and a warning when a licence is granted with ε above 5 or δ above 1e-6."""

from __future__ import annotations

from datetime import date, timedelta

from test_product_upkeep import _released_product
from web_helpers import csrf_of, page_login


def _grant(c, epsilon, delta):
    return c.post("/owner/datasets/health/licences", data={
        "csrf_token": csrf_of(c), "operator": "operator1", "purpose": "planning", "epsilon": epsilon,
        "delta": delta, "expires": (date.today() + timedelta(days=30)).isoformat()}, follow_redirects=True)


def test_the_licence_form_explains_and_a_high_grant_is_flagged(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "owner1")
    page = c.get("/owner/datasets/health").get_data(as_text=True)
    assert 'id="epsilon-explainer"' in page and "e to the power ε" in page and 'id="licence-guidance"' in page
    for eps, delta in (("2", "1e-7"), ("5", "1e-6")):         # at the limits: no warning
        ok = _grant(c, eps, delta).get_data(as_text=True)
        assert "Licence granted." in ok and 'class="warning"' not in ok
    flagged = _grant(c, "8", "0").get_data(as_text=True)     # (health's own budget allows δ ≤ 1e-6)
    assert "Licence granted." in flagged and 'class="warning"' in flagged
    zh = c.get("/owner/datasets/health?lang=zh").get_data(as_text=True)
    assert "ε 和 δ 对数据中的每个人意味着什么" in zh


def test_the_product_page_explains_its_epsilon(licensed_app):
    c = licensed_app.test_client()
    pid, _ = _released_product(c)
    page = c.get(f"/products/{pid}").get_data(as_text=True)
    assert 'id="epsilon-explainer"' in page
    assert "Here ε = 0.5: a factor of at most 1.649" in " ".join(page.split())
    assert "confidence, the number computed without noise lies inside it" in page
