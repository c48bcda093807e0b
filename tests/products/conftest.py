"""Fixtures of the product tests (the world itself is in products_world.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from products_world import World, build_world


@pytest.fixture
def world(instance) -> World:
    """The world on each store backend (SQLite and PostgreSQL)."""
    return build_world(instance)


@pytest.fixture
def sqlite_world(make_instance) -> World:
    return build_world(make_instance())
