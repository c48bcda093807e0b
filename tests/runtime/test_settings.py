"""Settings: declared once, read from DPS_* variables, each documented in the README."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from queries.errors import InvalidInput
from sandbox.settings import SETTINGS, Settings, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_settings() -> dict[str, tuple[str, str]]:
    """The README's settings table: variable -> (type, default as written)."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`(DPS_[A-Z0-9_]+)`\s*\|\s*(\w+)\s*\|\s*([^|]*)\|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip())
    return rows


def _written(default: object) -> str:
    return "(empty)" if default == "" else f"`{default}`"


def test_the_readme_table_lists_exactly_the_settings_with_type_and_default():
    documented = _readme_settings()
    for setting in SETTINGS:
        assert setting.env in documented, f"{setting.env} is missing from the README's settings table"
        assert documented[setting.env] == (setting.type.__name__, _written(setting.default)), setting.env
    assert set(documented) == {s.env for s in SETTINGS}, "the README documents a setting that does not exist"


def test_settings_is_typed_with_one_attribute_per_setting():
    s = Settings()
    assert dataclasses.is_dataclass(s) and not hasattr(Settings, "__getattr__")
    assert [f.name for f in dataclasses.fields(Settings)] == [x.name for x in SETTINGS]
    for setting in SETTINGS:
        assert type(getattr(s, setting.name)) is setting.type and getattr(s, setting.name) == setting.default
        assert setting.help and setting.env == "DPS_" + setting.name.upper()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.workers = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = s.no_such_setting  # type: ignore[attr-defined]


def test_environment_and_overrides():
    s = load_settings(env={"DPS_WORKERS": "4", "DPS_HOME": "/tmp/x"}, port=9999)
    assert s.workers == 4 and s.port == 9999 and str(s.home_path) == "/tmp/x"
    assert s.store_url == "sqlite:////tmp/x/store.sqlite"
    assert load_settings(env={}).workers == 2


def test_an_override_beats_the_environment_which_beats_the_default():
    env = {"DPS_PORT": "9000", "DPS_QUERY_TIMEOUT_S": "12.5"}
    assert load_settings(env=env).port == 9000
    assert load_settings(env=env, port=9001).port == 9001
    assert load_settings(env=env, port=None).port == 9000          # a flag not given
    s = load_settings(env=env, home=Path("/tmp/y"), query_timeout_s=5)
    assert s.home == "/tmp/y" and s.query_timeout_s == 5.0 and isinstance(s.query_timeout_s, float)
    assert s.replace(workers=3).workers == 3 and s.workers == 2


@pytest.mark.parametrize("env, overrides, variable", [
    ({"DPS_WORKERS": "0"}, {}, "DPS_WORKERS"),
    ({}, {"workers": True}, "DPS_WORKERS"),
    ({}, {"port": "http"}, "DPS_PORT"),
    ({"DPS_ALPHA": "1.5"}, {}, "DPS_ALPHA"),
    ({"DPS_QUERY_TIMEOUT_S": "nan"}, {}, "DPS_QUERY_TIMEOUT_S"),
    ({"DPS_LOG_LEVEL": "chatty"}, {}, "DPS_LOG_LEVEL"),
])
def test_a_value_out_of_type_or_bounds_is_refused_naming_its_variable(env, overrides, variable):
    with pytest.raises(InvalidInput, match=variable) as err:
        load_settings(env=env, **overrides)
    assert err.value.code == "invalid_setting"
    assert err.value.fields["setting"] == variable.removeprefix("DPS_").lower()


def test_a_bad_environment_value_is_a_cli_message_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    out = subprocess.run([sys.executable, "-m", "sandbox.cli", "user", "list", "--home", str(tmp_path)],
                         env={**env, "DPS_WORKERS": "many"}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "invalid_setting" in out.stderr and "DPS_WORKERS" in out.stderr
    assert "Traceback" not in out.stderr


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
