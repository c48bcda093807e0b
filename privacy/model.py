"""Values the privacy layer takes and returns. Frozen and validated when built:
no bare float for ε travels between packages."""

from __future__ import annotations

import datetime
import decimal
import math
from dataclasses import dataclass, field
from typing import Any

from privacy.vocabulary import Accounting, Mechanism
from queries.errors import InvalidInput


@dataclass(frozen=True)
class Tolerance:
    """How far a loss may pass a limit and still fit it. The relative slack lets k
    equal shares of a budget fit exactly despite float rounding (and absorbs OpenDP
    maps that charge a hair over or under the ε asked for); the absolute slacks
    only matter for limits of zero. One value, :data:`TOLERANCE`, serves every
    comparison of a loss with a limit: ``PrivacyLoss.covers``, the ledger's
    conditional updates, the preview and query templates."""

    relative: float
    epsilon: float
    delta: float

    @property
    def factor(self) -> float:
        """What a limit is multiplied by before the absolute slack is added."""
        return 1 + self.relative

    def within(self, epsilon: float, delta: float, limit: PrivacyLoss) -> bool:
        """Whether (``epsilon``, ``delta``) fits inside ``limit``."""
        return (epsilon <= limit.epsilon * self.factor + self.epsilon
                and delta <= limit.delta * self.factor + self.delta)


TOLERANCE = Tolerance(relative=1e-9, epsilon=1e-12, delta=1e-18)


@dataclass(frozen=True, order=True)
class PrivacyLoss:
    """An (ε, δ) privacy loss or budget. Rejects NaN, infinities and negatives."""

    epsilon: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epsilon", "delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInput(f"{name} must be a number", code="invalid_budget")
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{name} must be a finite, non-negative number", code="invalid_budget")
        if self.delta >= 1:
            raise InvalidInput("delta must be below 1", code="invalid_budget")
        object.__setattr__(self, "epsilon", float(self.epsilon))
        object.__setattr__(self, "delta", float(self.delta))

    def __add__(self, other: PrivacyLoss) -> PrivacyLoss:
        return PrivacyLoss(self.epsilon + other.epsilon, min(self.delta + other.delta, 0.999999))

    def covers(self, other: PrivacyLoss) -> bool:
        """True if ``other`` fits inside this budget, up to :data:`TOLERANCE`."""
        return TOLERANCE.within(other.epsilon, other.delta, self)

    def to_dict(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "delta": self.delta}


ZERO = PrivacyLoss(0.0, 0.0)


@dataclass(frozen=True)
class MechanismRecord:
    """What was applied to one measure, for the manifest and the preview."""

    aggregate: str        # a0, ... or "partition_selection"
    measure: str          # role: count, sum, sumsq, lt/gt, units
    mechanism: Mechanism
    scale: float
    sensitivity: float
    epsilon: float        # this measure's share (pure-DP view), 0 when zCDP
    rho: float = 0.0
    delta: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CostEstimate:
    """The preview: what a plan would cost and how accurate it would be, computed
    from the plan alone (no data, no budget)."""

    loss: PrivacyLoss
    mechanisms: tuple[MechanismRecord, ...]
    expected_half_width: dict[str, float]   # output column -> expected (1-alpha) half-width, where defined
    alpha: float = 0.05
    accounting: Accounting = Accounting.APPROX
    # the OpenDP design behind the estimate (privacy.accounting.NoiseDesign), which
    # the release reuses rather than building it again; never shown
    design: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon": self.loss.epsilon,
            "delta": self.loss.delta,
            "alpha": self.alpha,
            "accounting": self.accounting,
            "expected_half_width": self.expected_half_width,
            "mechanisms": [m.to_dict() for m in self.mechanisms],
        }


def json_value(value: Any) -> Any:
    """A released cell as a JSON value: dates and times in ISO 8601, decimals and
    other numbers as float, everything else as it is."""
    if isinstance(value, (datetime.date, datetime.time)):      # datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


@dataclass(frozen=True)
class NoisyRelease:
    """The released table: every value noisy, each with its interval. Every field is
    either an output of the charged measurement (values, intervals, the selected
    keys and so the rows, post-processing of those) or a function of the plan and
    settings (columns, loss, mechanisms, alpha, notes); nothing here counts exact
    facts about the data (see docs/privacy.md, "What a run shows")."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    intervals: tuple[tuple[tuple[float, float] | None, ...], ...]   # per row, per column
    loss: PrivacyLoss
    mechanisms: tuple[MechanismRecord, ...]
    alpha: float = 0.05
    post_suppressed: int = 0            # rows removed by HAVING/LIMIT on the noisy table
    notes: tuple[str, ...] = ()         # remarks derived from the plan alone

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "rows": [[json_value(v) for v in r] for r in self.rows],
            "intervals": [[list(c) if c is not None else None for c in r] for r in self.intervals],
            "alpha": self.alpha,
            "epsilon": self.loss.epsilon,
            "delta": self.loss.delta,
            "mechanisms": [m.to_dict() for m in self.mechanisms],
            "notes": list(self.notes),
        }
