"""The empty twin runs once per SQL text (and parameter names and types) per cached
version: a repeat skips it, anything new is still checked and refused there."""

from __future__ import annotations

import shutil

import pytest

from sandbox.execution.worker import QueryInvalid, WorkerPool, twin_key

from .conftest import PEOPLE, TEST_LIMITS

SALTED = "SELECT count(*) AS n FROM ds.people WHERE hash(person_id, $salt) IS NOT NULL"
BROKEN = "SELECT count(*) AS n FROM ds.people WHERE no_such_column > 0"


@pytest.fixture()
def one_worker(tmp_path):
    with WorkerPool(1, TEST_LIMITS, temp_root=tmp_path) as pool:
        yield pool


def test_a_repeated_query_skips_the_twin(one_worker, version, data_key):
    pool = one_worker
    for salt in ("a", "b", "c"):    # a fresh salt per run, as the query service sends
        assert pool.execute(version.path, data_key, SALTED, {"salt": salt}).column("n").to_pylist() == [PEOPLE]
    assert pool.twin_runs == 1
    pool.execute(version.path, data_key, SALTED, {"salt": 7})        # another parameter type: checked again
    pool.execute(version.path, data_key, SALTED + " ", {"salt": "a"})  # another text: checked again
    assert pool.twin_runs == 3


def test_a_different_query_is_still_checked_and_refused(one_worker, version, data_key):
    pool = one_worker
    pool.execute(version.path, data_key, SALTED, {"salt": "a"})
    for _ in range(2):              # a refusal is not remembered: the twin runs and refuses each time
        with pytest.raises(QueryInvalid):
            pool.execute(version.path, data_key, BROKEN, {"salt": "a"})
    assert pool.twin_runs == 3


def test_passes_are_remembered_per_version(one_worker, version, data_key, tmp_path):
    pool = one_worker
    copy = tmp_path / "copy.dpsv"
    shutil.copy(version.path, copy)
    pool.execute(version.path, data_key, SALTED, {"salt": "a"})
    pool.execute(copy, data_key, SALTED, {"salt": "a"})
    pool.execute(copy, data_key, SALTED, {"salt": "b"})
    assert pool.twin_runs == 2


def test_the_key_is_the_text_and_the_parameter_names_and_types():
    assert twin_key("SELECT 1", {"b": 1, "a": "x"}) == ("SELECT 1", (("a", "str"), ("b", "int")))
    assert twin_key("SELECT 1", {"a": "x"}) == twin_key("SELECT 1", {"a": "y"})
    assert twin_key("SELECT 1", {"a": "x"}) != twin_key("SELECT 1", {"a": 1})
