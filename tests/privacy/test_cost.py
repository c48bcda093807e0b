"""The charged loss is what OpenDP's privacy maps give, composed."""

import math

import opendp.prelude as dp
import pytest

from privacy import PrivacyLoss, epsilon_for_width, estimate_cost
from privacy import mechanisms as mech
from privacy.accounting import design_noise, zcdp_epsilon
from queries.errors import PrivacyError

from .conftest import count, make_plan, mean, private_key, public_key, quantile, total, variance

dp.enable_features("contrib")


def test_single_count_loss_is_opendp_laplace_map():
    plan = make_plan([count()], max_groups=2, max_rows=3)
    est = estimate_cost(plan, PrivacyLoss(0.7))
    (rec,) = est.mechanisms
    independent = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"),
                                    rec.scale)
    assert est.loss.epsilon == pytest.approx(independent.map(6), rel=1e-12)
    assert est.loss.epsilon <= 0.7 and est.loss.delta == 0


def test_composition_of_several_aggregates_sums_maps():
    aggs = [count("a0"), total("a1", column="s1", upper=50), mean("a2"), variance("a3"), quantile("a4")]
    plan = make_plan(aggs, max_groups=2, max_rows=4)
    design = design_noise(plan, PrivacyLoss(2.0), "approx")
    parts = []
    for m in design.measures:
        if m.sens.role == "score":
            parts.append(m.sens.max_groups * mech.noisy_min("laplace", m.scale).map(m.sens.per_group))
        else:
            parts.append(mech.vector_noise("laplace", m.scale).map(m.sens.l1))
    assert design.loss.epsilon == pytest.approx(math.fsum(parts), rel=1e-9)
    assert design.loss.epsilon == pytest.approx(2.0, rel=1e-6)
    assert len(design.measures) == 1 + 1 + 2 + 3 + 1


def test_partition_selection_adds_threshold_loss_and_conservative_delta():
    plan = make_plan([count()], keys=[private_key()], selection=True, max_groups=3)
    budget = PrivacyLoss(1.0, 1e-6)
    design = design_noise(plan, budget, "approx")
    sel = design.selection
    threshold = mech.threshold_noise("laplace", sel.scale, sel.threshold)
    eps_t, delta_opendp = threshold.map((3, 3, 1))
    count_eps = mech.vector_noise("laplace", design.measures[0].scale).map(3)
    assert design.loss.epsilon == pytest.approx(eps_t + count_eps, rel=1e-9)
    own = 3 * mech.discrete_laplace_tail(sel.scale, sel.threshold - 1)
    # OpenDP #2922: its δ omits the mass at the threshold; ours is larger and is what we charge
    assert own > delta_opendp
    assert design.loss.delta == pytest.approx(own) and design.loss.delta <= 1e-6
    assert mech.threshold_delta("laplace", sel.scale, sel.threshold - 1, 3) > 1e-6  # smallest threshold


def test_public_keys_spend_no_delta():
    plan = make_plan([count()], keys=[public_key(5)], selection=True)
    assert estimate_cost(plan, PrivacyLoss(1.0, 1e-6)).loss.delta == 0.0


def test_private_keys_need_delta():
    plan = make_plan([count()], keys=[private_key()], selection=True)
    with pytest.raises(PrivacyError) as err:
        estimate_cost(plan, PrivacyLoss(1.0))
    assert err.value.code == "delta_required"


def test_zcdp_loss_is_opendp_conversion_of_summed_rho():
    plan = make_plan([count("a0"), mean("a1")], max_groups=2, max_rows=2)
    budget = PrivacyLoss(1.0, 1e-6)
    design = design_noise(plan, budget, "zcdp")
    rho = math.fsum(mech.vector_noise("gaussian", m.scale).map(m.sens.l2) for m in design.measures)
    assert design.loss.epsilon == pytest.approx(zcdp_epsilon(rho, 1e-6), rel=1e-9)
    assert budget.covers(design.loss) and design.loss.epsilon > 0.99
    gauss = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
                               1 / math.sqrt(2 * rho))
    converted = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gauss), 1e-6).map(1.0)
    assert design.loss.epsilon == pytest.approx(converted[0], rel=1e-9)


def test_zcdp_with_partition_selection_splits_delta():
    plan = make_plan([count()], keys=[private_key()], selection=True, max_groups=2)
    budget = PrivacyLoss(1.0, 1e-6)
    design = design_noise(plan, budget, "zcdp")
    assert budget.covers(design.loss)
    assert design.selection.delta <= 5e-7 + 1e-18
    own = mech.threshold_delta("gaussian", design.selection.scale, design.selection.threshold, 2)
    assert design.selection.delta >= own


def test_auto_accounting_picks_lower_error():
    many = make_plan([count()], max_groups=20)
    assert estimate_cost(many, PrivacyLoss(1.0, 1e-6), accounting="auto").accounting == "zcdp"
    single = make_plan([count()], max_groups=1)
    assert estimate_cost(single, PrivacyLoss(1.0, 1e-9), accounting="auto").accounting == "approx"
    assert estimate_cost(many, PrivacyLoss(1.0), accounting="auto").accounting == "approx"


def test_expected_half_width_is_opendp_accuracy():
    plan = make_plan([count(), total("a1", column="s", upper=10)], max_rows=2)
    est = estimate_cost(plan, PrivacyLoss(1.0), alpha=0.1)
    scale = est.mechanisms[0].scale
    assert est.expected_half_width["out_a0"] == dp.discrete_laplacian_scale_to_accuracy(scale, 0.1)
    assert set(est.expected_half_width) == {"out_a0", "out_a1"}


def test_gaussian_accuracy_shortcut_is_never_below_exact():
    for sigma in (1001.0, 2500.0, 7000.0):
        assert mech.half_width("gaussian", sigma, 0.05) >= dp.discrete_gaussian_scale_to_accuracy(sigma, 0.05)
        assert mech.half_width("gaussian", sigma, 0.05) <= dp.discrete_gaussian_scale_to_accuracy(sigma, 0.05) + 2


def test_epsilon_for_width_is_smallest():
    plan = make_plan([count()], max_rows=3)
    eps = epsilon_for_width(plan, "out_a0", 20.0, delta=0.0, cap=5.0)
    assert estimate_cost(plan, PrivacyLoss(eps)).expected_half_width["out_a0"] <= 20.0
    assert estimate_cost(plan, PrivacyLoss(eps * 0.99)).expected_half_width["out_a0"] > 20.0
    with pytest.raises(PrivacyError):
        epsilon_for_width(plan, "out_a0", 0.5, delta=0.0, cap=1.0)
    with pytest.raises(PrivacyError):
        epsilon_for_width(make_plan([mean()]), "out_a0", 1.0, delta=0.0, cap=1.0)


def test_invalid_accounting_and_alpha():
    plan = make_plan([count()])
    with pytest.raises(PrivacyError):
        estimate_cost(plan, PrivacyLoss(1.0), accounting="renyi")
    with pytest.raises(PrivacyError):
        estimate_cost(plan, PrivacyLoss(1.0), alpha=1.5)
