"""Accuracy first: the smallest ε whose expected half-width meets a target."""

from __future__ import annotations

import opendp.prelude as dp

from privacy.model import PrivacyLoss
from privacy.release import estimate_cost
from privacy.vocabulary import Accounting, AccountingOption
from queries.errors import PrivacyError
from queries.model import BoundedPlan


def epsilon_for_width(plan: BoundedPlan, output: str, half_width: float, *, delta: float,
                      alpha: float = 0.05, cap: float,
                      accounting: AccountingOption = Accounting.APPROX) -> float:
    """The smallest ε (OpenDP ``binary_search``) such that the expected (1-alpha)
    half-width of ``output`` is at most ``half_width``; ``PrivacyError`` when ε = ``cap``
    cannot meet it or the output's width depends on the data."""
    if not half_width > 0 or not cap > 0:
        raise PrivacyError("half-width and cap must be positive", code="invalid_target")

    def width(epsilon: float) -> float:
        widths = estimate_cost(plan, PrivacyLoss(epsilon, delta), accounting=accounting,
                               alpha=alpha).expected_half_width
        if output not in widths:
            raise PrivacyError(f"output {output} has no data-free accuracy (only counts and sums do)",
                               code="width_undefined", output=output)
        return widths[output]

    if width(cap) > half_width:
        raise PrivacyError(f"output {output} cannot reach that accuracy within epsilon {cap}",
                           code="accuracy_unreachable", output=output, max_epsilon=cap)
    cap = float(cap)
    lower = cap * 1e-6
    if width(lower) <= half_width:
        return lower
    return float(dp.binary_search(lambda eps: width(eps) <= half_width, bounds=(lower, cap), T=float))
