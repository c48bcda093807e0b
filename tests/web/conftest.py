"""Fixtures of the web tests: an instance with one user per role, the app,
bearer tokens per role, and a small demo instance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from web_helpers import ROLE_USER, add_users, token_for


@pytest.fixture
def web_instance(make_instance):
    inst = make_instance()
    add_users(inst)
    return inst


@pytest.fixture
def app(web_instance):
    from web.app import create_app

    return create_app(web_instance, {"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tokens(client):
    return {role: token_for(client, user) for role, user in ROLE_USER.items()}


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory):
    """A demo instance (small population) built once per session: users owner1,
    operator1, reviewer1, reviewer2, admin1, the three demo datasets and a licence
    on ``health`` for operator1. Returns (settings, credentials)."""
    from sandbox.demo.run import run_demo
    from sandbox.settings import load_settings

    home = tmp_path_factory.mktemp("demo")
    settings = load_settings(env={}, home=str(home / "home"), workers=1)
    inst = run_demo(settings, people=2000, echo=lambda _: None)
    creds = json.loads((inst.home / "demo-credentials.json").read_text())
    inst.close()
    return settings, creds


@pytest.fixture(scope="session")
def health_source(tmp_path_factory):
    """The health demo files (500 people) and their policy, written once."""
    from sandbox.demo.data import write_health

    return write_health(tmp_path_factory.mktemp("health-src"), people=500)


@pytest.fixture
def licensed_instance(web_instance, health_source):
    """health registered by owner1, a licence (ε = 5) for operator1."""
    from datetime import date, timedelta

    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.licences import grant_licence

    owner = Actor("owner1", "owner")
    add_dataset(web_instance, owner, health_source)
    grant_licence(web_instance, owner, dataset="health", operator="operator1", epsilon=5.0, delta=1e-6,
                  purpose="Tests: clinic planning", expires=date.today() + timedelta(days=30))
    return web_instance


@pytest.fixture
def licensed_app(licensed_instance):
    from web.app import create_app

    return create_app(licensed_instance, {"TESTING": True})
