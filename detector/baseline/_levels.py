"""Level-histogram cells of the baseline, and the per-frame noise statistics its occupancy uses.

The histogram constants (0.1 dB cells from −160 to +20 dB), the occupancy margin (noise quantile at
a per-bin false-alarm probability for the frames' number of looks, THEORY.md §1.2) and the
per-frame noise-floor estimate (a low quantile of the bins, THEORY.md §1.3), plus the small time and
array helpers shared by :mod:`detector.baseline._model`, ``_builder`` and ``_merge``.

No function here reads files, the clock or the network.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import scipy.stats
from numpy.typing import NDArray

__all__ = [
    "LEVEL_MIN_DB",
    "LEVEL_MAX_DB",
    "LEVEL_STEP_DB",
    "N_LEVELS",
    "OCCUPANCY_PFA",
    "LOOKS_TOLERANCE",
    "level_edges_db",
    "occupancy_margin_db",
    "frame_noise_floor_db",
]


#: Lower edge of the level histogram (dB); lower values are counted in the first cell.
LEVEL_MIN_DB = -160.0
#: Upper edge of the level histogram (dB); higher values are counted in the last cell.
LEVEL_MAX_DB = 20.0
#: Width of one histogram cell (dB).
LEVEL_STEP_DB = 0.1
#: Number of histogram cells per bin: (LEVEL_MAX_DB − LEVEL_MIN_DB)/LEVEL_STEP_DB = 1800.
N_LEVELS = int(round((LEVEL_MAX_DB - LEVEL_MIN_DB) / LEVEL_STEP_DB))
#: Per-bin false-alarm probability behind the default occupancy margin.
OCCUPANCY_PFA = 1e-3
#: Quantile (over a frame's bins) of the default per-frame noise-floor estimate.
FLOOR_QUANTILE = 0.3
#: Relative difference of looks per frame tolerated between frames of one baseline. The dB spread of
#: a bin scales as 1/√L (THEORY.md §1.4), so 10 % more or fewer looks changes it by < 5 %.
LOOKS_TOLERANCE = 0.10
#: Bisection steps for the MAD (the search interval of 180 dB shrinks to 180/2⁴⁰ dB).
_MAD_ITERATIONS = 40
_UNITS = ("dBFS", "dBm")
_MAX_LIN_DB = 300.0  # dB values are clipped here before 10**(x/10) (no overflow)


def level_edges_db() -> NDArray[np.float64]:
    """Edges (dB) of the level-histogram cells, float64 shape (N_LEVELS + 1,), −160 … +20 in 0.1 dB."""
    return LEVEL_MIN_DB + LEVEL_STEP_DB * np.arange(N_LEVELS + 1, dtype=np.float64)


def _level_index(power_db: NDArray[np.float64]) -> NDArray[np.int64]:
    """Histogram cell of finite dB values; values outside [−160, +20) dB go to the end cells."""
    cell = np.floor((power_db - LEVEL_MIN_DB) / LEVEL_STEP_DB)
    return np.clip(cell, 0, N_LEVELS - 1).astype(np.int64)


def occupancy_margin_db(n_looks: float, pfa: float = OCCUPANCY_PFA) -> float:
    """Margin (dB over the noise mean) that a noise bin of ``n_looks`` looks exceeds with probability ``pfa``.

    ``10·log10(gamma.isf(pfa, L)/L)``: a noise bin averaged over L looks is σ²·Gamma(L, 1)/L
    (THEORY.md §1.1–1.2; Urkowitz 1967). Examples at pfa = 1e-3: L = 1 → 8.39 dB, L = 16 → 3.05 dB.

    Raises
    ------
    ValueError
        ``n_looks`` ≤ 0 or ``pfa`` outside (0, 1).
    """
    looks = float(n_looks)
    if not looks > 0:
        raise ValueError(f"number of looks must be > 0, got {n_looks}")
    if not 0 < pfa < 1:
        raise ValueError(f"false-alarm probability must be in (0, 1), got {pfa}")
    return float(10.0 * np.log10(scipy.stats.gamma.isf(pfa, looks) / looks))


def frame_noise_floor_db(power_db: NDArray, n_looks: float, *, quantile: float = FLOOR_QUANTILE) -> float:
    """Noise floor (mean noise power per bin, dB) of one frame, from a low quantile of its bins.

    The ``quantile`` (default 0.3) of the frame's linear power over its finite bins, divided by
    ``gamma.ppf(quantile, L)/L`` — the same quantile of the noise law σ²·Gamma(L, 1)/L — so that it
    estimates the noise mean σ² when at most ~70 % of the bins hold emissions (THEORY.md §1.1, §1.3).

    Parameters
    ----------
    power_db : array_like, shape (m,)
        Power per bin (dB); NaN bins are ignored.
    n_looks : float
        Looks per bin of the frame, > 0.

    Returns
    -------
    float
        Floor in the frame's unit (dB), NaN when the frame has no finite bin.
    """
    looks = float(n_looks)
    if not looks > 0:
        raise ValueError(f"number of looks must be > 0, got {n_looks}")
    corr = float(scipy.stats.gamma.ppf(quantile, looks) / looks)
    return _floor_db(np.asarray(power_db, dtype=np.float64), quantile, corr)


def _floor_db(p: NDArray[np.float64], quantile: float, corr: float) -> float:
    """``quantile`` of the finite bins' linear power divided by ``corr``, in dB (NaN if none finite)."""
    p = p[np.isfinite(p)]
    if p.size == 0:
        return float("nan")
    lin = np.power(10.0, np.minimum(p, _MAX_LIN_DB) / 10.0)
    q = float(np.quantile(lin, quantile))
    return float(10.0 * np.log10(max(q / corr, 1e-300)))


def _utc(t: datetime | None) -> datetime | None:
    """A datetime as timezone-aware UTC (naive values are taken as UTC, per DESIGN.md)."""
    if t is None:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _min_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v
