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
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from privacy.model import TOLERANCE
from sandbox.audit.view import preview_recorded
from sandbox.instance import Instance

if TYPE_CHECKING:
    from privacy.model import CostEstimate
    from sandbox.service import CheckedQuery

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


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why Run would refuse at one budget level, with the limit it would break."""

    code: str                   # over_query_cap | budget_exceeded | query_cap_reached
    level: str                  # dataset | licence
    limit: dict[str, float]     # epsilon and delta, or queries

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "level": self.level, "limit": dict(self.limit)}


def refusals(levels, epsilon: float, delta: float) -> list[Refusal]:
    """Why a run at (ε, δ) would be refused, level by level (empty: it would run)."""
    out = []
    for st in levels:
        where = "licence" if st.scope == "licence" else "dataset"
        if not TOLERANCE.within(epsilon, delta, st.per_query):
            out.append(Refusal("over_query_cap", where, {"epsilon": st.per_query.epsilon, "delta": st.per_query.delta}))
        left = st.remaining
        if not TOLERANCE.within(epsilon, delta, left):
            out.append(Refusal("budget_exceeded", where, {"epsilon": left.epsilon, "delta": left.delta}))
        used, most = st.queries
        if most is not None and used >= most:
            out.append(Refusal("query_cap_reached", where, {"queries": most}))
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

            def hw(role: str, design=design, agg=agg) -> float:   # bound now: called in this iteration
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


@dataclass(frozen=True, slots=True)
class Preview:
    """A checked query with what Run would refuse and the accuracy of every output.
    ``ok`` is false where Run would be refused (``refusals`` say why)."""

    checked: CheckedQuery
    refusals: tuple[Refusal, ...]
    accuracy: tuple[OutputAccuracy, ...]
    default_epsilon: float | None      # the ε a blank request stands for, when it was blank

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def cost(self) -> CostEstimate:
        return self.checked.cost

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self.checked.plan.notes)

    def to_dict(self) -> dict[str, Any]:
        return {**self.checked.to_dict(), "ok": self.ok, "refusals": [r.to_dict() for r in self.refusals],
                "accuracy": [a.to_dict() for a in self.accuracy], "default_epsilon": self.default_epsilon}


@preview_recorded
def preview_query(inst: Instance, operator: str, dataset: str, sql: str, *, epsilon: float | None,
                  target: tuple[str, float] | None, version: int | None = None) -> Preview:
    """``check_query`` with the budget checks and the accuracy of every output."""
    from sandbox.service import check_query

    used_default = epsilon is None and target is None     # the service then applies its default ε
    checked = check_query(inst, operator, dataset, sql, epsilon=epsilon, target=target, version=version)
    loss = checked.cost.loss
    return Preview(checked, tuple(refusals(budget_levels(inst, dataset, checked.licence_id), loss.epsilon, loss.delta)),
                   tuple(output_accuracy(checked)), loss.epsilon if used_default else None)
