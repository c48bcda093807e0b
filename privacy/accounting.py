"""Budget split, noise scales and the loss of a whole release.

A release is one OpenDP measurement: the composition (``dp.c.make_composition``)
of one branch per noised measure, each a user transformation from the exact
aggregates to one integer vector (stability map ``d -> d * sensitivity``)
chained with discrete Laplace / discrete Gaussian noise, plus one branch per
quantile (report-noisy-min on every group's scores) and, for private keys, the
thresholded partition selection. The charged loss is the composed privacy map at
``d_in = 1`` unit (``approx``: ε summed, δ from the threshold; ``zcdp``: ρ summed
and converted to (ε, δ) by ``make_zCDP_to_approxDP`` + ``make_fix_delta``). The δ of
the threshold is recomputed here and the larger of OpenDP's and ours is charged
(OpenDP #2922).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import opendp.prelude as dp

from privacy import mechanisms as mech
from privacy.composition import composed_measurement
from privacy.model import MechanismRecord, PrivacyLoss
from privacy.sensitivity import MeasureSensitivity, measure_sensitivities, rows_per_group, units_sensitivity
from privacy.vocabulary import AUTO, Accounting, AccountingOption, Mechanism, NoiseFamily
from queries.errors import PrivacyError
from queries.model import Aggregate, BoundedPlan
from queries.vocabulary import AggregateKind


@dataclass(frozen=True)
class NoisyMeasure:
    sens: MeasureSensitivity
    family: NoiseFamily
    scale: float           # in grid units (scores for quantiles)
    share: float           # ε (approx) or ρ (zcdp) of this branch
    # released by partition selection: its threshold mechanism's noisy unit counts are this
    # count (no branch of its own, no loss of its own)
    fused: bool = False


@dataclass(frozen=True)
class PartitionSelection:
    family: NoiseFamily
    scale: float
    threshold: int
    share: float
    delta: float           # the δ charged for it (max of OpenDP's and ours)


@dataclass(frozen=True)
class NoiseDesign:
    """Everything about a release that does not depend on the data."""

    accounting: Accounting
    family: NoiseFamily
    measures: tuple[NoisyMeasure, ...]
    selection: PartitionSelection | None
    loss: PrivacyLoss
    records: tuple[MechanismRecord, ...]
    measurement: dp.Measurement = field(compare=False, repr=False)  # the composed OpenDP measurement

    def measure(self, aggregate: str, role: str) -> NoisyMeasure:
        for m in self.measures:
            if m.sens.aggregate == aggregate and m.sens.role == role:
                return m
        raise KeyError((aggregate, role))


def needs_selection(plan: BoundedPlan) -> bool:
    return bool(plan.partition_selection) and any(k.domain is None for k in plan.group_keys)


def counts_units(plan: BoundedPlan, agg: Aggregate) -> bool:
    """Whether ``agg``'s exact value in every group is the group's unit count, the
    value partition selection adds noise to: ``COUNT(DISTINCT unit)``, or ``COUNT(*)``
    when each unit keeps at most one row in a group."""
    if agg.kind == AggregateKind.COUNT_UNITS:
        return True
    return agg.kind == AggregateKind.COUNT and agg.counts_rows and rows_per_group(plan, agg) == 1


def _threshold_mechanism(family: NoiseFamily) -> Mechanism:
    return Mechanism.LAPLACE_THRESHOLD if family == NoiseFamily.LAPLACE else Mechanism.GAUSSIAN_THRESHOLD


def _weights(sens: tuple[MeasureSensitivity, ...], family: NoiseFamily) -> list[float]:
    """Split of one aggregate's share minimising the summed error bound Σ a_i·noise_i
    with a_i = weight·sensitivity (value units): ε_i ∝ √a_i (Laplace, noise ∝ 1/ε),
    ρ_i ∝ a_i^(2/3) (Gaussian, noise ∝ 1/√ρ)."""
    power = 0.5 if family == NoiseFamily.LAPLACE else 2.0 / 3.0
    raw = [(s.weight * s.per_group * s.step) ** power for s in sens]
    total = sum(raw)
    return [r / total for r in raw]


def _unit_losses(family: NoiseFamily, sens: MeasureSensitivity) -> float:
    if sens.role == "score":
        return sens.max_groups * mech.unit_loss(lambda s: mech.noisy_min(family, s), sens.per_group)
    return mech.unit_loss(lambda s: mech.vector_noise(family, s), mech.vector_d_in(family, sens.l1, sens.l2))


@lru_cache(maxsize=256)
def rho_for(epsilon: float, delta: float) -> float:
    """The largest ρ whose OpenDP conversion to (ε, δ)-DP gives at most ``epsilon``."""
    def eps_of(rho: float) -> float:
        return zcdp_epsilon(rho, delta)
    return dp.binary_search(lambda rho: eps_of(rho) <= epsilon, bounds=(1e-12, max(epsilon, 1.0) * 10), T=float)


@lru_cache(maxsize=1024)
def zcdp_epsilon(rho: float, delta: float) -> float:
    """ε of a ρ-zCDP measurement at δ, by OpenDP's conversion of a Gaussian mechanism
    whose ρ is exactly ``rho``."""
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    gauss = dp.m.make_gaussian(*space, 1.0 / math.sqrt(2 * rho)) if rho > 0 else None
    if gauss is None:
        return 0.0
    return float(dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gauss), delta).map(1.0)[0])


def resolve_accounting(plan: BoundedPlan, budget: PrivacyLoss, accounting: AccountingOption) -> Accounting:
    """``auto``: zCDP (Gaussian) when δ > 0 and its summed noise variance is lower, else approx."""
    if accounting != AUTO:
        try:
            return Accounting(accounting)
        except (ValueError, TypeError):
            raise PrivacyError(f"accounting must be one of {', '.join([*Accounting, AUTO])}",
                               code="invalid_accounting") from None
    if budget.delta <= 0:
        return Accounting.APPROX
    approx = design_noise(plan, budget, Accounting.APPROX)
    zcdp = design_noise(plan, budget, Accounting.ZCDP)

    def variance(d: NoiseDesign) -> float:
        total = 0.0
        for m in d.measures:
            if m.sens.role == "score":
                continue
            sd = m.scale * math.sqrt(2) if d.family == NoiseFamily.LAPLACE else m.scale
            total += (sd * m.sens.step) ** 2 / (m.sens.weight * m.sens.per_group * m.sens.step) ** 2
        return total
    return Accounting.ZCDP if variance(zcdp) < variance(approx) else Accounting.APPROX


def design_noise(plan: BoundedPlan, budget: PrivacyLoss,
                 accounting: AccountingOption = Accounting.APPROX) -> NoiseDesign:
    """Scales for every measure so that the composed loss is within ``budget``."""
    accounting = resolve_accounting(plan, budget, accounting)
    family = accounting.family
    if budget.epsilon <= 0:
        raise PrivacyError("epsilon must be positive to release anything", code="invalid_budget")
    selecting = needs_selection(plan)
    if selecting and budget.delta <= 0:
        raise PrivacyError("grouping by keys without a public domain needs delta > 0",
                           code="delta_required")
    if accounting == Accounting.ZCDP and budget.delta <= 0:
        raise PrivacyError("zCDP accounting needs delta > 0", code="delta_required")
    if not plan.aggregates and not selecting:
        raise PrivacyError("the plan has no aggregate to release", code="nothing_to_release")

    delta_selection = 0.0
    if selecting:
        delta_selection = budget.delta if accounting == Accounting.APPROX else budget.delta / 2
    if accounting == Accounting.APPROX:
        total = budget.epsilon
    else:
        total = rho_for(budget.epsilon, budget.delta - delta_selection)
    # equal share per aggregate and one for partition selection; a count of the units that
    # selection already counts is released from selection's own noisy counts
    fused = [agg for agg in plan.aggregates if selecting and counts_units(plan, agg)]
    parts = len(plan.aggregates) - len(fused) + (1 if selecting else 0)
    share = total / parts * (1 - 1e-12)

    measures: list[NoisyMeasure] = []
    for agg in plan.aggregates:
        if agg in fused:
            continue
        sens = measure_sensitivities(plan, agg)
        for s, w in zip(sens, _weights(sens, family)):
            target = share * w
            scale = mech.scale_for_loss(family, _unit_losses(family, s), target)
            measures.append(NoisyMeasure(s, family, scale, target))

    selection = None
    if selecting:
        us = units_sensitivity(plan)
        d_in = mech.threshold_d_in(family, us.max_groups)
        unit = mech.unit_loss(lambda s: mech.threshold_noise(family, s, 1 << 40), d_in)
        scale = mech.scale_for_loss(family, unit, share)
        try:
            threshold = mech.smallest_threshold(family, scale, us.max_groups, delta_selection)
        except ValueError as exc:
            raise PrivacyError("no partition-selection threshold meets the delta budget",
                               code="delta_too_small") from exc
        selection = PartitionSelection(family, scale, threshold, share, 0.0)
        for agg in fused:
            measures.append(NoisyMeasure(replace(us, aggregate=agg.name, role="count"), family, scale, 0.0,
                                         fused=True))

    composed = composed_measurement(plan, family, [m for m in measures if not m.fused], selection)
    loss, selection, records = composed_loss(plan, accounting, family, composed, measures, selection,
                                             budget.delta - delta_selection)
    if not budget.covers(loss):
        raise PrivacyError("the composed loss exceeds the budget", code="budget_overrun")
    return NoiseDesign(accounting, family, tuple(measures), selection, loss, records, composed)


def composed_loss(plan, accounting, family, composed, measures, selection, delta_conversion):
    """The loss of the composed measurement, via OpenDP privacy maps."""
    out = composed.map(1)
    records = []
    selection_delta = 0.0
    if selection is not None:
        own = mech.threshold_delta(family, selection.scale, selection.threshold, plan.max_groups)
        opendp_delta = float(mech.threshold_noise(family, selection.scale, selection.threshold)
                             .map(mech.threshold_d_in(family, plan.max_groups))[1])
        selection_delta = max(own, opendp_delta)
        selection = PartitionSelection(family, selection.scale, selection.threshold, selection.share,
                                       selection_delta)
    if accounting == Accounting.APPROX:
        epsilon = float(out[0]) if isinstance(out, tuple) else float(out)
        loss = PrivacyLoss(epsilon, selection_delta)
    else:
        rho = float(out[0]) if isinstance(out, tuple) else float(out)
        loss = PrivacyLoss(zcdp_epsilon(rho, delta_conversion), delta_conversion + selection_delta)
    for m in measures:
        records.append(MechanismRecord(
            aggregate=m.sens.aggregate, measure=m.sens.role,
            mechanism=(_threshold_mechanism(family) if m.fused
                       else Mechanism.EXPONENTIAL_QUANTILE if m.sens.role == "score"
                       else Mechanism.DISCRETE_LAPLACE if family == NoiseFamily.LAPLACE
                       else Mechanism.DISCRETE_GAUSSIAN),
            scale=m.scale * m.sens.step, sensitivity=m.sens.per_group * m.sens.step,
            epsilon=m.share if family == NoiseFamily.LAPLACE else 0.0,
            rho=m.share if family == NoiseFamily.GAUSSIAN else 0.0))
    if selection is not None:
        records.append(MechanismRecord(
            aggregate="partition_selection", measure="units",
            mechanism=_threshold_mechanism(family),
            scale=selection.scale, sensitivity=1.0,
            epsilon=selection.share if family == NoiseFamily.LAPLACE else 0.0,
            rho=selection.share if family == NoiseFamily.GAUSSIAN else 0.0, delta=selection.delta))
    return loss, selection, tuple(records)
