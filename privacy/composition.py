"""A whole release as one composed OpenDP measurement over the exact aggregates.

The input is an ``ExactAggregates`` value (one integer vector per measure, the
score vectors of each quantile per group, the unit counts per group label); the
input metric counts privacy units added or removed (``d_in = 1``). Each branch
maps it to what one OpenDP mechanism takes, with a stability map that states the
sensitivity from the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import opendp.prelude as dp

from privacy import mechanisms as mech
from privacy.vocabulary import NoiseFamily


@dataclass
class ExactAggregates:
    vectors: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    scores: dict[str, list[list[int]]] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)


def _domain():
    return dp.user_domain("ExactAggregates", lambda x: isinstance(x, ExactAggregates))


def _vector_branch(domain, metric, family, m):
    s = m.sens
    key = (s.aggregate, s.role)
    if family == NoiseFamily.LAPLACE:
        out_metric, stability = dp.l1_distance(T=mech.INT), (lambda d, l1=s.l1: int(d) * l1)
    else:
        out_metric, stability = dp.l2_distance(T=float), (lambda d, l2=s.l2: float(d) * l2)
    pick = dp.t.make_user_transformation(domain, metric, mech.int_vector_space(), out_metric,
                                         lambda x, key=key: x.vectors[key], stability)
    return pick >> mech.vector_noise(family, m.scale)


def _quantile_branch(domain, metric, family, m):
    s = m.sens
    inner = mech.noisy_min(family, m.scale)
    measure = dp.max_divergence() if family == NoiseFamily.LAPLACE else dp.zero_concentrated_divergence()

    def select(x, name=s.aggregate):
        return [int(inner(scores)) for scores in x.scores[name]]

    def privacy_map(d, g=s.max_groups, per=s.per_group):
        # each unit touches at most g groups, each group's selection is charged separately
        return g * float(inner.map(int(d) * per))

    return dp.m.make_user_measurement(domain, metric, measure, select, privacy_map)


def _selection_branch(domain, metric, family, selection, max_groups):
    inner = mech.threshold_noise(family, selection.scale, selection.threshold)
    base = mech.threshold_d_in(family, max_groups)
    pick = dp.t.make_user_transformation(
        domain, metric, inner.input_domain, inner.input_metric, lambda x: x.units,
        lambda d: tuple(type(v)(v * d) for v in base))
    return pick >> inner


def composed_measurement(plan, family, measures, selection):
    domain, metric = _domain(), dp.symmetric_distance()
    branches = []
    for m in measures:
        if m.sens.role == "score":
            branches.append(_quantile_branch(domain, metric, family, m))
        else:
            branches.append(_vector_branch(domain, metric, family, m))
    if selection is not None:
        branches = [dp.c.make_approximate(b) for b in branches]
        branches.append(_selection_branch(domain, metric, family, selection, plan.max_groups))
    return dp.c.make_composition(branches)
