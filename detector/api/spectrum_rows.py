"""Spectrum rows for the live stream, made compact: a frequency span of the engine's grid, max-hold
decimation to a number of bins, and 8-bit quantisation with its scale (pure numpy, no web imports).

A quantised row is ``q`` (uint8, one code per bin) with ``offset_db`` and ``step_db``: the level of
code ``c`` is ``offset_db + step_db * c`` dB for ``c`` in 0–254 (:data:`CODE_MAX`); :data:`CODE_NAN`
(255) marks a bin without a level (NaN). Levels outside the scale are clipped to its ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CODE_MAX", "CODE_NAN", "QuantisedRow", "RowGrid", "dequantise", "max_hold_decimate", "quantise_db",
           "row_grid"]

#: the highest level code; :data:`CODE_NAN` marks a bin without a level
CODE_MAX = 254
CODE_NAN = 255
#: the finest step chosen when the scale is derived from the row (dB)
MIN_STEP_DB = 0.01


@dataclass(frozen=True)
class QuantisedRow:
    """``q`` (uint8, shape (n,)) and its scale: level dB = ``offset_db + step_db * q`` (``q`` ≤ 254;
    255 = no level)."""

    q: np.ndarray
    offset_db: float
    step_db: float

    def levels_db(self) -> np.ndarray:
        """The levels (float64 dB, NaN where ``q`` is 255), see :func:`dequantise`."""
        return dequantise(self.q, self.offset_db, self.step_db)


def quantise_db(db, *, offset_db: float | None = None, step_db: float | None = None) -> QuantisedRow:
    """Levels (dB, shape (n,)) as 8-bit codes.

    Without ``offset_db``/``step_db`` the scale spans the row's finite levels: ``offset_db`` is the
    lowest (rounded down to 0.01 dB), ``step_db`` the range over 254 (rounded up to 0.001 dB, at
    least 0.01 dB), so every finite level comes back within ``step_db / 2``. With them (both), levels
    outside ``offset_db … offset_db + 254·step_db`` are clipped to 0 or 254. NaN → 255; −inf → 0,
    +inf → 254. Raises ValueError for a ``step_db`` that is not positive and finite, or a scale
    given by half."""
    x = np.asarray(db, dtype=np.float64).ravel()
    if (offset_db is None) != (step_db is None):
        raise ValueError("give both offset_db and step_db, or neither")
    if offset_db is None:
        fin = x[np.isfinite(x)]
        if fin.size == 0:
            offset_db, step_db = 0.0, 1.0
        else:
            lo, hi = float(fin.min()), float(fin.max())
            offset_db = math.floor(lo * 100.0) / 100.0
            step_db = max(MIN_STEP_DB, math.ceil((hi - offset_db) / CODE_MAX * 1000.0) / 1000.0)
    if not (step_db is not None and math.isfinite(step_db) and step_db > 0):
        raise ValueError(f"step_db must be positive and finite, not {step_db!r}")
    assert offset_db is not None
    with np.errstate(invalid="ignore"):
        c = np.rint((x - offset_db) / step_db)
    nan = np.isnan(c)
    c = np.clip(np.where(nan, 0.0, c), 0, CODE_MAX)
    q = c.astype(np.uint8)
    q[nan] = CODE_NAN
    return QuantisedRow(q=q, offset_db=float(offset_db), step_db=float(step_db))


def dequantise(q, offset_db: float, step_db: float) -> np.ndarray:
    """Codes (uint8, shape (n,)) back to levels: float64 dB, NaN where the code is 255."""
    c = np.asarray(q, dtype=np.uint8)
    out = offset_db + step_db * c.astype(np.float64)
    out[c == CODE_NAN] = np.nan
    return out


def max_hold_decimate(db, factor: int) -> np.ndarray:
    """The maximum of each run of ``factor`` bins (shape (n,) → (ceil(n / factor),)); NaN bins are
    ignored, a run of NaN only gives NaN. ``factor`` 1 returns the levels unchanged (as float64)."""
    x = np.asarray(db, dtype=np.float64).ravel()
    if factor < 1:
        raise ValueError(f"factor must be ≥ 1, not {factor}")
    if factor == 1:
        return x
    n_out = -(-x.size // factor)
    pad = np.full(n_out * factor, np.nan)
    pad[:x.size] = x
    with np.errstate(invalid="ignore"):
        return np.fmax.reduce(pad.reshape(n_out, factor), axis=1)


@dataclass(frozen=True)
class RowGrid:
    """Which bins of the engine's grid a row holds and how: bins ``i0:i1`` in runs of ``factor``.

    ``f0_hz`` is the centre of the first output bin, ``bin_hz`` the output bins' spacing
    (``factor`` × the engine's), ``n`` their number (≤ the bins asked for)."""

    i0: int
    i1: int
    factor: int
    f0_hz: float
    bin_hz: float
    n: int

    def apply(self, db) -> np.ndarray:
        """The row of levels on this grid (shape (n,)) from levels on the engine's grid."""
        return max_hold_decimate(np.asarray(db)[self.i0:self.i1], self.factor)


def row_grid(freqs_hz, bins: int, f_lo_hz: float | None = None, f_hi_hz: float | None = None) -> RowGrid:
    """The grid of rows of at most ``bins`` bins over the engine's bins whose centres lie in
    ``f_lo_hz … f_hi_hz`` (Hz; None: the grid's end). A span that holds no bin centre (a retune
    moved the grid away from the zoom) gives the whole grid.

    ``freqs_hz`` are evenly spaced bin centres (shape (m,), m ≥ 1). Raises ValueError for ``bins`` < 1."""
    f = np.asarray(freqs_hz, dtype=np.float64)
    if bins < 1:
        raise ValueError(f"bins must be ≥ 1, not {bins}")
    m = f.size
    df = float(f[1] - f[0]) if m > 1 else 1.0
    i0, i1 = 0, m
    if f_lo_hz is not None:
        i0 = int(np.searchsorted(f, f_lo_hz, side="left"))
    if f_hi_hz is not None:
        i1 = int(np.searchsorted(f, f_hi_hz, side="right"))
    if i1 <= i0:
        i0, i1 = 0, m
    factor = max(1, -(-(i1 - i0) // bins))
    n = -(-(i1 - i0) // factor)
    f0 = float(f[i0]) + (factor - 1) * df / 2.0
    return RowGrid(i0=i0, i1=i1, factor=factor, f0_hz=f0, bin_hz=df * factor, n=n)
