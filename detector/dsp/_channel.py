"""The power of one channel of a spectrum: the bins within ``center ± bandwidth/2`` summed.

A bin holds the power in one RBW (the window's equivalent noise bandwidth) around its center, and
the bins are ``bin_hz`` apart, with ``rbw_hz > bin_hz`` for a tapered window (Hann: 1.5 ×). Summed
as they are, the bins count every part of the channel ``rbw_hz / bin_hz`` times, so the sum is
scaled by ``bin_hz / rbw_hz`` (Parseval): white noise of density N0 over a channel of width B reads
``N0·B``, and a tone inside the channel its own power, whatever the FFT size or the window.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["channel_power_db", "channel_bins"]


def channel_bins(freqs_hz: ArrayLike, center_hz: float, bandwidth_hz: float) -> np.ndarray:
    """Indices of the bins whose centers lie within ``center_hz ± bandwidth_hz/2`` (the nearest bin
    when the channel is narrower than one bin; empty when ``center_hz`` is outside the spectrum)."""
    f = np.asarray(freqs_hz, dtype=np.float64)
    if f.size == 0:
        return np.zeros(0, dtype=np.intp)
    half = max(float(bandwidth_hz), 0.0) / 2.0
    bin_hz = float(f[1] - f[0]) if f.size > 1 else 0.0
    if center_hz < f[0] - bin_hz / 2 or center_hz > f[-1] + bin_hz / 2:
        return np.zeros(0, dtype=np.intp)
    idx = np.flatnonzero(np.abs(f - center_hz) <= half)
    if idx.size == 0:
        idx = np.array([int(np.argmin(np.abs(f - center_hz)))], dtype=np.intp)
    return idx


def channel_power_db(freqs_hz: ArrayLike, power_db: ArrayLike, rbw_hz: float, center_hz: float,
                     bandwidth_hz: float) -> float:
    """Power of the channel ``center_hz ± bandwidth_hz/2``, in the spectrum's unit (dBFS or dBm).

    ``power_db`` is per RBW bin (:mod:`detector.dsp`), ``freqs_hz`` evenly spaced and ascending.
    NaN bins are left out (the sum scaled up to the channel's bin count); NaN when no bin of the
    channel is in the spectrum or none has a value."""
    f = np.asarray(freqs_hz, dtype=np.float64)
    p = np.asarray(power_db, dtype=np.float64)
    if f.shape != p.shape or f.ndim != 1:
        raise ValueError(f"freqs_hz {f.shape} and power_db {p.shape} must be equal 1-D shapes")
    idx = channel_bins(f, center_hz, bandwidth_hz)
    if idx.size == 0:
        return math.nan
    vals = p[idx]
    ok = np.isfinite(vals)
    if not ok.any():
        return math.nan
    bin_hz = float(f[1] - f[0]) if f.size > 1 else float(rbw_hz)
    lin = float(np.sum(10.0 ** (vals[ok] / 10.0))) * idx.size / int(ok.sum())
    return 10.0 * math.log10(max(lin * bin_hz / float(rbw_hz), 1e-300))
