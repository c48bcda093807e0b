"""Hand-built bounded plans and exact tables for the privacy tests."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from queries.model import Aggregate, BoundedPlan, GroupKey, OutputColumn


def make_plan(aggregates, *, keys=(), outputs=None, max_groups=1, max_rows=1, selection=False,
              having=None, order_by=None, limit=None, max_total=None):
    if outputs is None:
        outputs = tuple(OutputColumn(k.name, k.name, is_key=True) for k in keys) + tuple(
            OutputColumn(f"out_{a.name}", a.name, (a.name,)) for a in aggregates)
    return BoundedPlan(dataset="test", tables=("t",), group_keys=tuple(keys), aggregates=tuple(aggregates),
                       outputs=tuple(outputs), bounded_sql="SELECT 1", max_groups=max_groups,
                       max_rows=max_rows, fingerprint="test", partition_selection=selection,
                       units_column="units" if selection else None, having=having,
                       order_by=order_by, limit=limit, max_total=max_total)


def count(name="a0", column="c", **kw):
    return Aggregate(name, "count", {"count": column}, **kw)


def total(name="a0", column="s", lower=0.0, upper=100.0, integer=True, **kw):
    return Aggregate(name, "sum", {"sum": column}, lower=lower, upper=upper, integer=integer, **kw)


def mean(name="a0", lower=0.0, upper=100.0, integer=True):
    return Aggregate(name, "avg", {"sum": f"{name}_s", "count": f"{name}_n"}, lower=lower, upper=upper,
                     integer=integer)


def variance(name="a0", kind="var_pop", lower=0.0, upper=100.0, integer=True):
    return Aggregate(name, kind, {"sum": f"{name}_s", "sumsq": f"{name}_q", "count": f"{name}_n"},
                     lower=lower, upper=upper, integer=integer)


def quantile(name="a0", q=0.5, candidates=(0, 25, 50, 75, 100)):
    return Aggregate(name, "quantile", {"lt": f"{name}_lt", "gt": f"{name}_gt"}, lower=candidates[0],
                     upper=candidates[-1], quantile=q, candidates=tuple(candidates))


def lt_gt(values, candidates):
    return ([sum(1 for v in values if v < c) for c in candidates],
            [sum(1 for v in values if v > c) for c in candidates])


def public_key(n, name="k", column="g0"):
    return GroupKey(name, column, tuple(f"v{i}" for i in range(n)))


def private_key(name="k", column="g0"):
    return GroupKey(name, column, None)


def table(**columns):
    return pa.table(columns)


def clopper_pearson(successes: int, trials: int, conf: float) -> tuple[float, float]:
    """Two-sided exact binomial interval at level ``conf``."""
    from scipy.stats import beta
    a = 1 - conf
    lo = 0.0 if successes == 0 else float(beta.ppf(a / 2, successes, trials - successes + 1))
    hi = 1.0 if successes == trials else float(beta.ppf(1 - a / 2, successes + 1, trials - successes))
    return lo, hi


def epsilon_lower_bound(hits_d1: int, hits_d0: int, trials: int, conf: float = 0.999) -> float:
    """A valid lower bound on ε from a threshold test: P1 <= e^ε P0 + δ (δ = 0 here)."""
    p1_lo, _ = clopper_pearson(hits_d1, trials, conf)
    _, p0_hi = clopper_pearson(hits_d0, trials, conf)
    if p1_lo <= 0:
        return 0.0
    return max(0.0, math.log(p1_lo / p0_hi))


@pytest.fixture
def keys_1000():
    return public_key(1000)
