"""The noise of many releases fits the claimed scale, a scale 30 % off is rejected,
and the (1-alpha) intervals cover at about the claimed rate."""


import numpy as np
import pytest
from scipy import stats

from privacy import PrivacyLoss, release
from privacy.sensitivity import fixed_point_step

from .conftest import count, lt_gt, make_plan, mean, public_key, quantile, table, total
from .stats import (chi_square_pvalue, discrete_gaussian_pmf, discrete_laplace_pmf, discrete_laplace_variance,
                    permute_and_flip_probs)

pytestmark = pytest.mark.slow
GROUPS = 2000
KEYS = [f"v{i}" for i in range(GROUPS)]


def releases(plan, exact, budget, times, accounting="approx"):
    return [release(plan, exact, budget, accounting=accounting) for _ in range(times)]


def column(rs, index):
    return np.array([row[index] for r in rs for row in r.rows])


@pytest.mark.parametrize("accounting", ["approx", "zcdp"])
def test_count_noise_fits_claimed_scale_and_rejects_30_percent_off(accounting):
    plan = make_plan([count()], keys=[public_key(GROUPS)], max_rows=3)
    exact = table(g0=KEYS, c=[100] * GROUPS)
    budget = PrivacyLoss(0.5, 1e-6)
    rs = releases(plan, exact, budget, 3, accounting)
    noise = column(rs, 1) - 100
    scale = rs[0].mechanisms[0].scale
    pmf = discrete_laplace_pmf if accounting == "approx" else discrete_gaussian_pmf
    assert chi_square_pvalue(noise, lambda z: pmf(z, scale)) > 1e-3
    for wrong in (0.7 * scale, 1.3 * scale):
        assert chi_square_pvalue(noise, lambda z, wrong=wrong: pmf(z, wrong)) < 1e-3
    lo, hi = column_intervals(rs, 1)
    coverage = np.mean((lo <= 100) & (100 <= hi))
    assert 0.94 <= coverage <= 0.975


def column_intervals(rs, index):
    cells = [cell[index] for r in rs for cell in r.intervals]
    return np.array([c[0] for c in cells]), np.array([c[1] for c in cells])


@pytest.mark.parametrize("accounting", ["approx", "zcdp"])
def test_float_sum_noise_fits_claimed_scale(accounting):
    agg = total(column="s", lower=0.0, upper=250.0, integer=False)
    plan = make_plan([agg], keys=[public_key(GROUPS)], max_rows=2)
    exact_value = 12345.678
    exact = table(g0=KEYS, s=[exact_value] * GROUPS)
    rs = releases(plan, exact, PrivacyLoss(1.0, 1e-6), 2, accounting)
    noise = column(rs, 1) - exact_value
    scale = rs[0].mechanisms[0].scale
    assert np.allclose(column(rs, 1) / fixed_point_step(250.0), np.round(column(rs, 1) / fixed_point_step(250.0)))
    dist = "laplace" if accounting == "approx" else "norm"
    assert stats.kstest(noise, dist, args=(0, scale)).pvalue > 1e-3
    for wrong in (0.7 * scale, 1.3 * scale):
        assert stats.kstest(noise, dist, args=(0, wrong)).pvalue < 1e-3
    lo, hi = column_intervals(rs, 1)
    assert 0.94 <= np.mean((lo <= exact_value) & (exact_value <= hi)) <= 0.97


def test_average_noise_variance_matches_claim_and_intervals_cover():
    n, true_mean = 2000, 30
    plan = make_plan([mean()], keys=[public_key(GROUPS)])
    exact = table(g0=KEYS, a0_s=[n * true_mean] * GROUPS, a0_n=[n] * GROUPS)
    rs = releases(plan, exact, PrivacyLoss(0.2), 2)
    errors = column(rs, 1) - true_mean
    by_role = {m.measure: m for m in rs[0].mechanisms}
    var_s = discrete_laplace_variance(by_role["sum"].scale)
    var_n = discrete_laplace_variance(by_role["count"].scale)
    claimed = (var_s + (true_mean - 50) ** 2 * var_n) / n ** 2
    ratio = np.var(errors) / claimed
    assert 0.85 < ratio < 1.15
    assert not 0.85 < np.var(errors) / (claimed * 1.3 ** 2) < 1.15
    assert not 0.85 < np.var(errors) / (claimed * 0.7 ** 2) < 1.15
    lo, hi = column_intervals(rs, 1)
    assert np.mean((lo <= true_mean) & (true_mean <= hi)) >= 0.94


def test_quantile_selection_fits_permute_and_flip_at_claimed_scale():
    cands = (0, 25, 50, 75, 100)
    values = [10, 20, 30, 40, 55, 60, 70, 80, 90]
    lt, gt = lt_gt(values, cands)
    plan = make_plan([quantile(candidates=cands)], keys=[public_key(GROUPS)])
    exact = table(g0=KEYS, a0_lt=[lt] * GROUPS, a0_gt=[gt] * GROUPS)
    rs = releases(plan, exact, PrivacyLoss(1.0), 2)
    picks = column(rs, 1)
    observed = np.array([np.sum(picks == c) for c in cands], dtype=float)
    scores = [abs(a - b) for a, b in zip(lt, gt)]
    scale = rs[0].mechanisms[0].scale

    def pvalue(s):
        expected = permute_and_flip_probs(scores, s) * len(picks)
        return stats.chisquare(observed, expected).pvalue
    assert pvalue(scale) > 1e-3
    assert pvalue(0.7 * scale) < 1e-3 and pvalue(1.3 * scale) < 1e-3
