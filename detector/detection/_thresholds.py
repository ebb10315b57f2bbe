"""Detection thresholds from the number of averaged looks and a false-alarm target.

A noise bin averaged over L independent looks is σ²·Gamma(L, 1)/L (THEORY.md §1.1; Urkowitz 1967),
so the threshold that it exceeds with probability p is ``gamma.isf(p, L)/L`` times the noise mean
(§1.2 item 1). The alert rule needs K flagged frames out of M at the same frequency, so a per-bin,
per-frame probability p gives about ``C(M, K)·p^K`` alert-level false alarms per bin and frame;
:func:`pfa_for_alert_rate` inverts that for a target of false alerts per hour (§1.2 item 8).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.stats

__all__ = ["threshold_ratio", "threshold_db", "pfa_for_alert_rate", "noise_quantile_ratio"]


@lru_cache(maxsize=4096)
def threshold_ratio(looks: float, pfa: float) -> float:
    """Linear threshold over the noise mean exceeded by a noise bin of ``looks`` looks with probability ``pfa``."""
    if not 0 < pfa < 1:
        raise ValueError(f"pfa must be in (0, 1), got {pfa}")
    L = max(float(looks), 1.0)
    return float(scipy.stats.gamma.isf(pfa, L) / L)


def threshold_db(looks: float, pfa: float) -> float:
    """:func:`threshold_ratio` in dB."""
    return 10.0 * math.log10(threshold_ratio(looks, pfa))


@lru_cache(maxsize=4096)
def noise_quantile_ratio(looks: float, q: float) -> float:
    """The q-quantile of a noise bin of ``looks`` looks, relative to its mean (linear)."""
    L = max(float(looks), 1.0)
    return float(scipy.stats.gamma.ppf(q, L) / L)


def pfa_for_alert_rate(
    fa_per_hour: float, *, n_bins: int, frames_per_hour: float, k: int, m: int
) -> float:
    """Per-bin, per-frame false-alarm probability that yields ``fa_per_hour`` false alerts per hour
    under a K-of-M persistence rule over ``n_bins`` bins and ``frames_per_hour`` frames.

    Solves ``fa_per_hour = n_bins · frames_per_hour · C(M, K) · p^K`` for p, capped to [1e-12, 1e-2].
    """
    if fa_per_hour <= 0:
        raise ValueError(f"fa_per_hour must be > 0, got {fa_per_hour}")
    if not 1 <= k <= m:
        raise ValueError(f"need 1 ≤ K ≤ M, got K={k}, M={m}")
    decisions = n_bins * frames_per_hour * math.comb(m, k)
    p = (fa_per_hour / decisions) ** (1.0 / k)
    return float(np.clip(p, 1e-12, 1e-2))
