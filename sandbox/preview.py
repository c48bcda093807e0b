"""The preview (the editor, ``dp-sandbox query check`` and ``POST
/api/v1/queries/preview``): ``sandbox.service.check_query`` plus what an operator
needs before pressing Run.

* **Would the run be refused?** The cost is checked against every budget level
  the run draws from (dataset and licence): the per-query cap, what is left
  (total − spent − reserved) and the cap on the number of queries. Any of these
  makes the preview not ok, with the reason, exactly where Run would refuse.
* **Accuracy of every output.** Counts and sums have a data-free half-width
  (from ``check_query``). An average's half-width depends on how many people
  are in the group: it is given for groups of 100, 1 000 and 10 000, from the
  same noise (OpenDP's accuracy of the noisy sum and count, each at α/2, with
  the clamp bounds). A quantile's interval is its candidate range; variances
  and other expressions say that their interval comes with the result.
* **A blank ε** means the service's default ε (``DPS_DEFAULT_EPSILON``, at most
  half the per-query cap, at least the floor), so a blank field never spends the
  whole per-query allowance in one run; the preview reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from privacy.model import TOLERANCE
from sandbox.instance import Instance

GROUP_SIZES = (100, 1_000, 10_000)


@dataclass(frozen=True)
class OutputAccuracy:
    output: str
    kind: str                                  # count | sum | avg | quantile | other
    half_width: float | None = None            # data-free (count, sum, quantile range)
    by_group_size: tuple[tuple[int, float], ...] = ()   # avg: (n, half-width)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "kind": self.kind, "half_width": self.half_width,
                "by_group_size": [list(x) for x in self.by_group_size], "note": self.note}


def budget_levels(inst: Instance, dataset: str, licence_id: int):
    """Status of every budget level a run on this licence draws from."""
    from sandbox.ledger import budget_rows, status_of
    from sandbox.persistence.models import Dataset

    with inst.store.read() as s:
        ds = s.execute(select(Dataset).where(Dataset.name == dataset)).scalar_one()
        return [status_of(b) for b in budget_rows(s, ds.id, licence_id)]


def refusals(levels, epsilon: float, delta: float) -> list[dict[str, Any]]:
    """Why a run at (ε, δ) would be refused, level by level (empty: it would run)."""
    out = []
    for st in levels:
        where = "licence" if st.scope == "licence" else "dataset"
        if not TOLERANCE.within(epsilon, delta, st.per_query):
            out.append({"code": "over_query_cap", "level": where,
                        "limit": {"epsilon": st.per_query.epsilon, "delta": st.per_query.delta}})
        left = st.remaining
        if not TOLERANCE.within(epsilon, delta, left):
            out.append({"code": "budget_exceeded", "level": where,
                        "limit": {"epsilon": left.epsilon, "delta": left.delta}})
        used, most = st.queries
        if most is not None and used >= most:
            out.append({"code": "query_cap_reached", "level": where, "limit": {"queries": most}})
    return out


def output_accuracy(checked) -> list[OutputAccuracy]:
    """Expected accuracy of every non-key output of a checked query."""
    from privacy import mechanisms as mech
    from privacy.accounting import design_noise

    plan, cost = checked.plan, checked.cost
    known = cost.expected_half_width
    aggs = {a.name: a for a in plan.aggregates}
    design = None
    out = []
    for o in plan.outputs:
        if o.is_key:
            continue
        agg = aggs.get(o.expr.strip())
        if o.name in known:
            out.append(OutputAccuracy(o.name, agg.kind if agg else "sum", float(known[o.name])))
        elif agg is not None and agg.kind == "avg":
            if design is None:
                design = design_noise(plan, cost.loss, cost.accounting)

            def hw(role: str) -> float:
                m = design.measure(agg.name, role)
                return mech.half_width(design.family, m.scale, cost.alpha / 2) * m.sens.step

            radius = (float(agg.upper) - float(agg.lower)) / 2
            hw_s, hw_n = hw("sum"), hw("count")
            sizes = tuple((n, min((hw_s + radius * hw_n) / max(n - hw_n, 1.0), radius)) for n in GROUP_SIZES)
            out.append(OutputAccuracy(o.name, "avg", by_group_size=sizes,
                                      note="depends on the number of people in the group"))
        elif agg is not None and agg.kind == "quantile" and agg.candidates:
            span = (float(agg.candidates[-1]) - float(agg.candidates[0])) / 2
            out.append(OutputAccuracy(o.name, "quantile", span,
                                      note="the interval is the whole candidate range; the value is one candidate"))
        else:
            out.append(OutputAccuracy(o.name, agg.kind if agg else "other",
                                      note="the interval is computed with the result"))
    return out


def preview_query(inst: Instance, operator: str, dataset: str, sql: str, *, epsilon: float | None,
                  target: tuple[str, float] | None, version: int | None = None) -> dict[str, Any]:
    """``check_query`` with the budget checks and the accuracy of every output."""
    from sandbox.service import check_query

    used_default = epsilon is None and target is None     # the service then applies its default ε
    checked = check_query(inst, operator, dataset, sql, epsilon=epsilon, target=target, version=version)
    d = checked.to_dict()
    loss = checked.cost.loss
    d["refusals"] = refusals(budget_levels(inst, dataset, checked.licence_id), loss.epsilon, loss.delta)
    d["ok"] = not d["refusals"]
    d["accuracy"] = [a.to_dict() for a in output_accuracy(checked)]
    d["default_epsilon"] = loss.epsilon if used_default else None
    return d
