"""Settings: declared once, read from DPS_* variables, each documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queries.errors import InvalidInput
from sandbox.settings import SETTINGS, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_settings() -> dict[str, str]:
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`(DPS_[A-Z0-9_]+)`\s*\|\s*(\w+)\s*\|\s*([^|]*)\|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_setting_is_in_the_readme_table_with_its_type():
    documented = _readme_settings()
    for setting in SETTINGS:
        assert setting.env in documented, f"{setting.env} is missing from the README's settings table"
        assert documented[setting.env] == setting.type.__name__
    assert set(documented) == {s.env for s in SETTINGS}, "the README documents a setting that does not exist"


def test_environment_and_overrides():
    s = load_settings(env={"DPS_WORKERS": "4", "DPS_HOME": "/tmp/x"}, port=9999)
    assert s.workers == 4 and s.port == 9999 and str(s.home_path) == "/tmp/x"
    assert s.store_url == "sqlite:////tmp/x/store.sqlite"
    assert load_settings(env={}).workers == 2


def test_bad_values_are_refused_with_the_variable_name():
    with pytest.raises(InvalidInput, match="DPS_WORKERS"):
        load_settings(env={"DPS_WORKERS": "many"})
    with pytest.raises(InvalidInput):
        load_settings(env={}, no_such_setting=1)


def test_boolean_settings():
    assert load_settings(env={"DPS_SECURE_COOKIES": "yes"}).secure_cookies is True
    assert load_settings(env={}).secure_cookies is False
    with pytest.raises(InvalidInput, match="DPS_SECURE_COOKIES"):
        load_settings(env={"DPS_SECURE_COOKIES": "maybe"})


def test_secure_cookies_reach_the_web_app(make_instance):
    from web.app import create_app

    assert create_app(make_instance(secure_cookies=True)).config["SESSION_COOKIE_SECURE"] is True
    assert create_app(make_instance(name="plain")).config["SESSION_COOKIE_SECURE"] is False
