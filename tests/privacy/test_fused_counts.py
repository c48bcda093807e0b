"""Counts under partition selection carry the noise of one mechanism, not two.

When a group key has no public domain, partition selection adds noise to each
group's unit count and keeps the groups above a threshold (OpenDP's threshold
mechanism, which releases the noisy counts it keeps). A ``COUNT(*)`` where each
unit keeps at most one row in a group, or a ``COUNT(DISTINCT unit)``, *is* that
unit count: it is released from selection's own noisy counts, with no measure of
its own, so selection gets the whole share instead of half and the count's noise
scale is halved. Other counts and aggregates keep their own measures.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from privacy import PrivacyLoss, release
from privacy.accounting import counts_units, design_noise

from .conftest import count, make_plan, private_key, public_key, table, total

BUDGET = PrivacyLoss(1.0, 1e-6)
GROUPS = 2000


def _plan(agg, max_rows=1):
    return make_plan([agg], keys=[private_key()], selection=True, max_rows=max_rows)


def test_a_count_of_units_rides_on_selection_and_has_half_the_noise():
    fused = design_noise(_plan(count(counts_rows=True)), BUDGET)
    own = design_noise(_plan(count()), BUDGET)                  # COUNT(col): NULLs make it differ from units
    (m,) = fused.measures
    assert m.fused and m.scale == fused.selection.scale
    assert own.selection.scale == pytest.approx(2 * fused.selection.scale, rel=1e-9)
    assert own.measure("a0", "count").scale == pytest.approx(2 * m.scale, rel=1e-9)
    assert fused.loss.epsilon <= BUDGET.epsilon and own.loss.epsilon <= BUDGET.epsilon


def test_which_counts_are_the_unit_count():
    assert counts_units(_plan(count(counts_rows=True)), count(counts_rows=True))
    distinct = count(counts_rows=False)
    distinct = type(distinct)(distinct.name, "count_units", distinct.columns)
    assert counts_units(_plan(distinct), distinct)
    assert not counts_units(_plan(count(counts_rows=True), max_rows=3), count(counts_rows=True))
    assert not counts_units(_plan(count()), count())
    sums = total()
    assert not counts_units(_plan(sums), sums)
    public = make_plan([count(counts_rows=True)], keys=[public_key(3)])
    design = design_noise(public, BUDGET)                       # without selection nothing is fused
    assert design.selection is None and not any(m.fused for m in design.measures)


def test_released_counts_are_the_kept_noisy_counts():
    """Only groups whose noisy count reached the threshold are kept; the released
    count is that noisy count, so none is below the threshold."""
    plan = _plan(count(counts_rows=True))
    threshold = design_noise(plan, BUDGET).selection.threshold
    n = [threshold] * GROUPS
    exact = table(g0=[f"k{i}" for i in range(GROUPS)], c=n, units=n)
    out = release(plan, exact, BUDGET)
    assert 0 < len(out.rows) < GROUPS
    assert min(row[1] for row in out.rows) >= threshold


def test_the_released_noise_has_the_selection_scale():
    """Laplace noise of scale s has standard deviation s·√2: measured over 2000
    groups far above the threshold, within 10 %."""
    plan = _plan(count(counts_rows=True))
    scale = design_noise(plan, BUDGET).selection.scale
    n = [10_000] * GROUPS
    exact = table(g0=[f"k{i}" for i in range(GROUPS)], c=n, units=n)
    errors = np.array([row[1] - 10_000 for row in release(plan, exact, BUDGET).rows], dtype=float)
    assert len(errors) == GROUPS
    assert statistics.pstdev(errors) == pytest.approx(scale * np.sqrt(2), rel=0.1)
    assert abs(float(np.mean(errors))) < 0.2 * scale + 4 * scale * np.sqrt(2) / np.sqrt(GROUPS)
