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


def test_partition_selection_units():
    assert units_sensitivity(make_plan([count()], max_groups=5)).l1 == 5


def test_bad_bounds_rejected():
    with pytest.raises(PrivacyError):
        measure_sensitivities(make_plan([mean(lower=10, upper=0)]), mean(lower=10, upper=0))
    with pytest.raises(PrivacyError):
        measure_sensitivities(make_plan([count()], max_rows=0), count())
    with pytest.raises(PrivacyError):
        measure_sensitivities(make_plan([count()]), Aggregate("a0", "mode", {"x": "y"}))
