"""Noise floor and peaks of a recording's average and max-hold spectra.

Thresholds come from the statistics of averaged periodogram bins, not from a constant: a noise
bin averaged over L independent looks is σ²·Gamma(L, 1)/L (THEORY.md §1.1–1.2, Urkowitz 1967), so
the max-hold over F frames of M bins exceeds ``σ²·gamma.isf(p/(F·M), L)/L`` with probability ≈ p.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.ndimage
import scipy.stats
from numpy.typing import NDArray

__all__ = ["Peak", "noise_floor", "look_threshold_db", "find_peaks", "mark_images"]


@dataclass(frozen=True)
class Peak:
    """A spectral peak. ``index`` is the bin of the maximum; ``lo``/``hi`` the region's bins
    (inclusive); ``image`` True when it is the IQ mirror image of a much stronger emission
    (:func:`mark_images`)."""

    index: int
    lo: int
    hi: int
    peak_db: float
    snr_db: float
    bandwidth_bins: int
    image: bool = False


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


def mark_images(peaks: list[Peak], power_lin: NDArray, center_bin: int, *, margin_db: float = 15.0) -> list[Peak]:
    """Flag the peaks that are IQ mirror images: a peak whose maximum is at least ``margin_db``
    below the power at its mirrored bin (``2·center_bin − index``, ±1 bin) in ``power_lin``.

    An IQ gain/phase imbalance of ε dB / φ° puts a copy of every emission at the mirrored
    frequency, weaker by the image rejection ratio (IRR ≈ 10·log10(4 / (ε_lin² + φ_rad²)), about
    25–40 dB on an RTL2832U); the margin is the same as the detector's ``image_margin_db``. The
    mirror is looked up in the spectrum, not among the peaks. Returns new :class:`Peak` objects
    in the same order; peaks whose mirror falls outside the band are never images.
    """
    p = np.asarray(power_lin, dtype=np.float64)
    m = p.size
    out = []
    for pk in peaks:
        j = 2 * center_bin - pk.index
        if 0 <= j < m:
            mirror_db = float(10 * np.log10(max(float(p[max(j - 1, 0):min(j + 2, m)].max()), 1e-30)))
            if mirror_db - pk.peak_db >= margin_db:
                out.append(replace(pk, image=True))
                continue
        out.append(pk)
    return out
