"""The public entry points: preview the cost of a plan, and release its result."""

from __future__ import annotations

import pyarrow as pa

from privacy.accounting import NoiseDesign, design_noise, needs_selection
from privacy.vocabulary import Accounting, AccountingOption
from privacy.estimates import aggregate_values, expected_half_width
from privacy.measures import group_table
from privacy.model import CostEstimate, NoisyRelease, PrivacyLoss
from privacy.postprocess import final_table
from queries.errors import PrivacyError
from queries.model import BoundedPlan


def _check_alpha(alpha: float) -> None:
    if not (0.0 < alpha < 1.0):
        raise PrivacyError("alpha must be within (0, 1)", code="invalid_alpha")


def _output_half_widths(plan: BoundedPlan, design: NoiseDesign, alpha: float) -> dict[str, float]:
    per_agg = {a.name: expected_half_width(a, design, alpha) for a in plan.aggregates}
    widths: dict[str, float] = {}
    for o in plan.outputs:
        name = o.expr.strip()
        width = per_agg.get(name)
        if not o.is_key and width is not None:
            widths[o.name] = float(width)
    return widths


def estimate_cost(plan: BoundedPlan, budget: PrivacyLoss, *,
                  accounting: AccountingOption = Accounting.APPROX, alpha: float = 0.05) -> CostEstimate:
    """The loss the release would spend (OpenDP privacy map of the composed
    measurement, within ``budget``), its mechanisms and the expected (1-alpha)
    half-width of each output that is a count or a sum. Touches no data."""
    _check_alpha(alpha)
    design = design_noise(plan, budget, accounting)
    return CostEstimate(loss=design.loss, mechanisms=design.records,
                        expected_half_width=_output_half_widths(plan, design, alpha),
                        alpha=alpha, accounting=design.accounting, design=design)


def release(plan: BoundedPlan, exact: pa.Table, budget: PrivacyLoss, *,
            accounting: AccountingOption = Accounting.APPROX, alpha: float = 0.05,
            cost: CostEstimate | None = None) -> NoisyRelease:
    """Noise every measure of ``exact`` (the bounded SQL's result) with OpenDP, select
    private partitions, then compute outputs, HAVING, ORDER BY and LIMIT on the noisy
    table. The loss is exactly ``estimate_cost(plan, budget, accounting=...).loss``;
    with ``cost`` (that estimate, for this plan, budget and accounting) its OpenDP
    design is used rather than built again."""
    _check_alpha(alpha)
    design = cost.design if cost is not None and cost.design is not None else design_noise(plan, budget, accounting)
    selecting = needs_selection(plan)
    groups = group_table(plan, exact, selecting)

    outputs = design.measurement(groups.exact)   # the one OpenDP invocation
    noisy: dict[str, dict[str, list]] = {a.name: {} for a in plan.aggregates}
    for m, out in zip([m for m in design.measures if not m.fused], outputs):
        noisy[m.sens.aggregate][m.sens.role] = list(out)

    kept = list(range(len(groups.keys)))
    if selecting:   # the selected keys are an output of the measurement; how many were dropped is not
        chosen = outputs[-1]
        kept = [i for i in kept if str(i) in chosen]
        for m in design.measures:   # a count of units is selection's own noisy count of the group
            if m.fused:
                noisy[m.sens.aggregate]["count"] = [round(chosen.get(str(i), 0)) for i in range(len(groups.keys))]

    table: dict[str, list] = {}
    for pos, key in enumerate(plan.group_keys):
        table[key.name] = [groups.keys[i][pos] for i in kept]
    intervals: dict[str, list] = {}
    for agg in plan.aggregates:
        vals = aggregate_values(agg, design, noisy[agg.name], alpha)
        table[agg.name] = [vals.values[i] for i in kept]
        intervals[agg.name] = [vals.intervals[i] for i in kept]

    final = final_table(plan, table, intervals)
    return NoisyRelease(columns=final.columns, rows=final.rows, intervals=final.intervals,
                        loss=design.loss, mechanisms=design.records, alpha=alpha,
                        post_suppressed=final.removed, notes=plan.notes)
