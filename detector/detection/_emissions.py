"""One frame or a stack of frames: noise floor (order-statistic CFAR, :mod:`._cfar`), per-bin tests
against floor and baseline, bins grouped into emissions (:mod:`._extract`), artefacts (DC spike, IQ
image, band edges, gain steps) rejected. The config and result types live in :mod:`._results` and
are re-exported here."""

from __future__ import annotations

import numpy as np
import scipy.ndimage
from numpy.typing import NDArray

from detector.detection._cfar import DetectionCache, batch_floor, os_cfar_floor
from detector.detection._extract import _extract_stack
from detector.detection._results import DetectionConfig, Emission, FrameResult, StackResult
from detector.detection._thresholds import noise_quantile_ratio, threshold_ratio

__all__ = ["DetectionCache", "Emission", "FrameResult", "DetectionConfig", "os_cfar_floor", "detect_frame", "detect_frames",
           "detect_stack", "StackResult", "batch_floor"]


def detect_frame(
    freqs_hz: NDArray[np.float64],
    power_dbfs: NDArray[np.float32],
    *,
    looks: float,
    center_hz: float | None,
    config: DetectionConfig = DetectionConfig(),
    baseline=None,
) -> FrameResult:
    """Find the emissions of one frame (see :func:`detect_frames`, of which this is the one-frame case).

    Parameters
    ----------
    freqs_hz : ndarray float64 (m,)
        Absolute, uniform, ascending bin frequencies.
    power_dbfs : ndarray float32 (m,)
        Power per RBW bin (dBFS or dBm).
    looks : float
        Independent looks behind each bin (sets the thresholds).
    center_hz : float or None
        Tuned center (DC spike and IQ images are about it); None for sweeps.
    baseline : AlignedBaseline-like, optional
        Per-bin ``median_db``, ``p99_db`` (or the quantile named by ``config.baseline_quantile``),
        ``occupancy``, ``covered`` on this frame's grid. Where it covers a bin, the bin must also
        exceed the baseline's high quantile by the look-derived margin; elsewhere CFAR alone decides.
    """
    return detect_frames(freqs_hz, np.asarray(power_dbfs)[None, :], looks=looks, center_hz=center_hz,
                         config=config, baseline=baseline)[0]


def _valid_mask(freqs_hz, center_hz, config, bin_hz):
    m = freqs_hz.size
    valid = np.ones(m, dtype=bool)
    dc = np.zeros(m, dtype=bool)
    edge = np.zeros(m, dtype=bool)
    if center_hz is not None:
        dc = np.abs(freqs_hz - center_hz) <= max(config.dc_half_width_hz, 1.5 * bin_hz)
        n_edge = int(round(config.edge_crop * m))
        if n_edge:
            edge[:n_edge] = edge[m - n_edge:] = True
    valid &= ~dc & ~edge
    return valid, dc, edge & ~dc


def _baseline_arrays(baseline, config, cache: DetectionCache):
    """Dilated high quantile and median, occupancy, covered: computed once per aligned baseline."""
    def make():
        high = np.asarray(getattr(baseline, f"{config.baseline_quantile}_db"), dtype=np.float64)
        med = np.asarray(baseline.median_db, dtype=np.float64)
        occ = np.nan_to_num(np.asarray(baseline.occupancy, dtype=np.float64), nan=0.0)
        if config.baseline_tolerance_bins:
            # a strong emission that drifts by a fraction of a bin (ppm drift between survey and
            # exam) moves its steep skirts by several dB: compare with the neighbours' levels too
            size = 2 * config.baseline_tolerance_bins + 1
            high = np.where(np.isnan(high), np.nan, scipy.ndimage.maximum_filter1d(np.nan_to_num(high, nan=-np.inf), size))
            med = np.where(np.isnan(med), np.nan, scipy.ndimage.maximum_filter1d(np.nan_to_num(med, nan=-np.inf), size))
            occ = scipy.ndimage.maximum_filter1d(occ, size)
        return high, med, occ, np.asarray(baseline.covered, dtype=bool)
    return cache.for_object(baseline, ("base", config.baseline_quantile, config.baseline_tolerance_bins), make)


def _count_above(p_lin: NDArray, thr: NDArray, colmax: NDArray | None, cols: NDArray | None = None) -> NDArray[np.int64]:
    """Per row, how many bins of ``p_lin`` (n, m) exceed ``thr`` (1, m) or (n, m); only ``cols`` when given.

    With the stack's per-bin maximum ``colmax`` (m,) and a one-row threshold, only the columns
    whose maximum exceeds the threshold are compared: on a quiet stack that is none."""
    n = p_lin.shape[0]
    if colmax is not None and thr.shape[0] == 1:
        t = thr[0]
        cand = np.flatnonzero(colmax > t) if cols is None else cols[colmax[cols] > t[cols]]
        if cand.size == 0:
            return np.zeros(n, dtype=np.int64)
        return np.add.reduce(p_lin[:, cand] > t[cand], axis=1, dtype=np.int64)
    if cols is not None:
        return np.add.reduce(p_lin[:, cols] > thr[:, cols], axis=1, dtype=np.int64)
    return np.add.reduce(p_lin > thr, axis=1, dtype=np.int64)


def detect_frames(
    freqs_hz: NDArray[np.float64],
    power_dbfs: NDArray | None,
    *,
    looks: float,
    center_hz: float | None,
    config: DetectionConfig = DetectionConfig(),
    baseline=None,
    power_lin: NDArray | None = None,
) -> list[FrameResult]:
    """Find the emissions of a stack of frames on one grid, shape (n, m): one :class:`FrameResult`
    per frame. See :func:`detect_stack` for the method; this is its per-frame view."""
    res = detect_stack(freqs_hz, power_dbfs, looks=looks, center_hz=center_hz, config=config, baseline=baseline,
                       power_lin=power_lin)
    return [res.frame(i) for i in range(len(res))]


def detect_stack(
    freqs_hz: NDArray[np.float64],
    power_dbfs: NDArray | None,
    *,
    looks: float,
    center_hz: float | None,
    config: DetectionConfig = DetectionConfig(),
    baseline=None,
    power_lin: NDArray | None = None,
    cache: DetectionCache | None = None,
) -> StackResult:
    """Find the emissions of a stack of frames on one grid, shape (n, m).

    Give the power in dB (``power_dbfs``) or linear (``power_lin``, the framer's output, which
    saves the conversions). The per-bin tests run on the whole stack at once in the linear
    domain; only frames with flagged bins go through emission extraction. Steps: noise floor
    (:func:`batch_floor`); a bin is flagged when it exceeds the floor by ``gamma.isf(Pfa, L)/L``;
    DC spike and band edges are never flagged; where the baseline covers a bin, a gain step
    common to all covered bins is measured and compensated, and the bin must also exceed
    max(high quantile + margin, median + the same Pfa margin); flagged bins grow over contiguous
    bins above a 5 % threshold (hysteresis), gaps of ``merge_gap_bins`` are closed, and each group
    is one :class:`Emission`; a group whose peak is ``image_margin_db`` below the frame's power at
    the mirrored frequency is an IQ image. With n ≥ 4 frames, one floor (from the stack's mean)
    serves the stack, and the per-bin tests run only on the bins whose maximum over the stack
    exceeds the threshold. ``cache`` (a :class:`DetectionCache`) keeps the per-grid and
    per-baseline constants between calls; a caller that detects frame after frame passes its own.
    """
    cache = DetectionCache() if cache is None else cache
    if power_lin is None:
        p_db_all = np.atleast_2d(np.asarray(power_dbfs, dtype=np.float32))
        p_lin = np.power(np.float32(10.0), p_db_all / np.float32(10.0), dtype=np.float32)
    else:
        p_lin = np.atleast_2d(np.asarray(power_lin, dtype=np.float32))
        p_db_all = None
    n, m = p_lin.shape
    bin_hz = float(freqs_hz[1] - freqs_hz[0]) if m > 1 else 1.0
    colmax = None
    mean = None
    if n >= 4:
        # one floor for the stack, from its mean (n·L looks): the noise floor does not change within
        # a block of frames (a fraction of a second), the order statistic ignores emissions, and
        # a level step common to all bins is compensated against the baseline below
        mean = np.add.reduce(p_lin, axis=0, keepdims=True)
        mean *= np.float32(1.0 / n)
        floor = batch_floor(mean, looks * n, window_bins=config.cfar_window_bins, quantile=config.cfar_quantile, cache=cache)
        shared_floor = True  # floor is one row (1, m) for the whole stack
        colmax = np.maximum.reduce(p_lin, axis=0)  # a bin no frame exceeds needs no per-frame test
    else:
        floor = batch_floor(p_lin, looks, window_bins=config.cfar_window_bins, quantile=config.cfar_quantile, cache=cache)
        shared_floor = False
    thr = threshold_ratio(looks, config.pfa_bin)
    grid_key = (m, float(freqs_hz[0]), bin_hz, center_hz, config.dc_half_width_hz, config.edge_crop)
    valid, dc, edge = cache.get(("valid", *grid_key), lambda: _valid_mask(freqs_hz, center_hz, config, bin_hz))
    thr_floor = floor * np.float32(thr)
    # bins outside the valid band never flag: an infinite threshold there saves a mask pass
    thr_valid = np.where(valid, thr_floor, np.float32(np.inf))
    gain_offset = np.zeros(n)
    high = occ = None
    if baseline is not None:
        high, med, occ, covered_all = _baseline_arrays(baseline, config, cache)

        def gain_probe():
            cov = covered_all & valid
            cov_idx = np.flatnonzero(cov)
            sub = cov_idx[:: max(1, cov_idx.size // 256)]
            sub = sub[: sub.size - 1 + sub.size % 2]  # odd: the median is one sample, so it commutes with dB
            return cov, sub if cov_idx.size >= 8 else sub[:0], (10 ** (np.nan_to_num(med[sub], nan=-300.0) / 10)).astype(np.float32)

        covered, sub, med_lin_sub = cache.for_object(baseline, ("gain_probe", config.baseline_quantile,
                                                          config.baseline_tolerance_bins, grid_key), gain_probe)
        if sub.size:
            ratio = p_lin[:, sub]
            ratio /= med_lin_sub
            kmed = sub.size // 2
            ratio.partition(kmed, axis=1)
            gain_offset = 10 * np.log10(np.maximum(ratio[:, kmed].astype(np.float64), 1e-30))
            gain_offset = np.where(np.abs(gain_offset) < config.gain_step_db, 0.0, gain_offset)
        margin = 10 * np.log10(thr / noise_quantile_ratio(looks, 0.5)) + config.baseline_margin_db
        limit_lin = cache.for_object(baseline, ("limit", config.baseline_quantile, config.baseline_tolerance_bins,
                                          round(margin, 6), config.baseline_margin_db),
                               lambda: np.where(covered, 10 ** (np.fmax(high + config.baseline_margin_db, med + margin) / 10), 0.0)
                               .astype(np.float32))
        if gain_offset.any():
            limit = limit_lin[None, :] * (10 ** (gain_offset / 10)).astype(np.float32)[:, None]
        else:
            limit = limit_lin[None, :]
        # one comparison against the larger of the CFAR and the baseline thresholds
        thr_flag = np.maximum(thr_valid, limit)
        raw_count = _count_above(p_lin, thr_valid, colmax)
    else:
        thr_flag = thr_valid
        raw_count = None
    if colmax is not None and thr_flag.shape[0] == 1:
        cand = np.flatnonzero(colmax > thr_flag[0])
        flagged = np.zeros((n, m), dtype=bool)
        cand_cols = cand
        if cand.size:
            hit = p_lin[:, cand] > thr_flag[0, cand]
            flagged[:, cand] = hit
            n_flag = np.add.reduce(hit, axis=1, dtype=np.int64)
        else:
            n_flag = np.zeros(n, dtype=np.int64)
    else:
        flagged = p_lin > thr_flag
        n_flag = np.add.reduce(flagged, axis=1, dtype=np.int64)
        cand_cols = None
    base_rejected = raw_count - n_flag if raw_count is not None else np.zeros(n, dtype=np.int64)
    dc_idx, edge_idx, n_tested, vsub = cache.get(
        ("valid_idx", *grid_key),
        lambda: (np.flatnonzero(dc), np.flatnonzero(edge), int(valid.sum()),
                 np.flatnonzero(valid)[:: max(1, int(valid.sum()) // 256)] if valid.any() else None))
    dc_rej = _count_above(p_lin, thr_floor, colmax, dc_idx)
    edge_rej = _count_above(p_lin, thr_floor, colmax, edge_idx)
    low_thr = threshold_ratio(looks, 0.05)
    if vsub is None:
        noise_all = np.full(n, np.nan)
    elif shared_floor:
        vals = floor[0][vsub]
        h = vals.size // 2
        part = np.partition(vals, [h - 1, h] if vals.size > 1 else [0])
        med_floor = float(part[h]) if vals.size % 2 else float(0.5 * (part[h - 1] + part[h]))
        noise_all = np.full(n, 10 * np.log10(max(med_floor, 1e-30)))
    else:
        noise_all = 10 * np.log10(np.maximum(np.median(floor[:, vsub], axis=1), 1e-30))
    rows = np.flatnonzero(n_flag)
    image_rej = np.zeros(n, dtype=np.int64)
    per_row = _extract_stack(freqs_hz, p_db_all, p_lin, floor, flagged, valid, rows, gain_offset,
                             high, covered if high is not None else None, occ, low_thr, bin_hz, center_hz, config,
                             image_rej, cand_cols, colmax if shared_floor else None) if rows.size else {}
    return StackResult(emissions=per_row, n_flagged=n_flag, rejected_dc=dc_rej, rejected_edge=edge_rej,
                       rejected_image=image_rej, rejected_baseline=base_rejected, noise_floor_dbfs=noise_all,
                       gain_offset_db=np.asarray(gain_offset, dtype=np.float64), floor_lin=floor, n_tested_bins=n_tested,
                       power_lin=p_lin, stack_mean_lin=None if mean is None else mean[0])
