"""Fixtures of the sharing tests: the sharing world on SQLite and on PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sharing_world import build_world


@pytest.fixture
def world(make_instance, store_url, tmp_path):
    inst = make_instance(store_url, workers=1)
    return build_world(inst, tmp_path / "source")


@pytest.fixture
def sqlite_world(make_instance, tmp_path):
    inst = make_instance(None, workers=1)
    return build_world(inst, tmp_path / "source")
