"""The fixed words of the privacy layer, one ``StrEnum`` each (see ``queries.vocabulary``
for what a member is and where every vocabulary is documented)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal


class NoiseFamily(StrEnum):
    """The noise a release adds: discrete Laplace under approximate DP, discrete
    Gaussian under zCDP (the same family serves partition selection and quantiles)."""

    LAPLACE = "laplace"
    GAUSSIAN = "gaussian"


class Accounting(StrEnum):
    """How a licence counts privacy loss (``licences.accounting``)."""

    APPROX = "approx"               # (ε, δ): ε adds up across queries
    ZCDP = "zcdp"                   # zero-concentrated DP: ρ adds up, converted to (ε, δ)

    @property
    def family(self) -> NoiseFamily:
        """The noise this accounting adds."""
        return NoiseFamily.LAPLACE if self is Accounting.APPROX else NoiseFamily.GAUSSIAN


AUTO: Final = "auto"
"""Not an accounting of its own: the privacy layer picks the one with the smaller error."""

AccountingOption = Accounting | Literal["auto"]


class Mechanism(StrEnum):
    """The OpenDP measurement behind one released measure (a manifest's ``mechanisms``)."""

    DISCRETE_LAPLACE = "discrete_laplace"
    DISCRETE_GAUSSIAN = "discrete_gaussian"
    EXPONENTIAL_QUANTILE = "exponential_quantile"      # report-noisy-min over the candidates
    LAPLACE_THRESHOLD = "laplace_threshold"            # partition selection of private keys
    GAUSSIAN_THRESHOLD = "gaussian_threshold"
