"""Accuracy of dp-sandbox's releases on the standard workload at ε = 1, next to the peers.

For each query: the median absolute error of the released cells over repeated
releases, next to the theoretical minimum for the declared sensitivity (the
median |error| of one Laplace mechanism spending the whole ε on one measure,
Δ/ε·ln 2), next to OpenDP's Context API (polars) and SmartNoise SQL on the same
files with the same bounds. Every column is measured against the same exact
answer (after bounding, so that the error is the noise's); a cell a mechanism
suppresses is not counted. A query a peer cannot express prints "n/a" and its
error message as a footnote, never a number.

The peers run in their own interpreters (see bench/peers.md): OpenDP 0.16's
Context API needs the polars it was built against, and SmartNoise SQL pins an
older OpenDP. Each gets a small script in a temp file, reads the Parquet/CSV
files written by ``write_health`` and prints its raw releases as JSON.

    python bench/accuracy.py [--people 100000] [--runs 300] [--peer-runs 100]
        [--opendp-python /work/opendp-venv/bin/python]
        [--smartnoise-python /work/peers-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from privacy import PrivacyLoss, release
from privacy.sensitivity import measure_sensitivities
from queries import plan_query
from queries.policy import parse_policy
from sandbox.demo.data import CITIES, load_health, write_health

WORKLOAD = {
    "count": "SELECT COUNT(*) FROM people",
    "count by city": "SELECT city, COUNT(*) FROM people GROUP BY city",
    "clamped sum": "SELECT SUM(income) FROM people",
    "avg by sex": "SELECT sex, AVG(age) FROM people GROUP BY sex",
    "count by city, diagnosis": "SELECT city, diagnosis, COUNT(*) FROM people GROUP BY city, diagnosis",
    "age histogram": "SELECT floor(age / 10) * 10 AS decade, COUNT(*) FROM people GROUP BY decade",
    "join sum per clinic": "SELECT v.clinic, SUM(v.cost) FROM visits v JOIN clinics c ON v.clinic = c.clinic "
                           "GROUP BY v.clinic",
    "median income": "SELECT MEDIAN(income) FROM people",
}
BUDGET = PrivacyLoss(1.0, 1e-7)
DEFAULT_OPENDP_PYTHON = "/work/opendp-venv/bin/python"
DEFAULT_SMARTNOISE_PYTHON = "/work/peers-venv/bin/python"

# OpenDP 0.16 Context API. Each query is built once through dp.Context.compositor with the
# policy's bounds (people: one row per person; city and sex have public domains) and
# resolved to the measurement that ``release()`` invokes; invoking it `runs` times gives
# `runs` independent releases, each at (ε, δ) (resolving costs ~1 s, invoking ~ms).
OPENDP_SCRIPT = r'''
import json, sys, time, warnings
warnings.simplefilter("ignore")
import opendp.prelude as dp
import polars as pl
dp.enable_features("contrib")
spec = json.loads(sys.argv[1])
people = pl.scan_parquet(spec["folder"] + "/people.parquet")
BIG = 10 ** 9   # the row-count bound OpenDP asks for sums/means/quantiles (integer sums: no noise effect)
def ctx(margins):
    return dp.Context.compositor(data=people, privacy_unit=dp.unit_of(contributions=1),
        privacy_loss=dp.loss_of(epsilon=spec["epsilon"], delta=spec["delta"]), split_evenly_over=1,
        margins=margins)
def public(col, groups):
    return dp.polars.Margin(by=[col], invariant="keys", max_groups=groups, max_length=BIG)
Q = {
 "count": lambda: ctx([]).query().select(dp.len()),
 "count by city": lambda: ctx([public("city", spec["cities"])]).query().group_by("city").agg(dp.len()),
 "clamped sum": lambda: ctx([dp.polars.Margin(by=[], max_length=BIG)]).query()
     .select(pl.col("income").fill_null(0).dp.sum((0, spec["income_max"]))),
 "avg by sex": lambda: ctx([public("sex", 2)]).query().group_by("sex")
     .agg(pl.col("age").cast(pl.Int64).fill_null(0).dp.mean((0, int(spec["age_max"])))),
 "count by city, diagnosis": lambda: ctx([public("city", spec["cities"])]).query()
     .group_by("city", "diagnosis").agg(dp.len()),
 "age histogram": lambda: ctx([]).query().with_columns(((pl.col("age") // 10) * 10).alias("decade"))
     .group_by("decade").agg(dp.len()),
 "join sum per clinic": None,
 "median income": lambda: ctx([dp.polars.Margin(by=[], max_length=BIG)]).query()
     .select(pl.col("income").fill_null(0).dp.median(spec["income_candidates"])),
}
out = {}
for name, build in Q.items():
    if build is None:
        out[name] = {"error": "the Context API takes one private LazyFrame: no joins"}
        continue
    try:
        started = time.perf_counter()
        measurement = build().resolve()
        rels = []
        for _ in range(spec["runs"]):
            df = measurement(people).collect()
            rels.append([list(r) for r in df.rows()])
        out[name] = {"releases": rels, "ms": (time.perf_counter() - started) / spec["runs"] * 1000}
    except Exception as exc:
        out[name] = {"error": type(exc).__name__ + ": " + " ".join(str(exc).split())[:300]}
print(json.dumps(out, default=str))
'''

# SmartNoise SQL (snsql) through its pandas engine (it has no DuckDB engine). Same bounds;
# people has max_ids = 1 (rows_per_unit), visits max_ids = max_rows_per_unit. Keys with a
# public domain are released without censoring (censor_dims = False), private keys with it.
SMARTNOISE_SCRIPT = r'''
import json, sys, time, warnings
warnings.simplefilter("ignore")
spec = json.loads(sys.argv[1])
try:
    import pandas as pd
    import snsql
    from snsql import Privacy
except Exception as exc:
    print(json.dumps({"__import__": type(exc).__name__ + ": " + str(exc)}))
    sys.exit(0)
folder = spec["folder"]
tables = {"health.people": pd.read_parquet(folder + "/people.parquet"),
          "health.visits": pd.read_csv(folder + "/visits.csv"),
          "health.clinics": pd.read_csv(folder + "/clinics.csv")}
def meta(censor):
    return {"health": {"health": {
        "people": {"max_ids": 1, "censor_dims": censor, "person_id": {"type": "int", "private_id": True},
                   "age": {"type": "int", "lower": 0, "upper": spec["age_max"]}, "sex": {"type": "string"},
                   "income": {"type": "int", "lower": 0, "upper": spec["income_max"]},
                   "city": {"type": "string"}, "diagnosis": {"type": "string"}},
        "visits": {"max_ids": spec["visits_max_ids"], "censor_dims": censor,
                   "person_id": {"type": "int", "private_id": True}, "visit_id": {"type": "int"},
                   "clinic": {"type": "string"}, "cost": {"type": "float", "lower": 0, "upper": spec["cost_max"]},
                   "visit_date": {"type": "string"}},
        "clinics": {"clinic": {"type": "string"}, "district": {"type": "string"}, "kind": {"type": "string"}},
    }}}
Q = {
 "count": ("SELECT COUNT(*) AS n FROM health.people", False),
 "count by city": ("SELECT city, COUNT(*) AS n FROM health.people GROUP BY city", False),
 "clamped sum": ("SELECT SUM(income) AS s FROM health.people", False),
 "avg by sex": ("SELECT sex, AVG(age) AS a FROM health.people GROUP BY sex", False),
 "count by city, diagnosis": ("SELECT city, diagnosis, COUNT(*) AS n FROM health.people "
                              "GROUP BY city, diagnosis", True),
 "age histogram": ("SELECT FLOOR(age / 10) * 10 AS decade, COUNT(*) AS n FROM health.people "
                   "GROUP BY FLOOR(age / 10) * 10", True),
 "join sum per clinic": ("SELECT v.clinic, SUM(v.cost) AS s FROM health.visits AS v "
                         "JOIN health.clinics AS c ON v.clinic = c.clinic GROUP BY v.clinic", False),
 "median income": ("SELECT PERCENTILE_CONT(income) AS m FROM health.people", False),
}
out = {}
for name, (sql, censor) in Q.items():
    try:
        reader = snsql.from_df(tables, privacy=Privacy(epsilon=spec["epsilon"], delta=spec["delta"]),
                               metadata=meta(censor))
        rels, started = [], time.perf_counter()
        for _ in range(spec["runs"]):
            rels.append([list(r) for r in reader.execute(sql)[1:]])
        out[name] = {"releases": rels, "ms": (time.perf_counter() - started) / spec["runs"] * 1000}
    except Exception as exc:
        out[name] = {"error": type(exc).__name__ + ": " + " ".join(str(exc).split())[:300]}
print(json.dumps(out, default=str))
'''


def load(folder: Path) -> duckdb.DuckDBPyConnection:
    return load_health(duckdb.connect(), folder)


def exact_answer(con, sql: str) -> dict:
    """The unbounded exact answer of the operator's SQL (for error measurement only)."""
    rows = con.execute(sql.replace("FROM people", "FROM ds.people").replace("FROM visits", "FROM ds.visits")
                       .replace("JOIN clinics", "JOIN ds.clinics").replace("MEDIAN(income)", "quantile_disc(income, 0.5)")).fetchall()
    return {cell_key(r[:-1]): float(r[-1]) for r in rows}


def cell_key(values) -> tuple:
    """A group key comparable across engines (numbers as floats: 10, 10.0 and '10' differ otherwise)."""
    return tuple(float(v) if isinstance(v, (int, float)) else v for v in values)


def bounded_truth(plan, exact) -> dict | None:
    """The exact answer after bounding (clamping and contribution limits), so that the
    error measured is the noise's, not the bounding's bias."""
    agg = plan.aggregates[0]
    keys = [k.column for k in plan.group_keys]
    rows = exact.to_pylist()
    if agg.kind in ("count", "count_units"):
        return {cell_key(r[k] for k in keys): float(r[agg.columns["count"]] or 0) for r in rows}
    if agg.kind == "sum":
        return {cell_key(r[k] for k in keys): float(r[agg.columns["sum"]] or 0) for r in rows}
    if agg.kind == "avg":
        return {cell_key(r[k] for k in keys): float(r[agg.columns["sum"]]) / max(float(r[agg.columns["count"]]), 1)
                for r in rows}
    return None


def theoretical_minimum(plan) -> float:
    agg = plan.aggregates[0]
    if agg.kind not in ("count", "count_units", "sum"):
        return float("nan")
    s = measure_sensitivities(plan, agg)[0]
    return s.l1 * s.step / BUDGET.epsilon * math.log(2)


def number(x: float) -> str:
    """Three significant decimals for small errors (averages), whole units for large ones."""
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.3f}"


def release_errors(releases, truth: dict) -> tuple[list[float], float]:
    """Absolute errors of every released cell whose key is in the exact answer, and the
    mean number of such cells per release (suppressed groups are not counted)."""
    errors = []
    for rows in releases:
        for row in rows:
            key, value = cell_key(row[:-1]), row[-1]
            if key in truth and value is not None and not (isinstance(value, float) and math.isnan(value)):
                errors.append(abs(float(value) - truth[key]))
    return errors, len(errors) / max(len(releases), 1)


def median_interval(errors: list[float]) -> tuple[float, float, float]:
    """(median, low, high): the median with its distribution-free 95 % interval from order
    statistics (ranks n/2 ± 1.96·√n/2), so that "ours ≤ theirs" is not read into sampling noise."""
    if not errors:
        return float("nan"), float("nan"), float("nan")
    xs, n = sorted(errors), len(errors)
    half = 1.96 * math.sqrt(n) / 2
    return statistics.median(xs), xs[max(int(n / 2 - half), 0)], xs[min(math.ceil(n / 2 + half), n - 1)]


def verdict(ours_errors: list[float], their_errors: list[float]) -> str:
    """yes: our median is not above theirs; tie: above, but the 95 % intervals overlap
    (indistinguishable at this number of runs); NO: above beyond sampling noise."""
    ours_m, ours_lo, _ = median_interval(ours_errors)
    theirs_m, _, theirs_hi = median_interval(their_errors)
    if ours_m <= theirs_m:
        return "yes"
    return "tie" if ours_lo <= theirs_hi else "NO"


def ours(con, sql: str, policy, runs: int):
    """(|errors|, cells per release, theoretical minimum, ms per release, truth, plan)."""
    plan = plan_query(sql, policy)
    params = {k: v for k, v in plan.params.items() if f"${k}" in plan.bounded_sql}
    exact = con.sql(plan.bounded_sql, params=params).to_arrow_table()
    truth = bounded_truth(plan, exact) or exact_answer(con, sql)
    releases, started = [], time.perf_counter()
    for _ in range(runs):
        releases.append([list(row) for row in release(plan, exact, BUDGET).rows])
    elapsed = (time.perf_counter() - started) / runs * 1000
    errors, cells = release_errors(releases, truth)
    return errors, cells, theoretical_minimum(plan), elapsed, truth, plan


def run_peer(python: str | None, script: str, spec: dict, label: str) -> tuple[dict, str | None]:
    """Run a peer's script in its own interpreter; (results by query, why it did not run)."""
    if not python or not Path(python).exists():
        return {}, f"{label}: interpreter {python!r} not found (see bench/peers.md)"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run([python, f.name, json.dumps(spec)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=1800)
    finally:
        os.unlink(f.name)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[:400]
        return {}, f"{label}: failed (exit {done.returncode}): {tail}"
    results = json.loads(lines[-1])
    if "__import__" in results:
        return {}, f"{label}: cannot be imported: {results['__import__']}"
    return results, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=300, help="releases per query for dp-sandbox and OpenDP")
    parser.add_argument("--peer-runs", type=int, default=100,
                        help="releases per query for SmartNoise SQL (~0.2 s each at 100k people)")
    parser.add_argument("--opendp-python", default=DEFAULT_OPENDP_PYTHON,
                        help="interpreter with opendp 0.16 and the polars it was built against")
    parser.add_argument("--smartnoise-python", default=DEFAULT_SMARTNOISE_PYTHON,
                        help="interpreter with smartnoise-sql, pandas and pyarrow")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        policy = parse_policy(write_health(folder, people=args.people, visits_per_person=5).read_text())
        con = load(folder)
        measured = {}
        for name, sql in WORKLOAD.items():
            try:
                measured[name] = ours(con, sql, policy, args.runs)
            except Exception as exc:   # a query the planner refuses is reported, not fatal
                measured[name] = exc
        median_plan = measured["median income"][5] if isinstance(measured["median income"], tuple) else None
        people, visits = policy.table("people"), policy.table("visits")
        spec = {"folder": str(folder), "runs": args.runs, "epsilon": BUDGET.epsilon, "delta": BUDGET.delta,
                "cities": len(CITIES), "age_max": people.column("age").max,
                "income_max": people.column("income").max, "cost_max": visits.column("cost").max,
                "visits_max_ids": visits.max_rows_per_unit,
                "income_candidates": list(median_plan.aggregates[0].candidates) if median_plan else []}
        peers = {"OpenDP Context": run_peer(args.opendp_python, OPENDP_SCRIPT, spec, "OpenDP Context API"),
                 "SmartNoise SQL": run_peer(args.smartnoise_python, SMARTNOISE_SCRIPT,
                                            {**spec, "runs": args.peer_runs}, "SmartNoise SQL")}
        con.close()
    print_report(args, measured, peers, time.perf_counter() - started)
    return 0


def print_report(args, measured: dict, peers: dict, seconds: float) -> None:
    print(f"people={args.people} runs={args.runs} (ours, OpenDP) smartnoise-runs={args.peer_runs} "
          f"epsilon={BUDGET.epsilon} delta={BUDGET.delta}  (median |error| per released cell)")
    head = f"{'query':26} {'ours':>10} {'theory min':>10} {'OpenDP Context':>15} {'SmartNoise SQL':>15}  ours ≤ theirs?"
    print(head)
    print("-" * len(head))
    footnotes: list[str] = []
    cells_lines: list[str] = []
    worse, compared = [], 0
    for name in WORKLOAD:
        result = measured[name]
        if isinstance(result, Exception):
            print(f"{name:26} {'error':>10}  ({type(result).__name__}: {result})")
            continue
        our_errors, cells, minimum, _, truth, _ = result
        err = median_interval(our_errors)[0]
        texts, verdicts, cell_counts = [], [], [f"ours {cells:.1f}"]
        for peer, (results, _) in peers.items():
            r = results.get(name)
            if r is None:
                texts.append("-")
                continue
            if "error" in r:
                footnotes.append(f"{peer} on {name}: {r['error']}")
                texts.append(f"n/a[{len(footnotes)}]")
                continue
            their_errors, their_cells = release_errors(r["releases"], truth)
            theirs = median_interval(their_errors)[0]
            texts.append(number(theirs))
            cell_counts.append(f"{peer} {their_cells:.1f}")
            compared += 1
            v = verdict(our_errors, their_errors)
            verdicts.append(f"{v} vs {peer.split()[0]}")
            if v != "yes":
                worse.append(f"{name} ({peer}: {number(theirs)} < ours {number(err)}, {v})")
        minimum_text = "-" if math.isnan(minimum) else number(minimum)
        print(f"{name:26} {number(err):>10} {minimum_text:>10} {texts[0]:>15} {texts[1]:>15}  "
              f"{', '.join(verdicts) or 'no peer'}")
        cells_lines.append(f"  {name}: {len(truth)} exact cells; released per run: {', '.join(cell_counts)}")
    print()
    significant = [w for w in worse if w.endswith("NO)")]
    print(f"Summary: ours ≤ theirs on {compared - len(worse)} of {compared} comparable (query, peer) pairs, "
          f"worse beyond sampling noise on {len(significant)}"
          + (f"; above theirs on: {'; '.join(worse)}" if worse else "") + f"  [{seconds:.0f} s]")
    print("(yes: our median |error| ≤ theirs; tie: above, but the 95 % order-statistic intervals of the "
          "two medians overlap; NO: above beyond that)")
    for peer, (_, why) in peers.items():
        if why:
            print(f"{peer} not run: {why}")
    if footnotes:
        print("Not expressible (the peer's own error):")
        for i, note in enumerate(footnotes, 1):
            print(f"  [{i}] {note}")
    print("Cells compared (suppressed groups are not counted):")
    print("\n".join(cells_lines))


if __name__ == "__main__":
    sys.exit(main())
