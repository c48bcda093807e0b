"""Releases: filling of public domains, partition selection, post-processing, guards."""

import math

import pytest

from privacy import PrivacyLoss, estimate_cost, release
from privacy.sensitivity import fixed_point_step
from queries.model import OutputColumn

from .conftest import count, lt_gt, make_plan, mean, private_key, public_key, quantile, table, total, variance

BIG = PrivacyLoss(50.0, 1e-6)   # tiny noise: the shapes are what is tested here


def test_loss_spent_equals_estimate():
    plan = make_plan([count(), mean("a1")], keys=[public_key(3)])
    exact = table(g0=["v0", "v1"], c=[10, 20], a1_s=[100, 200], a1_n=[10, 20])
    for accounting in ("approx", "zcdp"):
        b = PrivacyLoss(1.0, 1e-6)
        assert release(plan, exact, b, accounting=accounting).loss == estimate_cost(
            plan, b, accounting=accounting).loss


def test_public_domain_is_filled_and_outside_keys_dropped():
    plan = make_plan([count()], keys=[public_key(4)])
    exact = table(g0=["v1", "zz"], c=[1000, 5])
    r = release(plan, exact, BIG)
    assert [row[0] for row in r.rows] == ["v0", "v1", "v2", "v3"]
    assert r.rows[1][1] == pytest.approx(1000, abs=5)
    assert all(abs(row[1]) <= 5 for i, row in enumerate(r.rows) if i != 1)
    assert r.loss.delta == 0
    assert not hasattr(r, "suppressed_groups")   # no exact count of dropped groups exists


def test_partition_selection_drops_small_groups_and_says_nothing_of_them():
    plan = make_plan([count()], keys=[private_key()], selection=True)
    exact = table(g0=["big", "tiny1", "tiny2"], c=[5000, 1, 1], units=[5000, 1, 1])
    r = release(plan, exact, PrivacyLoss(1.0, 1e-6))
    assert [row[0] for row in r.rows] == ["big"]
    assert r.loss.delta > 0
    assert "suppressed_groups" not in r.to_dict() and r.notes == plan.notes


def test_selected_rows_come_in_key_order_whatever_the_storage_order():
    plan = make_plan([count()], keys=[private_key()], selection=True)
    keys = ["delta", "alpha", "charlie", "bravo"]
    forward = table(g0=keys, c=[5000] * 4, units=[5000] * 4)
    backward = table(g0=keys[::-1], c=[5000] * 4, units=[5000] * 4)
    for exact in (forward, backward):
        r = release(plan, exact, PrivacyLoss(1.0, 1e-6))
        assert [row[0] for row in r.rows] == sorted(keys)


def test_outputs_having_order_limit_on_noisy_values():
    outputs = (OutputColumn("k", "k", is_key=True), OutputColumn("n", "a0", ("a0",)),
               OutputColumn("twice", "a0 * 2", ("a0",)), OutputColumn("mean", "a1 / a0", ("a1", "a0")))
    plan = make_plan([count(), total("a1", column="s", upper=10)], keys=[public_key(4)], outputs=outputs,
                     having="n > 100", order_by="n DESC", limit=2)
    exact = table(g0=["v0", "v1", "v2", "v3"], c=[500, 50, 2000, 1000], s=[2500, 100, 4000, 5000])
    r = release(plan, exact, BIG)
    assert r.columns == ("k", "n", "twice", "mean")
    assert [row[0] for row in r.rows] == ["v2", "v3"]
    assert r.post_suppressed == 2
    for row, cells in zip(r.rows, r.intervals):
        assert cells[0] is None
        assert row[2] == 2 * row[1]
        lo, hi = cells[2]
        assert lo == pytest.approx(2 * cells[1][0]) and hi == pytest.approx(2 * cells[1][1])
        assert cells[3][0] <= row[3] <= cells[3][1]


def test_no_keys_single_row_and_empty_input():
    plan = make_plan([count(), mean("a1", lower=0, upper=10)])
    r = release(plan, table(c=[7], a1_s=[35], a1_n=[7]), BIG)
    assert len(r.rows) == 1 and r.rows[0][0] == pytest.approx(7, abs=3)
    empty = release(plan, table(c=[], a1_s=[], a1_n=[]), BIG)
    assert len(empty.rows) == 1


def test_nan_and_null_measures_are_zero_and_not_counted():
    plan = make_plan([total(column="s", upper=10, integer=False)], keys=[public_key(2)])
    r = release(plan, table(g0=["v0", "v1"], s=[math.nan, None]), BIG)
    assert all(abs(row[1]) < 5 for row in r.rows)
    clean = release(plan, table(g0=["v0", "v1"], s=[0.0, 0.0]), BIG)
    assert r.notes == clean.notes == plan.notes    # how many cells were invalid is an exact fact


def test_float_sum_is_on_the_grid():
    agg = total(column="s", lower=0.0, upper=5000.0, integer=False)
    plan = make_plan([agg], keys=[public_key(2)])
    r = release(plan, table(g0=["v0", "v1"], s=[1234.56, 99.5]), BIG)
    step = fixed_point_step(5000.0)
    for row in r.rows:
        assert (row[1] / step) == pytest.approx(round(row[1] / step), abs=1e-6)


def test_avg_var_quantile_shapes():
    cands = tuple(range(0, 101, 10))
    values = [i % 101 for i in range(5000)]
    lt, gt = lt_gt(values, cands)
    s, q = sum(values), sum(v * v for v in values)
    plan = make_plan([mean("a0"), variance("a1", "stddev_samp"), quantile("a2", 0.5, cands)])
    exact = table(a0_s=[s], a0_n=[5000], a1_s=[s], a1_q=[q], a1_n=[5000], a2_lt=[lt], a2_gt=[gt])
    r = release(plan, exact, PrivacyLoss(20.0))
    (avg, sd, med), (i_avg, i_sd, i_med) = r.rows[0], r.intervals[0]
    true_sd = math.sqrt((q - s * s / 5000) / 4999)
    # one draw: the truth within three half-widths (a 95% interval misses 1 time in 20;
    # coverage itself is measured over many draws in test_noise_statistics)
    for estimate, (lo, hi), truth in ((avg, i_avg, s / 5000), (sd, i_sd, true_sd)):
        assert lo <= estimate <= hi and abs(estimate - truth) <= 3 * max(estimate - lo, hi - estimate)
    assert avg == pytest.approx(s / 5000, abs=0.5) and sd == pytest.approx(true_sd, abs=1.0)
    assert med == 50 and i_med == (0.0, 100.0)
