"""Bringing a baseline's statistics onto a live spectrum's grid — or refusing, clearly.

A baseline's levels are power per RBW bin. For noise, that power scales with the RBW
(+10·log10(rbw_live/rbw_base) dB); for a carrier narrower than both bins it does not. A live
spectrum is therefore compared with a baseline only through :func:`align`, which applies one of
four rules:

``direct``
    same RBW (within ``tolerance``) and the live bins on the baseline grid: bins are taken as they are.
``interpolated``
    same RBW, grid offset or respaced: statistics interpolated linearly in dB at the live
    frequencies (or the max of the two neighbours with ``interpolation="max"``).
``aggregated``
    live RBW wider by k = rbw_live/rbw_base > 1: for each live bin, the max over the baseline bins
    within its response (± max(RBW, spacing)) of each level statistic, plus 10·log10(k). This is
    exact for noise spread over the k baseline bins and over-estimates a narrowband carrier by
    10·log10(k) — conservative: the baseline level is never under-estimated, so no false alarm.
``nearest_coarser``
    live RBW narrower (the baseline cannot resolve it): :class:`RegridError`, unless
    ``allow_coarser=True``, in which case each live bin takes the baseline bin nearest its center
    with no level correction. Noise in the narrower live bin reads 10·log10(rbw_base/rbw_live) dB
    lower than the baseline value and a carrier reads the same, so the baseline level is again
    never under-estimated (at the cost of that much sensitivity to wideband emissions).

No function here reads files, the clock or the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detector.baseline._grid import TOLERANCE, as_freqs, fmt_hz, grid_positions, snap
from detector.baseline._model import SiteBaseline
from detector.core.errors import InputError

__all__ = ["RegridError", "AlignedBaseline", "align"]

_LEVELS = ("median_db", "p90_db", "p99_db", "max_db")  # shift with the RBW ratio
_SHAPES = ("mad_db", "occupancy")  # do not


class RegridError(InputError):
    """A baseline cannot be brought onto a live spectrum's grid (RBW, unit or grid mismatch)."""


@dataclass(frozen=True, eq=False)
class AlignedBaseline:
    """A baseline's statistics on a live spectrum's grid (see :func:`align`).

    Attributes
    ----------
    freqs_hz : ndarray of float64, shape (n,)
        The live bin centers (Hz).
    rbw_hz : float
        The live RBW (Hz).
    median_db, p90_db, p99_db, max_db : ndarray of float32, shape (n,)
        Level statistics in the baseline's unit (dB per live RBW bin); NaN where not covered.
    mad_db : ndarray of float32, shape (n,)
        Median absolute deviation (dB); NaN where not covered.
    occupancy : ndarray of float32, shape (n,)
        Share of survey frames occupied, in [0, 1]; NaN where not covered.
    covered : ndarray of bool, shape (n,)
        True where the baseline holds survey data for the whole live bin.
    method : str
        ``"direct"``, ``"interpolated"``, ``"aggregated"`` or ``"nearest_coarser"``.
    level_offset_db : float
        dB added to the level statistics (10·log10(k) for ``aggregated``, else 0).
    unit : str
        Unit of the levels ("dBFS" or "dBm").
    """

    freqs_hz: NDArray[np.float64]
    rbw_hz: float
    median_db: NDArray[np.float32]
    p90_db: NDArray[np.float32]
    p99_db: NDArray[np.float32]
    max_db: NDArray[np.float32]
    mad_db: NDArray[np.float32]
    occupancy: NDArray[np.float32]
    covered: NDArray[np.bool_]
    method: str
    level_offset_db: float
    unit: str


def _stats(b: SiteBaseline) -> dict[str, NDArray[np.float64]]:
    return {
        "median_db": b.median.astype(np.float64),
        "p90_db": b.p90.astype(np.float64),
        "p99_db": b.p99.astype(np.float64),
        "max_db": b.max_db.astype(np.float64),
        "mad_db": b.mad.astype(np.float64),
        "occupancy": b.occupancy.astype(np.float64),
    }


def _window_max(
    stats: dict[str, NDArray[np.float64]], covered: NDArray[np.bool_], lo: NDArray[np.int64], hi: NDArray[np.int64]
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.bool_]]:
    """Max of each statistic over baseline bins ``lo..hi`` (inclusive, within the grid) per live bin.

    A live bin is covered when every bin of its window is. Vectorised: a (n, width) gather.
    """
    m = covered.size
    width = int(np.max(hi - lo)) + 1 if lo.size else 1
    idx = lo[:, None] + np.arange(width)[None, :]
    in_win = idx <= hi[:, None]
    idxc = np.clip(idx, 0, m - 1)
    cov_cells = covered[idxc]
    cov = np.all(cov_cells | ~in_win, axis=1)
    use = in_win & cov_cells
    out = {}
    for name, s in stats.items():
        vals = np.where(use, np.nan_to_num(s[idxc], nan=-np.inf), -np.inf)
        out[name] = vals.max(axis=1)
    return out, cov


def align(
    baseline: SiteBaseline,
    freqs_hz: NDArray[np.float64],
    rbw_hz: float,
    *,
    tolerance: float = TOLERANCE,
    allow_coarser: bool = False,
    interpolation: str = "linear",
    unit: str | None = None,
) -> AlignedBaseline:
    """Per-bin baseline statistics for a live spectrum's grid (rules in the module docstring).

    Parameters
    ----------
    baseline : SiteBaseline
    freqs_hz : array_like of float64, shape (n,)
        Live bin centers (Hz), strictly increasing.
    rbw_hz : float
        Live RBW (Hz), > 0.
    tolerance : float
        Relative tolerance: RBWs within it are equal, and a live bin within ``tolerance`` of a
        bin spacing of a baseline bin lies on the grid. Default 1 %.
    allow_coarser : bool
        Accept a live RBW narrower than the baseline's (nearest baseline bin, no correction;
        conservative) instead of raising.
    interpolation : {"linear", "max"}
        For the ``interpolated`` rule: linear in dB (default) or the max of the two neighbouring
        baseline bins (conservative near carriers, whose level between bins linear interpolation
        under-estimates by up to the window's scalloping, ≈ 1.4 dB for Hann).
    unit : str, optional
        The live spectrum's unit; when given it must equal the baseline's.

    Returns
    -------
    AlignedBaseline
        Arrays of shape (n,): float32 statistics (NaN where not covered) and a bool ``covered``
        mask (False outside the baseline's frequency range and where survey frames are missing).

    Raises
    ------
    RegridError
        A live RBW narrower than the baseline's (unless ``allow_coarser``), a different unit, a
        non-positive RBW or bad live frequencies.
    """
    try:
        fl = as_freqs(freqs_hz, "live spectrum")
    except ValueError as exc:
        raise RegridError(str(exc)) from None
    if not float(rbw_hz) > 0:
        raise RegridError(f"live RBW must be > 0 Hz, got {rbw_hz}")
    if unit is not None and unit != baseline.unit:
        raise RegridError(f"the live spectrum is in {unit} but the baseline is in {baseline.unit}; "
                          "calibrate both the same way")
    if interpolation not in ("linear", "max"):
        raise ValueError(f"interpolation must be 'linear' or 'max', got {interpolation!r}")
    rb = baseline.rbw_hz
    rl = float(rbw_hz)
    m = baseline.n_bins
    f0 = float(baseline.freqs_hz[0])
    db = baseline.bin_hz
    pos = grid_positions(fl, f0, db)
    stats = _stats(baseline)
    covered_b = baseline.covered
    offset = 0.0

    if abs(rl - rb) <= tolerance * rb:
        idx, on_grid = snap(pos, tolerance)
        if on_grid.all():
            method = "direct"
            inside = (idx >= 0) & (idx < m)
            gi = np.clip(idx, 0, m - 1)
            cov = inside & covered_b[gi]
            vals = {k: s[gi] for k, s in stats.items()}
        else:
            method = "interpolated"
            inside = (pos >= -tolerance) & (pos <= m - 1 + tolerance)
            i0 = np.clip(np.floor(pos), 0, m - 2).astype(np.int64)
            w = np.clip(pos - i0, 0.0, 1.0)
            if interpolation == "linear":
                need0, need1 = w < 1.0, w > 0.0
                cov = inside & (~need0 | covered_b[i0]) & (~need1 | covered_b[i0 + 1])
                vals = {
                    k: np.where(need0, (1.0 - w) * np.nan_to_num(s[i0]), 0.0)
                    + np.where(need1, w * np.nan_to_num(s[i0 + 1]), 0.0)
                    for k, s in stats.items()
                }
            else:
                lo = np.where(w >= 1.0 - tolerance, i0 + 1, i0)
                hi = np.where(w <= tolerance, i0, i0 + 1)
                vals, cov_w = _window_max(stats, covered_b, lo, hi)
                cov = inside & cov_w
    elif rl > rb:
        method = "aggregated"
        offset = float(10.0 * np.log10(rl / rb))
        spacing = np.gradient(fl) if fl.size > 1 else np.array([rl])
        # half-span of each live bin's response, in baseline bins: a window's main lobe reaches
        # about one RBW either side (Hann: ±2 bins), so a carrier between live bins is seen there too
        half = np.maximum(rl, spacing) / db
        nearest = np.rint(pos)
        lo = np.minimum(np.ceil(pos - half - tolerance), nearest)
        hi = np.maximum(np.floor(pos + half + tolerance), nearest)
        inside = (pos - half >= -0.5 - tolerance) & (pos + half <= m - 0.5 + tolerance)
        lo_i = np.clip(lo, 0, m - 1).astype(np.int64)
        hi_i = np.clip(hi, 0, m - 1).astype(np.int64)
        vals, cov_w = _window_max(stats, covered_b, lo_i, hi_i)
        cov = inside & cov_w
    else:
        if not allow_coarser:
            raise RegridError(
                f"baseline RBW {fmt_hz(rb)} Hz is coarser than the live RBW {fmt_hz(rl)} Hz, so its bins cannot "
                f"be compared with the live ones; survey again at {fmt_hz(rl)} Hz RBW"
            )
        method = "nearest_coarser"
        inside = (pos >= -0.5 - tolerance) & (pos <= m - 0.5 + tolerance)
        gi = np.clip(np.rint(pos), 0, m - 1).astype(np.int64)
        cov = inside & covered_b[gi]
        vals = {k: s[gi] for k, s in stats.items()}

    out: dict[str, NDArray[np.float32]] = {}
    for k, v in vals.items():
        shifted = v + offset if k in _LEVELS else v
        out[k] = np.where(cov, shifted, np.nan).astype(np.float32)
    return AlignedBaseline(
        freqs_hz=fl.copy(),
        rbw_hz=rl,
        covered=np.asarray(cov, dtype=bool),
        method=method,
        level_offset_db=offset,
        unit=baseline.unit,
        **out,
    )
