import math

import pytest

from privacy.sensitivity import (FLOAT_SLACK_UNITS, centre, fixed_point_step, measure_sensitivities,
                                 quantile_fraction, units_sensitivity)
from queries.errors import PrivacyError
from queries.model import Aggregate

from .conftest import count, make_plan, mean, quantile, total, variance


def by_role(plan, agg):
    return {s.role: s for s in measure_sensitivities(plan, agg)}


def test_count_scales_with_groups_and_rows():
    plan = make_plan([count()], max_groups=3, max_rows=5)
    s = by_role(plan, plan.aggregates[0])["count"]
    assert (s.per_group, s.l1, s.l2) == (5, 15, pytest.approx(5 * math.sqrt(3)))


def test_aggregate_max_rows_overrides_plan():
    agg = Aggregate("a0", "count", {"count": "c"}, max_rows=2)
    plan = make_plan([agg], max_groups=1, max_rows=10)
    assert by_role(plan, agg)["count"].per_group == 2


def test_count_units_is_one_per_group():
    agg = Aggregate("a0", "count_units", {"count": "c"})
    plan = make_plan([agg], max_groups=4, max_rows=10)
    assert by_role(plan, agg)["count"].l1 == 4


def test_integer_sum_uses_largest_absolute_bound():
    plan = make_plan([total(lower=-30, upper=20)], max_groups=2, max_rows=3)
    assert by_role(plan, plan.aggregates[0])["sum"].l1 == 2 * 3 * 30
    plan = make_plan([total(lower=5, upper=20)], max_rows=3)
    assert by_role(plan, plan.aggregates[0])["sum"].per_group == 60


def test_float_sum_on_power_of_two_grid_with_slack():
    plan = make_plan([total(lower=0.0, upper=5000.0, integer=False)], max_rows=2)
    s = by_role(plan, plan.aggregates[0])["sum"]
    assert s.step == fixed_point_step(5000.0) == 2.0 ** (12 - 20)
    assert s.per_group == math.ceil(2 * 5000.0 / s.step) + FLOAT_SLACK_UNITS
    assert math.log2(s.step).is_integer()


def test_average_is_centred():
    plan = make_plan([mean(lower=100, upper=200)], max_rows=2)
    mid, c, step = centre(plan.aggregates[0])
    assert (mid, c, step) == (150.0, 50.0, 1.0)
    roles = by_role(plan, plan.aggregates[0])
    assert roles["sum"].per_group == 100 and roles["count"].per_group == 2


def test_variance_measures():
    plan = make_plan([variance(lower=0, upper=10)], max_rows=1)
    roles = by_role(plan, plan.aggregates[0])
    assert roles["sumsq"].per_group == 25 and roles["sum"].per_group == 5 and roles["count"].per_group == 1


def test_quantile_score_sensitivity_matches_opendp_rule():
    plan = make_plan([quantile(q=0.3)], max_groups=2, max_rows=3)
    num, den = quantile_fraction(0.3)
    assert (num, den) == (3, 10)
    assert by_role(plan, plan.aggregates[0])["score"].per_group == 3 * max(num, den - num)


def test_total_bound_caps_l1_and_l2():
    """At most T rows of a unit in all groups: L1 <= T·c and L2 <= sqrt(d·T·c)."""
    plan = make_plan([count()], max_groups=4, max_rows=5, max_total=6)
    s = by_role(plan, plan.aggregates[0])["count"]
    assert (s.per_group, s.l1) == (5, 6)                      # not 4 · 5
    assert s.l2 == pytest.approx(math.sqrt(5 * 6))            # not 2 · 5
    plan = make_plan([total(lower=-30, upper=20)], max_groups=4, max_rows=5, max_total=6)
    assert by_role(plan, plan.aggregates[0])["sum"].l1 == 6 * 30
    plan = make_plan([count()], max_groups=2, max_rows=3, max_total=100)
    assert by_role(plan, plan.aggregates[0])["count"].l1 == 6   # a total above G · m changes nothing


def test_total_bound_on_a_fixed_point_grid_keeps_the_slack_of_each_group():
    plan = make_plan([total(lower=0.0, upper=5000.0, integer=False)], max_groups=3, max_rows=4, max_total=5)
    s = by_role(plan, plan.aggregates[0])["sum"]
    assert s.total == math.ceil(5 * 5000.0 / s.step) + FLOAT_SLACK_UNITS * 3
    assert s.l1 == s.total < 3 * s.per_group


def test_an_aggregate_with_rows_of_its_own_ignores_the_plans_total():
    agg = Aggregate("a0", "count", {"count": "c"}, max_rows=2)
    plan = make_plan([agg], max_groups=3, max_rows=10, max_total=1)
    assert by_role(plan, agg)["count"].l1 == 6


def test_partition_selection_units():
    assert units_sensitivity(make_plan([count()], max_groups=5)).l1 == 5


def test_bad_bounds_rejected():
    with pytest.raises(PrivacyError):
        measure_sensitivities(make_plan([mean(lower=10, upper=0)]), mean(lower=10, upper=0))
    with pytest.raises(PrivacyError):
        measure_sensitivities(make_plan([count()], max_rows=0), count())
    with pytest.raises(PrivacyError):
        measure_sensitivities(make_plan([count()]), Aggregate("a0", "mode", {"x": "y"}))
