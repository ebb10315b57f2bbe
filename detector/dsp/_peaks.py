"""Noise floor and peaks of a recording's average and max-hold spectra.

Thresholds come from the statistics of averaged periodogram bins, not from a constant: a noise
bin averaged over L independent looks is σ²·Gamma(L, 1)/L (THEORY.md §1.1–1.2, Urkowitz 1967), so
the max-hold over F frames of M bins exceeds ``σ²·gamma.isf(p/(F·M), L)/L`` with probability ≈ p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.stats
from numpy.typing import NDArray

__all__ = ["Peak", "noise_floor", "look_threshold_db", "find_peaks"]


@dataclass(frozen=True)
class Peak:
    """A spectral peak. ``index`` is the bin of the maximum; ``lo``/``hi`` the region's bins (inclusive)."""

    index: int
    lo: int
    hi: int
    peak_db: float
    snr_db: float
    bandwidth_bins: int


def noise_floor(power_lin: NDArray, *, width_bins: int | None = None, quantile: float = 0.3) -> NDArray[np.float64]:
    """Per-bin noise floor of a spectrum (linear power, shape (m,)): a running low quantile over
    frequency (an order-statistic floor, robust to emissions covering up to ~70 % of the window),
    slightly below the noise mean (by < 0.5 dB for bins of ≥ 20 looks), which errs towards
    reporting a peak rather than missing one.

    ``width_bins`` defaults to m/8 (at least 33 bins).
    """
    p = np.asarray(power_lin, dtype=np.float64)
    m = p.size
    w = width_bins or max(33, m // 8)
    w = min(w, m) | 1
    pct = quantile * 100.0
    return scipy.ndimage.percentile_filter(p, pct, size=w, mode="mirror")


def look_threshold_db(looks: float, pfa: float) -> float:
    """Threshold (dB over the noise mean) that one bin averaged over ``looks`` exceeds with probability ``pfa``."""
    looks = max(float(looks), 1.0)
    return float(10 * np.log10(scipy.stats.gamma.isf(pfa, looks) / looks))


def find_peaks(
    avg_lin: NDArray,
    maxhold_lin: NDArray,
    *,
    looks_avg: float,
    looks_frame: float,
    n_frames: int,
    pfa: float = 1e-3,
    merge_gap_bins: int = 2,
    exclude: NDArray[np.intp] | None = None,
) -> tuple[NDArray[np.float64], list[Peak]]:
    """Find emissions in the average and the max-hold spectra of a recording.

    Parameters
    ----------
    avg_lin, maxhold_lin : ndarray, shape (m,)
        Average and max-hold over frames of linear power per bin.
    looks_avg, looks_frame : float
        Independent looks behind a bin of the average and of one frame.
    n_frames : int
        Frames in the max-hold.
    pfa : float
        Chance that noise alone gives a peak anywhere in the spectrum (whole recording).
    merge_gap_bins : int
        Regions separated by at most this many bins are one peak.
    exclude : ndarray of int, optional
        Bins never reported (the DC spike).

    Returns
    -------
    floor : ndarray (m,)
        Noise floor (linear) used.
    peaks : list of Peak, strongest SNR first
    """
    avg = np.asarray(avg_lin, dtype=np.float64)
    mx = np.asarray(maxhold_lin, dtype=np.float64)
    m = avg.size
    floor = noise_floor(avg)
    thr_avg = 10 ** (look_threshold_db(looks_avg, pfa / (2 * m)) / 10)
    thr_max = 10 ** (look_threshold_db(looks_frame, pfa / (2 * m * max(n_frames, 1))) / 10)
    hit = (avg > floor * thr_avg) | (mx > floor * thr_max)
    if exclude is not None and exclude.size:
        hit[exclude] = False
    if merge_gap_bins > 0 and hit.any():
        hit = scipy.ndimage.binary_closing(hit, structure=np.ones(2 * merge_gap_bins + 1, bool)) | hit
        if exclude is not None and exclude.size:
            hit[exclude] = False
    labels, n = scipy.ndimage.label(hit)
    peaks: list[Peak] = []
    if n == 0:
        return floor, peaks
    excess = mx / floor
    objects = scipy.ndimage.find_objects(labels)
    for i, sl in enumerate(objects, start=1):
        lo, hi = sl[0].start, sl[0].stop - 1
        seg = np.where(labels[lo : hi + 1] == i, excess[lo : hi + 1], 0)
        k = lo + int(np.argmax(seg))
        peaks.append(
            Peak(index=k, lo=lo, hi=hi, peak_db=float(10 * np.log10(max(mx[k], 1e-30))),
                 snr_db=float(10 * np.log10(max(excess[k], 1e-30))), bandwidth_bins=hi - lo + 1)
        )
    peaks.sort(key=lambda p: p.snr_db, reverse=True)
    return floor, peaks
