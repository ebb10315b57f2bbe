"""Uniform frequency grids: validation and mapping of bins onto a grid (private helpers)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Relative tolerance used throughout the package: RBWs within 1 % are "the same", and a bin lies on
#: a grid when its frequency is within 1 % of a bin spacing of a grid point.
TOLERANCE = 0.01


def as_freqs(freqs_hz: object, what: str, *, min_bins: int = 1) -> NDArray[np.float64]:
    """Validate a 1-D, finite, strictly increasing frequency array; return it as float64.

    Raises
    ------
    ValueError
        Not 1-D, fewer than ``min_bins`` bins, non-finite values or not strictly increasing.
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    if f.ndim != 1 or f.size < min_bins:
        raise ValueError(f"{what}: expected a 1-D array of at least {min_bins} frequencies, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{what}: frequencies must be finite")
    if f.size > 1 and not np.all(np.diff(f) > 0):
        raise ValueError(f"{what}: frequencies must be strictly increasing")
    return f


def uniform_spacing(freqs_hz: NDArray[np.float64], what: str, *, tolerance: float = TOLERANCE) -> float:
    """Spacing (Hz) of a uniform grid of ≥ 2 bins: ``(f[-1] − f[0])/(m − 1)``.

    Raises
    ------
    ValueError
        Fewer than two bins, or a bin further than ``tolerance`` of a spacing from the uniform grid.
    """
    f = freqs_hz
    if f.size < 2:
        raise ValueError(f"{what}: a frequency grid needs at least 2 bins to define its spacing, got {f.size}")
    step = float(f[-1] - f[0]) / (f.size - 1)
    dev = np.abs(f - (f[0] + step * np.arange(f.size)))
    if float(dev.max()) > tolerance * step:
        raise ValueError(
            f"{what}: frequency grid is not uniform (a bin is {float(dev.max()):.6g} Hz off the "
            f"{step:.6g} Hz spacing); pass an explicit uniform grid"
        )
    return step


def grid_positions(freqs_hz: NDArray[np.float64], f0_hz: float, bin_hz: float) -> NDArray[np.float64]:
    """Fractional grid index of each frequency: ``(f − f0)/bin``."""
    return (freqs_hz - f0_hz) / bin_hz


def snap(pos: NDArray[np.float64], tolerance: float = TOLERANCE) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Nearest grid index of fractional positions, and whether each lies within ``tolerance`` of it."""
    idx = np.rint(pos)
    return idx.astype(np.int64), np.abs(pos - idx) <= tolerance


def same_rbw(a_hz: float, b_hz: float, tolerance: float = TOLERANCE) -> bool:
    """True when two RBWs differ by at most ``tolerance`` relative to the first."""
    return abs(float(b_hz) - float(a_hz)) <= tolerance * abs(float(a_hz))


def fmt_hz(x: float) -> str:
    """Short human form of a frequency in Hz (up to two decimals, trailing zeros dropped)."""
    s = f"{float(x):.2f}".rstrip("0").rstrip(".")
    return s or "0"
