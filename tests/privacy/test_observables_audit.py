"""Neighbouring-dataset audits of the non-numeric fields of a run.

D is the planted dataset; D' is D without the planted person T (the worst-case
unit: above the clamp, alone in a city, a unique diagnosis, values that break
functions). Both are versions of one dataset on one instance (D' is version 1,
D version 2) and every query shape is run through the real service on each.

Every field of the run except the noisy values and their intervals is audited:
the outcome and error code, status, message and span, the result's field set,
columns, rows with their key values in order (so the row count), notes,
mechanisms, cost, and the stored run. A field that is a function of the SQL,
the policy and the settings is the same on D and D'. A field that comes out of
the measurement (the selected keys, and so the rows) may differ, but only as
differential privacy allows: for every value v, P_D(v) <= e^ε P_D'(v) + δ. A
field whose value differs *with certainty* between D and D' fails.

The quick test runs each shape once per dataset and requires every field to be
equal (the shapes are built so that partition selection keeps or drops each
group with near certainty). The slow audit runs each shape many times, and
bounds ε from below for every value of every field with Clopper-Pearson
intervals; the bound must not exceed the charged ε.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest

from .conftest import clopper_pearson
from .observe import Observer, diff, leaked
from .planted import CANARIES, CITY_T, FAST, open_planted, write_planted

D_PRIME, D = 1, 2      # version numbers
EPSILON = 0.5          # charged per run in the slow audit
RUNS = 30              # per shape and dataset in the slow audit: a certain difference gives ε >= 1.2

# Query shapes whose outcome T's presence could change, none with a T-only condition:
# on D' nobody has T's values.
SHAPES = {
    "count": "SELECT COUNT(*) FROM people",
    "city_groups": "SELECT city, COUNT(*) FROM people GROUP BY city",
    "diagnosis_groups": "SELECT diagnosis, AVG(income) FROM people GROUP BY diagnosis",
    "blood_order": "SELECT blood, COUNT(*) FROM people GROUP BY blood",
    "clinic_order": "SELECT clinic, SUM(cost) FROM visits GROUP BY clinic",
    "two_private_keys": "SELECT blood, age < 50 AS young, COUNT(*) FROM people GROUP BY 1, 2",
    "domain_key": "SELECT sex, COUNT(*), SUM(income) FROM people GROUP BY sex",
    "nan_sum": "SELECT SUM(weight), AVG(weight) FROM people",
    "null_median": "SELECT MEDIAN(height), QUANTILE_CONT(weight, 0.9) FROM people",
    "null_integer": "SELECT SUM(score), COUNT(score), AVG(score) FROM people",
    "abs_min_bigint": "SELECT COUNT(*) FROM people WHERE ABS(big) > age",
    "abs_in_projection": "SELECT SUM(LEAST(GREATEST(a, 0), 10)) FROM (SELECT ABS(big) AS a FROM people) t",
    "make_date_in_projection": "SELECT COUNT(d) FROM (SELECT MAKE_DATE(2020, age, 1) AS d FROM people "
                               "WHERE age < 20) t",
    "cast_code": "SELECT COUNT(*) FROM people WHERE CAST(code AS INTEGER) > 0",
    "interval_days": "SELECT COUNT(*) FROM people WHERE birth + INTERVAL (days) DAY > DATE '2000-01-01'",
    "cast_huge": "SELECT COUNT(*) FROM people WHERE CAST(huge AS BIGINT) > age",
    "month_from_age": "SELECT COUNT(*) FROM people WHERE CASE WHEN age < 20 THEN MAKE_DATE(2020, age, 1) > birth "
                      "ELSE TRUE END",
    "staff_fan_out": "SELECT COUNT(*) FROM visits v JOIN staff s ON v.clinic = s.clinic",
    "join_public_key": "SELECT c.district, SUM(v.cost) FROM visits v JOIN clinics c ON v.clinic = c.clinic "
                       "GROUP BY c.district",
    "count_units": "SELECT COUNT(DISTINCT person_id) FROM visits",
    "having_limit": "SELECT city, COUNT(*) AS n FROM people GROUP BY city HAVING n > 5 LIMIT 2",
    "unit_alias": "SELECT COUNT(*) FROM (SELECT person_id AS __unit, income FROM people WHERE income > 150000) t",
}
ECHOED = {"dataset_version", "version"}   # the version asked for, echoed back


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory):
    root = tmp_path_factory.mktemp("neighbours")
    with_t = write_planted(root / "d", with_t=True)
    without_t = write_planted(root / "d-prime", with_t=False)
    inst = open_planted(root / "home", without_t, neighbour=with_t, **FAST)
    observer = Observer(inst).open()
    observer.service("SELECT COUNT(*) FROM people", "-", version=D)
    observer.service("SELECT COUNT(*) FROM people", "-", version=D_PRIME)
    yield observer
    observer.close()
    inst.close()


def fields(view: dict[str, Any]) -> dict[str, str]:
    """The audited fields of one observed run: the run's outcome and result, the
    stored run, and the shape of what was logged; each a JSON text."""
    out: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ECHOED:
                    walk(v, f"{path}.{k}")
            out[f"{path}:fields"] = json.dumps(sorted(value))
        else:
            out[path] = json.dumps(value, sort_keys=True, default=str)

    walk(view["run"], "run")
    for i, stored in enumerate(view["stored"]):
        walk(stored, f"stored{i}")
    out["stored:count"] = str(len(view["stored"]))
    out["logs"] = json.dumps(view["logs"], sort_keys=True)
    return out


def epsilon_bound(hits_1: int, hits_0: int, trials: int, delta: float, conf: float = 0.999) -> float:
    """A lower bound on ε from P1 <= e^ε P0 + δ, with exact binomial intervals."""
    p1_lo, _ = clopper_pearson(hits_1, trials, conf)
    _, p0_hi = clopper_pearson(hits_0, trials, conf)
    if p1_lo - delta <= 0:
        return 0.0
    return max(0.0, math.log((p1_lo - delta) / p0_hi))


def audit(on_d: list[dict[str, str]], on_d_prime: list[dict[str, str]], delta: float) -> dict[str, Any]:
    """Per field: whether it differs with certainty, and the largest ε lower bound
    over its values, both ways."""
    report = {}
    for name in sorted({k for run in on_d + on_d_prime for k in run}):
        a = Counter(run.get(name, "<absent>") for run in on_d)
        b = Counter(run.get(name, "<absent>") for run in on_d_prime)
        bound = max(max(epsilon_bound(a[v], b[v], len(on_d), delta), epsilon_bound(b[v], a[v], len(on_d), delta))
                    for v in set(a) | set(b))
        report[name] = {"certain": not (set(a) & set(b)), "epsilon": bound, "d": dict(a), "d_prime": dict(b)}
    return report


def test_audit_flags_a_certain_difference_and_passes_noise():
    """The audit's own power: a field that is a function of the data fails it; a
    field that differs only as ε allows passes."""
    certain = audit([{"f": "1"}] * RUNS, [{"f": "0"}] * RUNS, 1e-7)["f"]
    assert certain["certain"] and certain["epsilon"] > 1.0
    noisy = audit([{"f": "a"}] * 15 + [{"f": "b"}] * 15, [{"f": "a"}] * 13 + [{"f": "b"}] * 17, 1e-7)["f"]
    assert not noisy["certain"] and noisy["epsilon"] <= EPSILON


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_fields_agree_on_neighbouring_datasets(neighbours, shape):
    on_d = neighbours.service(SHAPES[shape], CITY_T, version=D)
    on_d_prime = neighbours.service(SHAPES[shape], CITY_T, version=D_PRIME)
    found = leaked(on_d.texts, CANARIES)
    assert not found, f"{shape}: T's values {found} reached a response, the store or a log"
    differences = diff(fields(on_d.view), fields(on_d_prime.view))
    assert not differences, f"{shape}: D (T=) and D' (F=) differ in\n  " + "\n  ".join(differences[:12])


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_non_numeric_fields_audit(neighbours, shape):
    on_d, on_d_prime, found = [], [], set()
    for i in range(RUNS):
        for version, out in ((D, on_d), (D_PRIME, on_d_prime))[:: 1 if i % 2 else -1]:
            obs = neighbours.service(SHAPES[shape], CITY_T, epsilon=EPSILON, version=version)
            found.update(leaked(obs.texts, CANARIES))
            out.append(fields(obs.view))
    report = audit(on_d, on_d_prime, delta=1e-7)
    varying = sorted(k for k, v in report.items() if len(v["d"]) + len(v["d_prime"]) > 2)
    print(f"{shape}: {len(report)} fields, {len(varying)} varying {varying}, largest ε lower bound "
          f"{max(v['epsilon'] for v in report.values()):.3f} (charged {EPSILON})")
    certain = {k: (v["d"], v["d_prime"]) for k, v in report.items() if v["certain"]}
    assert not certain, f"{shape}: fields that differ with certainty between D and D': {certain}"
    over = {k: v["epsilon"] for k, v in report.items() if v["epsilon"] > EPSILON}
    assert not over, f"{shape}: ε lower bounds above the charged {EPSILON}: {over}"
    assert not found, f"{shape}: T's values {sorted(found)} reached a response, the store or a log"
