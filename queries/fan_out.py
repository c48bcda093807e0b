"""How many rows public lookup tables can make of one private row.

A join with a public table multiplies each private row by the number of public
rows it matches. Bounded contributions keep the *released* numbers safe, but the
work happens before bounding: a fan-out that only one person's row reaches would
make the run's time depend on that person. So the planner bounds it from public
facts alone (``PublicTableStats``, computed at ingestion from public data) and
refuses a plan whose bound exceeds ``max_fan_out`` (``query_too_costly``).

The bound: starting from the private relations, repeatedly take a public relation
that has an equality conjunct ``P.col = X`` (in any ``ON`` or the ``WHERE`` of the
same ``SELECT``) where ``X`` reads only relations already taken: given those rows,
``P`` matches at most ``max_rows_per_value[col]`` rows. A public relation with no
such conjunct (a cross join, a non-equality, a cycle) counts its whole row count.
The product of the factors (each at least 1: a ``LEFT JOIN`` keeps unmatched rows)
bounds the rows one private row becomes. A derived relation carries the bound of
the joins inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from queries.scope import Relation


@dataclass(frozen=True)
class FanOut:
    factor: int
    terms: tuple[str, ...]          # one phrase per public relation, for messages

    def describe(self) -> str:
        return "; ".join(self.terms)


def _columns_of(node: exp.Expr) -> set[str]:
    return {c.table for c in node.find_all(exp.Column)}


def _equality_column(cond: exp.Expr, rel: Relation, taken: set[str]) -> str | None:
    """``col`` when ``cond`` is ``rel.col = X`` with ``X`` reading only ``taken``."""
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if not isinstance(cond, exp.EQ):
        return None
    for side, other in ((cond.this, cond.expression), (cond.expression, cond.this)):
        while isinstance(side, exp.Paren):
            side = side.this
        if isinstance(side, exp.Column) and side.table == rel.alias and _columns_of(other) <= taken:
            return side.name
    return None


def public_fan_out(relations: list[Relation], conjuncts: list[exp.Expr]) -> FanOut:
    """The bound for the relations of one FROM clause (see the module docstring).
    Every public relation must know its row count."""
    taken = {r.alias for r in relations if r.private}
    pending = [r for r in relations if not r.private]
    factor, terms = 1, []
    for rel in relations:
        if rel.fan_out > 1:
            factor *= rel.fan_out
            terms.append(f"{rel.name or 'a subquery'}: joins inside it, {rel.fan_out}")
    while pending:
        best: tuple[Relation, int, str] | None = None
        for rel in pending:
            for cond in conjuncts:
                col = _equality_column(cond, rel, taken)
                if col is not None and col in rel.per_value:
                    n = rel.per_value[col]
                    if best is None or n < best[1]:
                        best = (rel, n, f"at most {n} rows per value of {col}")
        if best is None:
            rel = min(pending, key=lambda r: r.public_rows or 0)
            n = int(rel.public_rows or 0)
            best = (rel, n, f"{n} rows")
        rel, n, why = best
        factor *= max(1, n)
        terms.append(f"{rel.name or 'a subquery'}: {why}")
        taken.add(rel.alias)
        pending.remove(rel)
    return FanOut(factor, tuple(terms))


def derived_rows(relations: list[Relation], conjuncts: list[exp.Expr]) -> int:
    """Rows a FROM clause of public relations only can produce: its fan-out from
    an empty start (the first factor is a whole relation's row count)."""
    return public_fan_out(relations, conjuncts).factor
