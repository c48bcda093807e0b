"""Reference distributions for the statistical tests (exact pmfs, no sampling)."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats


def discrete_laplace_pmf(z: np.ndarray, scale: float) -> np.ndarray:
    r = math.exp(-1.0 / scale)
    return (1 - r) / (1 + r) * np.exp(-np.abs(z) / scale)


def discrete_gaussian_pmf(z: np.ndarray, sigma: float) -> np.ndarray:
    span = np.arange(-int(40 * sigma) - 10, int(40 * sigma) + 11)
    norm = np.exp(-(span.astype(float) ** 2) / (2 * sigma * sigma)).sum()
    return np.exp(-(z.astype(float) ** 2) / (2 * sigma * sigma)) / norm


def chi_square_pvalue(samples: np.ndarray, pmf) -> float:
    """Goodness of fit of integer samples to ``pmf`` (bins with >= 5 expected, tails merged)."""
    n = len(samples)
    m = 0
    while n * pmf(np.array([m + 1]))[0] >= 5:
        m += 1
    support = np.arange(-m, m + 1)
    probs = pmf(support)
    tail = max((1 - probs.sum()) / 2, 0.0)
    observed = [np.sum(samples < -m)] + [np.sum(samples == z) for z in support] + [np.sum(samples > m)]
    expected = np.array([tail, *probs, tail]) * n
    keep = expected > 0
    observed = np.array(observed, dtype=float)[keep]
    expected = expected[keep]
    expected *= observed.sum() / expected.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def discrete_laplace_variance(scale: float) -> float:
    r = math.exp(-1.0 / scale)
    return 2 * r / (1 - r) ** 2


def permute_and_flip_probs(scores: list[int], scale: float) -> np.ndarray:
    """Exact output distribution of permute-and-flip minimising ``scores``."""
    best = min(scores)
    p = [math.exp(-(s - best) / scale) for s in scores]
    n = len(scores)
    out = np.zeros(n)
    perms = list(itertools.permutations(range(n)))
    for perm in perms:
        reach = 1.0
        for i in perm:
            out[i] += reach * p[i]
            reach *= 1 - p[i]
    return out / len(perms)
