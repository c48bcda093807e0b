"""Neighbouring-dataset audits: releases on D and on D' (one worst-case unit added)
give a statistically valid lower bound on ε that must not exceed the charged ε, and
the audit catches a deliberately broken sensitivity.

Every group of a public domain is an independent trial of the same per-group
mechanism (each unit touches one group, ``max_groups = 1``), so one release over
2000 groups gives 2000 trials.
"""

import numpy as np
import pytest

import privacy.sensitivity as sensitivity
from privacy import PrivacyLoss, release
from privacy import mechanisms as mech

from .conftest import (clopper_pearson, count, epsilon_lower_bound, lt_gt, make_plan, mean, private_key,
                       public_key, quantile, table, total)

pytestmark = pytest.mark.slow
GROUPS = 2000
KEYS = [f"v{i}" for i in range(GROUPS)]
EPS = 1.0


def outputs(plan, exact, times=2, budget=PrivacyLoss(EPS)):
    rs = [release(plan, exact, budget) for _ in range(times)]
    return np.array([row[1] for r in rs for row in r.rows], dtype=float), rs[0].loss


def audit(plan, d0, d1, threshold, times=2):
    out0, loss = outputs(plan, d0, times)
    out1, _ = outputs(plan, d1, times)
    trials = len(out0)
    return epsilon_lower_bound(int(np.sum(out1 >= threshold)), int(np.sum(out0 >= threshold)), trials), loss


def count_pair(rows):
    return table(g0=KEYS, c=[100] * GROUPS), table(g0=KEYS, c=[100 + rows] * GROUPS)


def test_count_audit_within_charged_epsilon():
    plan = make_plan([count()], keys=[public_key(GROUPS)], max_rows=5)
    d0, d1 = count_pair(5)
    lower, loss = audit(plan, d0, d1, threshold=105)
    assert lower <= loss.epsilon
    assert lower > 0.5      # the audit has power: the bound is close to the truth


def test_audit_catches_sensitivity_that_ignores_max_rows(monkeypatch):
    monkeypatch.setattr(sensitivity, "rows_per_group", lambda plan, agg: 1)
    plan = make_plan([count()], keys=[public_key(GROUPS)], max_rows=5)
    d0, d1 = count_pair(5)
    lower, loss = audit(plan, d0, d1, threshold=105)
    assert loss.epsilon == pytest.approx(EPS)
    assert lower > loss.epsilon


def test_total_bound_audit_within_charged_epsilon_and_catches_a_bound_ignored(monkeypatch):
    """A unit reaches up to 5 groups with up to 5 rows in each, but at most 5 rows in
    total (``max_total``): the noise is set by the total, L1 = 5, not 5 · 5. The
    worst neighbour puts all 5 rows in one group; the audit's bound stays within the
    charged ε and is close to it. With the per-group bound ignored (L1 = total = 1)
    the same audit shows the loss exceeds what is charged."""
    plan = make_plan([count()], keys=[public_key(GROUPS)], max_groups=5, max_rows=5, max_total=5)
    assert sensitivity.measure_sensitivities(plan, plan.aggregates[0])[0].l1 == 5
    d0, d1 = count_pair(5)
    lower, loss = audit(plan, d0, d1, threshold=105)
    assert 0.5 < lower <= loss.epsilon
    broken = make_plan([count()], keys=[public_key(GROUPS)], max_groups=5, max_rows=1, max_total=1)
    monkeypatch.setattr(sensitivity, "rows_per_group", lambda plan, agg: 1)
    lower, loss = audit(broken, d0, d1, threshold=105)
    assert loss.epsilon == pytest.approx(EPS) and lower > loss.epsilon


def test_sum_audit_with_extreme_values():
    plan = make_plan([total(column="s", lower=-50, upper=200)], keys=[public_key(GROUPS)], max_rows=2)
    d0 = table(g0=KEYS, s=[1000] * GROUPS)
    d1 = table(g0=KEYS, s=[1000 + 2 * 200] * GROUPS)
    lower, loss = audit(plan, d0, d1, threshold=1400)
    assert 0.5 < lower <= loss.epsilon


def test_average_audit():
    # D: 5 rows at the lower bound; D': plus one unit with 3 rows at the upper bound
    plan = make_plan([mean(lower=0, upper=100)], keys=[public_key(GROUPS)], max_rows=3)
    d0 = table(g0=KEYS, a0_s=[0] * GROUPS, a0_n=[5] * GROUPS)
    d1 = table(g0=KEYS, a0_s=[300] * GROUPS, a0_n=[8] * GROUPS)
    lower, loss = audit(plan, d0, d1, threshold=37.5)
    assert lower <= loss.epsilon


def test_quantile_audit():
    cands = (0, 25, 50, 75, 100)
    base = [10, 20, 30, 60, 70]
    plan = make_plan([quantile(candidates=cands)], keys=[public_key(GROUPS)], max_rows=2)

    def exact(values):
        lt, gt = lt_gt(values, cands)
        return table(g0=KEYS, a0_lt=[lt] * GROUPS, a0_gt=[gt] * GROUPS)
    lower, loss = audit(plan, exact(base), exact(base + [100, 100]), threshold=50)
    assert lower <= loss.epsilon


def test_partition_selection_release_rate_within_charged_delta():
    """A group present only in D' (one unit) must appear with probability <= δ; this
    also shows why OpenDP's own δ (#2922) is not what we charge."""
    budget = PrivacyLoss(1.0, 0.01)
    plan = make_plan([count()], keys=[private_key()], selection=True, max_groups=1)
    d1 = table(g0=KEYS, c=[1] * GROUPS, units=[1] * GROUPS)
    released = 0
    # 120,000 trials: the observed rate (~0.0068) sits ~8σ above OpenDP's reported δ
    # (~0.0042) and at the charged δ (~0.0069), so neither assertion is flaky.
    times = 60
    for _ in range(times):
        r = release(plan, d1, budget)
        released += len(r.rows)
    lo, _ = clopper_pearson(released, GROUPS * times, 0.999)
    assert lo <= r.loss.delta
    sel = [m for m in r.mechanisms if m.aggregate == "partition_selection"][0]
    threshold = mech.smallest_threshold("laplace", sel.scale, 1, 0.01)
    opendp_delta = mech.threshold_noise("laplace", sel.scale, threshold).map((1, 1, 1))[1]
    assert lo > opendp_delta        # OpenDP's reported δ is exceeded by the observed rate
