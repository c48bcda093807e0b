"""Differential privacy for dp-sandbox: exact bounded aggregates -> noisy release.

Pure library (no I/O, no store); every noise draw comes from OpenDP.
"""

from privacy.model import ZERO, CostEstimate, MechanismRecord, NoisyRelease, PrivacyLoss
from privacy.release import estimate_cost, release
from privacy.search import epsilon_for_width

__all__ = ["ZERO", "CostEstimate", "MechanismRecord", "NoisyRelease", "PrivacyLoss",
           "epsilon_for_width", "estimate_cost", "release"]
