"""OpenDP measurements used by dp-sandbox, built once per (scale, space) and cached.

Features enabled: ``contrib`` (the noise, threshold and selection constructors
and the combinators live behind it) and ``honest-but-curious`` (to describe our
own exact-aggregate input with ``make_user_transformation`` so that a whole
release is one composed OpenDP measurement). ``floating-point`` is *not*
enabled: every noised value is an integer (see ``sensitivity``).

All noise is drawn by OpenDP's exact samplers. Nothing here uses ``random``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import opendp.prelude as dp

from privacy.vocabulary import NoiseFamily

dp.enable_features("contrib", "honest-but-curious")

INT = "i64"
SCORE = "u64"


def int_vector_space():
    return dp.vector_domain(dp.atom_domain(T=INT))


@lru_cache(maxsize=512)
def vector_noise(family: NoiseFamily, scale: float):
    """Discrete Laplace (``laplace``, pure DP, L1 input) or discrete Gaussian
    (``gaussian``, zCDP, L2 input) over a vector of 64-bit integers."""
    if family == NoiseFamily.LAPLACE:
        return dp.m.make_laplace(int_vector_space(), dp.l1_distance(T=INT), scale)
    return dp.m.make_gaussian(int_vector_space(), dp.l2_distance(T=float), scale)


def vector_d_in(family: NoiseFamily, l1: int, l2: float):
    return int(l1) if family == NoiseFamily.LAPLACE else float(l2)


@lru_cache(maxsize=512)
def threshold_noise(family: NoiseFamily, scale: float, threshold: int):
    """Thresholded noise on a map ``group label -> units``: keys whose noisy count is
    at least ``threshold`` are kept. Approximate pure DP or approximate zCDP."""
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=INT))
    if family == NoiseFamily.LAPLACE:
        metric = dp.l01inf_distance(dp.absolute_distance(T=INT))
        return dp.m.make_laplace_threshold(domain, metric, scale, threshold)
    metric = dp.l02inf_distance(dp.absolute_distance(T=float))
    return dp.m.make_gaussian_threshold(domain, metric, scale, threshold)


def threshold_d_in(family: NoiseFamily, max_groups: int):
    """One unit changes the unit count of at most ``max_groups`` groups, by 1 each."""
    if family == NoiseFamily.LAPLACE:
        return (int(max_groups), int(max_groups), 1)
    return (int(max_groups), math.sqrt(max_groups), 1.0)


@lru_cache(maxsize=512)
def noisy_min(family: NoiseFamily, scale: float):
    """Report-noisy-min over an integer score vector (the exponential mechanism
    with OpenDP's selection; scores are not monotonic)."""
    measure = dp.max_divergence() if family == NoiseFamily.LAPLACE else dp.zero_concentrated_divergence()
    space = dp.vector_domain(dp.atom_domain(T=SCORE)), dp.linf_distance(T=SCORE)
    return dp.m.make_noisy_max(*space, measure, scale, negate=True)


def unit_loss(build, d_in) -> float:
    """The loss of a mechanism at scale 1 (loss scales as scale^-1 for ε, scale^-2 for ρ)."""
    out = build(1.0).map(d_in)
    return float(out[0] if isinstance(out, tuple) else out)


def scale_for_loss(family: NoiseFamily, loss_at_unit_scale: float, target: float) -> float:
    """The scale whose loss is ``target``: ε ∝ 1/scale (laplace), ρ ∝ 1/scale² (gaussian)."""
    if target <= 0:
        raise ValueError("target loss must be positive")
    ratio = loss_at_unit_scale / target
    return ratio if family == NoiseFamily.LAPLACE else math.sqrt(ratio)


# ---- tails and accuracy -------------------------------------------------------

def discrete_laplace_tail(scale: float, k: int) -> float:
    """P[Z >= k] for Z ~ discrete Laplace(scale), k >= 1."""
    if k <= 0:
        return 1.0
    return math.exp(-k / scale) / (1.0 + math.exp(-1.0 / scale))


def discrete_gaussian_tail(sigma: float, k: int) -> float:
    """P[Z >= k] for Z ~ discrete Gaussian(sigma), summed exactly (relative slack 1e-9)."""
    if k <= 0:
        return 1.0
    span = int(k + 40 * sigma + 10)
    weights = [math.exp(-(z * z) / (2 * sigma * sigma)) for z in range(0, span)]
    total = weights[0] + 2 * math.fsum(weights[1:])
    tail = math.fsum(weights[k:]) if k < span else 0.0
    return min(1.0, tail / total * (1 + 1e-9) + 1e-300)


def tail(family: NoiseFamily, scale: float, k: int) -> float:
    return discrete_laplace_tail(scale, k) if family == NoiseFamily.LAPLACE else discrete_gaussian_tail(scale, k)


def threshold_delta(family: NoiseFamily, scale: float, threshold: int, max_groups: int) -> float:
    """δ of partition selection, computed here (OpenDP #2922 under-reports it): a group
    that exists only in the neighbour has at most 1 unit, and it is kept when
    ``1 + Z >= threshold``; a unit can create at most ``max_groups`` such groups."""
    return min(1.0, max_groups * tail(family, scale, threshold - 1))


def smallest_threshold(family: NoiseFamily, scale: float, max_groups: int, delta: float) -> int:
    """The smallest threshold whose (own, conservative) δ is at most ``delta``."""
    lo, hi = 2, 2
    while threshold_delta(family, scale, hi, max_groups) > delta:
        lo, hi = hi, hi * 2
        if hi > 2 ** 62:
            raise ValueError("no threshold meets delta")
    while lo < hi:
        mid = (lo + hi) // 2
        if threshold_delta(family, scale, mid, max_groups) <= delta:
            hi = mid
        else:
            lo = mid + 1
    return hi


EXACT_GAUSSIAN_ACCURACY_UP_TO = 1000.0


@lru_cache(maxsize=4096)
def half_width(family: NoiseFamily, scale: float, alpha: float) -> float:
    """(1-alpha) half-width of discrete noise of this scale (OpenDP accuracy helpers).
    OpenDP's discrete Gaussian accuracy sums the tail term by term, which is slow
    for large scales; above ``EXACT_GAUSSIAN_ACCURACY_UP_TO`` the continuous
    Gaussian's accuracy rounded up plus one unit is used (a test checks it is never
    below OpenDP's exact value)."""
    if family == NoiseFamily.LAPLACE:
        return float(dp.discrete_laplacian_scale_to_accuracy(scale, alpha))
    if scale > EXACT_GAUSSIAN_ACCURACY_UP_TO:
        return float(math.ceil(dp.gaussian_scale_to_accuracy(scale, alpha)) + 1)
    return float(dp.discrete_gaussian_scale_to_accuracy(scale, alpha))
