"""Response time and concurrency with the default settings.

Timing (slow tier): with ``min_response_ms`` 50 and grid ratio 2 the service
answers a run at the first grid point 50·2^k ms at or after its duration. Pairs
whose T query does extra work only for the planted person's rows (a fan-out over
public lookup tables that only T's 200,000 visits reach, expensive per-row work
under a CASE) are run interleaved, 15 times each. Every response must sit just
after a grid point (the median offset is under a quarter of the point), and the
grid points T's responses land on must not differ from F's: a Mann-Whitney test
of the two samples of grid indices must not reject at p < 0.001. A run whose
duration sits near a grid point lands on either side of it by chance, for T and
F alike; a person's share of the work that moved T's runs to a later point would
separate the samples. This is a statistical test of a property of the response,
not a speed assertion. A pair refused before it runs (a costly function, a
fan-out over the limit) answers after planning alone: its medians must agree
within 10 ms.

Concurrency: ``max_concurrent_runs`` (1) refuses a second run of one operator
while the first is in flight with ``too_many_runs`` (HTTP 429) and reserves
nothing for it; another operator is not held up.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from datetime import date, timedelta

import pytest

from .planted import DATASET, OPERATOR, OWNER, open_planted, write_planted
from .side_channel_pairs import PAIRS, Pair, make_pair

REPEATS = 15
GRID_MS, RATIO = 50, 2.0
# T's visits at the clinic with 60 staff rows: joined rows only T's query makes. The policy
# lets one person contribute 10 rows to each of 2 groups, but nothing bounds how many rows
# a person has in the data: this is the worst case of "one person's share of the work".
T_VISITS = 200_000

TIMING_PAIRS = [p for p in PAIRS if p.name in ("staff_fan_out", "cross_join_hundred", "non_equality_join",
                                               "public_key_through_join")] + [
    make_pair("string_work_under_case", "timing",
          "SELECT COUNT(*) FROM people WHERE CASE WHEN city = '{city}' THEN LENGTH(CONCAT(diagnosis, diagnosis, "
          "diagnosis, diagnosis, diagnosis, diagnosis, diagnosis, diagnosis)) > age ELSE FALSE END"),
    make_pair("padding_under_case", "timing",
          "SELECT COUNT(*) FROM people WHERE CASE WHEN city = '{city}' THEN LENGTH(LPAD(diagnosis, 100000000, 'x')) "
          "> age ELSE FALSE END"),
    make_pair("repeat_under_case", "timing",
          "SELECT COUNT(*) FROM people WHERE CASE WHEN city = '{city}' THEN LENGTH(REPEAT(diagnosis, 100000000)) "
          "> age ELSE FALSE END"),
]


@pytest.fixture(scope="module")
def default_instance(tmp_path_factory):
    """The planted dataset, T with many visits, on an instance with every setting
    at its default; operator2 holds a licence too."""
    from sandbox.audit import Actor
    from sandbox.licences import grant_licence

    root = tmp_path_factory.mktemp("timing")
    inst = open_planted(root / "home", write_planted(root / "source", t_visits=T_VISITS))
    assert (inst.settings.min_response_ms, inst.settings.response_grid_ratio) == (GRID_MS, RATIO)
    assert inst.settings.max_concurrent_runs == 1
    grant_licence(inst, Actor(OWNER, "owner"), dataset=DATASET, operator="operator2", epsilon=100.0, delta=0.001,
                  purpose="concurrency test", expires=date.today() + timedelta(days=30))
    yield inst
    inst.close()


def _timed(inst, sql: str, user: str = OPERATOR) -> tuple[float, str]:
    from queries.errors import SandboxError
    from sandbox.service import run_query

    started = time.perf_counter()
    try:
        run_query(inst, user, DATASET, sql, epsilon=0.05)
        outcome = "ok"
    except SandboxError as exc:
        outcome = exc.code
    return time.perf_counter() - started, outcome


def grid_point(seconds: float) -> int:
    """The index k of the grid point 50·2^k ms a response time sits on (responses
    land at or just after a grid point)."""
    return math.floor(math.log(seconds * 1000 / GRID_MS, RATIO) + 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("pair", TIMING_PAIRS, ids=lambda p: p.name)
def test_medians_of_t_and_f_fall_on_one_grid_point(default_instance, pair: Pair):
    for sql in (pair.sql_t, pair.sql_f):       # warm the worker's cache of the version
        _timed(default_instance, sql)
    times: dict[str, list[float]] = {"T": [], "F": []}
    outcomes: dict[str, set[str]] = {"T": set(), "F": set()}
    for i in range(REPEATS):
        order = (("T", pair.sql_t), ("F", pair.sql_f)) if i % 2 == 0 else (("F", pair.sql_f), ("T", pair.sql_t))
        for label, sql in order:
            elapsed, outcome = _timed(default_instance, sql)
            times[label].append(elapsed)
            outcomes[label].add(outcome)
    median_t, median_f = statistics.median(times["T"]), statistics.median(times["F"])
    summary = (f"{pair.name}: outcomes T={sorted(outcomes['T'])} F={sorted(outcomes['F'])}, "
               f"median T={median_t * 1000:.1f} ms F={median_f * 1000:.1f} ms")
    print(summary)
    assert outcomes["T"] == outcomes["F"], summary
    if outcomes["T"] & {"ok", "run_failed"}:   # the run reached the data: it answers on the grid
        every = times["T"] + times["F"]
        assert min(every) >= GRID_MS / 1000, summary
        offsets = [t * 1000 / (GRID_MS * RATIO ** grid_point(t)) - 1 for t in every]
        assert statistics.median(offsets) < 0.25, summary
        points_t, points_f = [grid_point(t) for t in times["T"]], [grid_point(t) for t in times["F"]]
        if set(points_t) | set(points_f) != {points_t[0]}:
            from scipy.stats import mannwhitneyu
            p = mannwhitneyu(points_t, points_f, method="asymptotic").pvalue
            assert p >= 0.001, f"{summary}; grid points T={points_t} F={points_f}, p={p:.2g}"
    else:                                       # refused before anything ran: planning time only
        assert abs(median_t - median_f) < 0.010, summary


def _budget_spent(inst, operator: str) -> float:
    from sqlalchemy import select

    from sandbox.persistence.models import Budget, Licence, User

    with inst.store.read() as s:
        uid = s.execute(select(User.id).where(User.name == operator)).scalar_one()
        lic = s.execute(select(Licence.id).where(Licence.operator_id == uid)).scalar_one()
        b = s.execute(select(Budget).where(Budget.licence_id == lic)).scalar_one()
        return b.spent_epsilon + b.reserved_epsilon


def _runs(inst, operator: str) -> int:
    from sandbox.service import list_runs

    return len(list_runs(inst, operator, DATASET))


def test_second_concurrent_run_of_one_operator_is_refused(default_instance):
    from queries.errors import SandboxError
    from sandbox.service import run_query

    inst = default_instance
    sql = "SELECT c.district, SUM(v.cost) FROM visits v JOIN clinics c ON v.clinic = c.clinic GROUP BY 1"
    run_query(inst, OPERATOR, DATASET, sql, epsilon=0.05)            # worker warm
    spent, runs = _budget_spent(inst, OPERATOR), _runs(inst, OPERATOR)
    others_spent, others_runs = _budget_spent(inst, "operator2"), _runs(inst, "operator2")
    threads = 4
    barrier = threading.Barrier(threads + 1)
    outcomes: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def one(user: str) -> None:
        barrier.wait()
        try:
            run_query(inst, user, DATASET, sql, epsilon=0.05)
            got = (user, "ok", 200)
        except SandboxError as exc:
            got = (user, exc.code, exc.status)
        with lock:
            outcomes.append(got)

    workers = [threading.Thread(target=one, args=(OPERATOR,)) for _ in range(threads - 1)]
    workers.append(threading.Thread(target=one, args=("operator2",)))
    for w in workers:
        w.start()
    barrier.wait()
    for w in workers:
        w.join(timeout=120)
    mine = [o for o in outcomes if o[0] == OPERATOR]
    ok = sum(1 for o in mine if o[1] == "ok")
    refused = [o for o in mine if o[1] != "ok"]
    assert len(outcomes) == threads
    assert ok >= 1 and refused, outcomes
    assert all(code == "too_many_runs" and status == 429 for _, code, status in refused), outcomes
    # nothing reserved or stored for a refused run; the other operator ran
    assert _runs(inst, OPERATOR) == runs + ok
    assert _budget_spent(inst, OPERATOR) == pytest.approx(spent + 0.05 * ok)
    assert [o[1] for o in outcomes if o[0] == "operator2"] == ["ok"]
    assert _runs(inst, "operator2") == others_runs + 1
    assert _budget_spent(inst, "operator2") == pytest.approx(others_spent + 0.05)
    # the slot is free again once the run answered
    run_query(inst, OPERATOR, DATASET, sql, epsilon=0.05)
