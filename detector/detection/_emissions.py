"""One frame: noise floor (order-statistic CFAR), per-bin tests against floor and baseline,
bins grouped into emissions, artefacts (DC spike, IQ image, band edges, gain steps) rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage
from numpy.typing import NDArray

from detector.detection._thresholds import noise_quantile_ratio, threshold_ratio

__all__ = ["DetectionCache", "Emission", "FrameResult", "DetectionConfig", "os_cfar_floor", "detect_frame", "detect_frames", "detect_stack", "StackResult", "batch_floor"]


@dataclass(frozen=True)
class DetectionConfig:
    """Knobs of the per-frame detector (defaults documented in README "Detection").

    ``pfa_bin``: per-bin, per-frame false-alarm probability (set from a false-alert target by
    :func:`~detector.detection.pfa_for_alert_rate`); ``cfar_window_bins``: width of the running
    order statistic; ``cfar_quantile``: its order (0.3: robust while ≤ 70 % of the window is
    occupied); ``merge_gap_bins``: flagged runs this close are one emission; ``dc_half_width_hz``:
    the DC spike's half width never reported; ``edge_crop``: fraction of the band at each edge
    ignored (filter roll-off at hop edges); ``image_margin_db``: a peak this much weaker than an
    emission mirrored about the tuned center is its IQ image; ``baseline_margin_db``: extra margin
    over the baseline's high quantile for drift between survey and exam (the SNR wall, THEORY §1.2
    item 7); ``gain_step_db``: a median level shift over all covered bins larger than this is a gain
    change, compensated and reported, not an emitter; ``baseline_tolerance_bins``: a bin is compared
    with the highest baseline level within this many bins (frequency drift between survey and exam).
    """

    pfa_bin: float = 1e-5
    cfar_window_bins: int = 129
    cfar_quantile: float = 0.3
    merge_gap_bins: int = 2
    dc_half_width_hz: float = 2000.0
    edge_crop: float = 0.02
    image_margin_db: float = 15.0
    baseline_quantile: str = "p99"
    baseline_margin_db: float = 1.0
    gain_step_db: float = 1.0
    baseline_tolerance_bins: int = 1


@dataclass
class Emission:
    """An emission in one frame.

    ``center_hz`` power-weighted center; ``bandwidth_hz`` occupied (99 % of the power above the
    floor, ITU-R SM.328);
    ``f_lo_hz``/``f_hi_hz`` the flagged span; ``peak_dbfs`` strongest bin; ``snr_db`` over the
    frame's noise floor; ``excess_db`` over the baseline's high quantile (None without baseline);
    ``bins`` the flagged bin indices; ``n_runs`` contiguous runs joined into it.
    """

    center_hz: float
    bandwidth_hz: float
    f_lo_hz: float
    f_hi_hz: float
    peak_hz: float
    peak_dbfs: float
    snr_db: float
    excess_db: float | None
    power_dbfs: float
    bins: NDArray[np.intp] = field(repr=False)
    n_runs: int = 1
    baseline_occupancy: float | None = None


@dataclass
class FrameResult:
    """Everything one frame gives: emissions, the floor, the gain offset and what was rejected."""

    emissions: list[Emission]
    floor_db: NDArray[np.float32] | None  # computed for frames with emissions and the last of a stack
    noise_floor_dbfs: float
    gain_offset_db: float
    n_flagged_bins: int
    rejected: dict[str, int]
    n_tested_bins: int = 0


def os_cfar_floor(power_lin: NDArray, looks: float, *, window_bins: int = 129, quantile: float = 0.3) -> NDArray[np.float64]:
    """Noise mean per bin from a running order statistic over frequency (OS-CFAR, Rohling 1983).

    The running ``quantile`` of the bins around each bin, divided by the same quantile of a noise
    bin of ``looks`` looks (Gamma(L, 1)/L), estimates the local noise mean without bias. Shape (m,).
    """
    p = np.asarray(power_lin, dtype=np.float64)
    w = min(int(window_bins), p.size) | 1
    q = scipy.ndimage.percentile_filter(p, quantile * 100.0, size=w, mode="mirror")
    return q / noise_quantile_ratio(looks, quantile)


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Inclusive (lo, hi) bin runs of True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _occupied_bandwidth(excess_lin: NDArray, bin_hz: float, fraction: float = 0.99) -> float:
    """Occupied bandwidth: the width holding ``fraction`` of the power above the floor, with
    (1 − fraction)/2 outside at each end (ITU-R SM.328 "99 % power" definition), at least one bin.
    Bins are taken in frequency order; the result is a multiple of the bin width."""
    w = np.maximum(np.asarray(excess_lin, dtype=np.float64), 0.0)
    total = w.sum()
    if total <= 0 or w.size == 1:
        return float(w.size * bin_hz) if total <= 0 else float(bin_hz)
    c = np.cumsum(w) / total
    lo = int(np.searchsorted(c, (1 - fraction) / 2))
    hi = int(np.searchsorted(c, 1 - (1 - fraction) / 2))
    return float((min(hi, w.size - 1) - lo + 1) * bin_hz)


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


class DetectionCache:
    """Per-grid constants of the batch detector (masks, CFAR grouping plans and normalisation) and
    per-baseline derived arrays, owned by whoever runs detection over many frames (the
    :class:`~detector.detection.engine.DetectionEngine` holds one per run).

    ``get(key, make)`` returns the value made once per key (the table is cleared when it holds
    more than 64 keys); ``for_object(obj, key, make)`` keeps values per object (an aligned
    baseline), with a reference to the object so that its id is never reused while cached.
    Without a cache given, :func:`detect_stack` makes a fresh one per call.
    """

    def __init__(self) -> None:
        self._grid: dict = {}
        self._objects: dict[int, tuple[object, dict]] = {}

    def get(self, key, make):
        v = self._grid.get(key)
        if v is None:
            if len(self._grid) > 64:
                self._grid.clear()
            v = self._grid[key] = make()
        return v

    def for_object(self, obj, key, make):
        entry = self._objects.get(id(obj))
        if entry is None or entry[0] is not obj:
            if len(self._objects) > 16:
                self._objects.clear()
            entry = self._objects[id(obj)] = (obj, {})
        values = entry[1]
        if key not in values:
            values[key] = make()
        return values[key]


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


def _cfar_norm(looks: float, m: int, g: int, w_groups: int, quantile: float) -> float:
    """Mean of the raw grouped order statistic on unit-mean noise of ``looks`` looks (measured once)."""
    rng = np.random.default_rng(1234)
    noise = rng.gamma(looks, 1.0 / looks, size=(64, m))
    raw = _grouped_floor_raw(noise, g, w_groups, quantile)
    return float(raw.mean())


def _interp_plan(m: int, g: int, cache: DetectionCache):
    """Group index and fraction of every bin between group centers (per grid, cached)."""
    def make():
        G = -(-m // g)
        centers = (np.arange(G) + 0.5) * g - 0.5
        idx = np.clip(np.searchsorted(centers, np.arange(m)) - 1, 0, max(G - 2, 0))
        frac = np.clip((np.arange(m) - centers[idx]) / g, 0.0, 1.0)
        return idx, idx + 1, frac, 1.0 - frac
    return cache.get(("interp", m, g), make)


def _running_rank(x: NDArray, size: int, quantile: float, cache: DetectionCache) -> NDArray:
    """``scipy.ndimage.percentile_filter(x, 100·quantile, size=(1, size), mode="mirror")`` along the
    last axis, as a partition of a sliding window (the same rank, far less call overhead on short rows)."""
    rank = min(max(int(float(size) * quantile), 0), size - 1)
    n, g = x.shape

    def make():
        # window of every position as indices into x, mirrored at the ends (d c b | a b c d | c b a),
        # as np.pad(mode="reflect") does
        j = np.arange(g)[:, None] + np.arange(size)[None, :] - size // 2
        j = np.abs(j)
        return np.where(j > g - 1, 2 * (g - 1) - j, j)

    idx = cache.get(("rank_idx", g, size), make)
    return np.partition(x[:, idx], rank, axis=2)[:, :, rank]


def _grouped_floor_raw(p_lin: NDArray, g: int, w_groups: int, quantile: float, norm: float = 1.0,
                       cache: DetectionCache | None = None) -> NDArray[np.float64]:
    """Running order statistic over frequency, computed on groups of ``g`` bins (n, m) → (n, m),
    divided by ``norm``."""
    cache = DetectionCache() if cache is None else cache
    n, m = p_lin.shape
    G = -(-m // g)
    pad = G * g - m
    x = np.pad(p_lin, ((0, 0), (0, pad)), mode="reflect") if pad else p_lin
    k = int(round(quantile * (g - 1)))
    grp = np.partition(x.reshape(n, G, g), k, axis=2)[:, :, k]
    size = min(w_groups, G) | 1
    if w_groups > 1 and size > 1:
        grp = _running_rank(grp, size, quantile, cache) if size // 2 < G else scipy.ndimage.percentile_filter(
            grp, quantile * 100.0, size=(1, size), mode="mirror")
    grp = grp.astype(np.float64)
    if norm != 1.0:
        grp /= norm  # on the G group values, before interpolation to the m bins
    if G == 1:
        return np.repeat(grp, m, axis=1)
    i0, i1, frac, rfrac = _interp_plan(m, g, cache)
    if n == 1:  # the stack's one floor row
        row = grp[0]
        return (row[i0] * rfrac + row[i1] * frac)[None, :]
    return grp[:, i0] * rfrac + grp[:, i1] * frac


def batch_floor(p_lin: NDArray, looks: float, *, window_bins: int, quantile: float,
                cache: DetectionCache | None = None) -> NDArray[np.float64]:
    """Noise mean per bin for a stack of frames (n, m): an order-statistic CFAR (Rohling 1983)
    on groups of bins. Each group of ``g`` ≈ window/8 bins gives its ``quantile``; a running
    ``quantile`` over the groups spanning ``window_bins`` is interpolated back to every bin and
    normalised by its mean on pure noise of the same looks (computed once per configuration), so
    the floor is an unbiased noise-mean estimate like :func:`os_cfar_floor` at a fraction of its cost."""
    n, m = p_lin.shape
    g = max(1, min(16, window_bins // 8, m // 8 or 1))
    w_groups = max(1, int(round(window_bins / g)))
    cache = DetectionCache() if cache is None else cache
    norm = cache.get(("norm", round(float(looks), 2), m, g, w_groups, quantile),
                     lambda: _cfar_norm(looks, m, g, w_groups, quantile))
    return _grouped_floor_raw(p_lin, g, w_groups, quantile, norm, cache)


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


@dataclass
class StackResult:
    """Everything a stack of ``n`` frames on one grid gives, as per-frame arrays (no per-frame objects).

    ``emissions`` maps a frame index to its emissions (frames without any are absent);
    ``n_flagged``, ``rejected_*`` (DC, band edge, IQ image, explained by the baseline),
    ``noise_floor_dbfs`` and ``gain_offset_db`` have shape (n,); ``floor_lin`` is the noise mean per
    bin, shape (1, m) when one floor serves the whole stack, else (n, m). :meth:`frame` gives one
    frame as a :class:`FrameResult`.
    """

    emissions: dict[int, list[Emission]]
    n_flagged: NDArray[np.int64]
    rejected_dc: NDArray[np.int64]
    rejected_edge: NDArray[np.int64]
    rejected_image: NDArray[np.int64]
    rejected_baseline: NDArray[np.int64]
    noise_floor_dbfs: NDArray[np.float64]
    gain_offset_db: NDArray[np.float64]
    floor_lin: NDArray
    n_tested_bins: int
    #: the stack's power per bin, linear, (n, m) float32: the framer's output as given, or the
    #: conversion of the dB input (so that the caller need not convert again)
    power_lin: NDArray[np.float32] | None = field(default=None, repr=False)
    _floor_db: NDArray[np.float32] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.n_flagged.size)

    def floor_db(self, i: int) -> NDArray[np.float32]:
        """Noise floor of frame ``i`` in dB, shape (m,), float32."""
        if self.floor_lin.shape[0] == 1:
            if self._floor_db is None:
                self._floor_db = (10 * np.log10(np.maximum(self.floor_lin[0], 1e-30))).astype(np.float32)
            return self._floor_db
        return (10 * np.log10(np.maximum(self.floor_lin[i], 1e-30))).astype(np.float32)

    def frame(self, i: int) -> FrameResult:
        """Frame ``i`` (negative counts from the end) as a :class:`FrameResult`; its ``floor_db`` is
        given for frames with flagged bins and for the last frame of the stack."""
        n = len(self)
        i = i + n if i < 0 else i
        return FrameResult(
            emissions=self.emissions.get(i, []),
            floor_db=self.floor_db(i) if (self.n_flagged[i] or i == n - 1) else None,
            noise_floor_dbfs=float(self.noise_floor_dbfs[i]), gain_offset_db=float(self.gain_offset_db[i]),
            n_flagged_bins=int(self.n_flagged[i]),
            rejected={"dc": int(self.rejected_dc[i]), "edge": int(self.rejected_edge[i]),
                      "image": int(self.rejected_image[i]), "baseline": int(self.rejected_baseline[i])},
            n_tested_bins=self.n_tested_bins)


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
                       power_lin=p_lin)


def _working_columns(colmax, low_row, valid, seed_cols, merge_gap: int):
    """The columns emission extraction needs to look at: ``(cmap, pad)``, ``cmap`` (w,) the real
    column of each working column, ``pad`` (w,) the invalid padding column after each interval
    (None: every column, in order). Without a max-hold or a shared low threshold, every column.

    The intervals are the runs of ``colmax > low_row`` (valid bins, seeds included) that hold a
    seed, merged when at most ``merge_gap`` bins apart."""
    m = valid.size
    if colmax is None or low_row is None:
        return np.arange(m), None
    lowc = (colmax > low_row) & valid
    lowc[seed_cols] = True
    d = np.flatnonzero(np.diff(np.concatenate(([False], lowc, [False])).view(np.int8)))
    rs, re_ = d[0::2], d[1::2]  # runs [rs, re_)
    keep = np.unique(np.searchsorted(re_, seed_cols, side="right"))
    rs, re_ = rs[keep], re_[keep]
    join = rs[1:] - re_[:-1] <= merge_gap
    starts, ends = rs[np.concatenate(([True], ~join))], re_[np.concatenate((~join, [True]))]
    lens = ends - starts + 1  # with the padding column
    offsets = np.repeat(np.cumsum(lens) - lens, lens)
    local = np.arange(int(lens.sum())) - offsets
    pad = local == np.repeat(lens - 1, lens)
    cmap = np.minimum(np.repeat(starts, lens) + local, m - 1)
    return cmap, pad


def _to_working(cmap, pad, cols, m: int):
    """Real columns ``cols`` → their working columns (see :func:`_working_columns`)."""
    if pad is None:
        return cols
    pos_of = np.full(m, -1, dtype=np.int64)
    pos_of[cmap[~pad]] = np.flatnonzero(~pad)
    return pos_of[cols]


def _extract_stack(freqs_hz, p_db_all, p_lin, floor, flagged, valid, rows, gain_offset, high, covered, occ_base,
                   low_thr, bin_hz, center_hz, config, image_rej, cand=None, colmax=None) -> dict[int, list[Emission]]:
    """Emissions of the frames ``rows`` of a stack, all at once (no per-frame or per-bin Python loop).

    Per frame: hysteresis (an emission extends over the contiguous bins above a low threshold,
    Pfa 5 %, around its flagged seeds, so its occupied bandwidth is not only its strongest bins);
    runs of such bins separated by at most ``merge_gap_bins`` valid bins are one emission; per
    emission the power-weighted center, the strongest bin, the 99 % occupied bandwidth (ITU-R
    SM.328) and the total power; an emission whose peak is ``image_margin_db`` below the frame's
    power at the mirrored frequency (±1 bin) is an IQ image (the mirror is looked up in the frame,
    not among the emissions: the strong signal may be a known station the baseline keeps out).

    The frames are laid out row after row with one invalid padding bin between rows. The runs
    that hold a flagged bin (a seed; ``cand``, when given, lists the only columns that can hold
    one) are located from the seeds by a search among the mask's transitions, so the cost does
    not grow with the many short runs of noise above the low threshold; gaps and groups then use
    ``reduceat`` over the flat layout. Returns ``{frame index: [Emission, ...]}``; counts the rejected images per frame in ``image_rej`` (n,).
    """
    m = freqs_hz.size
    P = p_lin if rows.size == p_lin.shape[0] else p_lin[rows]
    shared = floor.shape[0] != p_lin.shape[0] or floor.strides[0] == 0
    FL = floor[:1] if shared else floor[rows]  # (1, m) for a stack's shared floor: broadcast, not copied
    # the flagged bins (seeds), found among the columns ``cand`` that can hold one (all without)
    cols = np.arange(m) if cand is None else cand
    r_f, j_f = np.nonzero(flagged[:, cols][rows] if cand is not None else flagged[rows])
    c_f = cols[j_f]
    if c_f.size == 0:
        return {}
    # the working columns ``cmap``: with the stack's max-hold (``colmax``) and a shared floor, only
    # the runs of the max-hold above the low threshold that hold a seed (merged when they are
    # ``merge_gap_bins`` apart), each followed by an invalid padding column. A frame's run around
    # a seed lies inside the max-hold's run around it (a bin above the threshold in a frame is
    # above it in the max-hold), so the runs, gaps and groups are those of the whole width.
    cmap, pad = _working_columns(colmax, FL[0] * low_thr if shared and colmax is not None else None, valid, c_f,
                                 config.merge_gap_bins)
    mw = cmap.size
    width = mw + 1
    c_w = _to_working(cmap, pad, c_f, m)
    fpos = r_f * width + c_w  # seeds on the padded working layout, ascending
    low = np.zeros((rows.size, width), dtype=bool)
    lv = low[:, :mw]
    Pw = P if pad is None else P[:, cmap]
    FLw = FL if pad is None else FL[:, cmap]
    np.greater(Pw, FLw * low_thr, out=lv)
    lv[r_f, c_w] = True
    valid_w = valid if pad is None else valid[cmap] & ~pad
    np.logical_and(lv, valid_w, out=lv)
    flat = low.ravel()
    # the runs of low bins that hold a seed, from the transitions: the run around seed p ends at
    # the first transition at or after p and starts after the one before it (the padding bin ends
    # every row, so every run ends with a transition)
    t = np.flatnonzero(flat[1:] != flat[:-1])
    k = np.unique(np.searchsorted(t, fpos))
    ends = t[k]
    starts = np.where(k > 0, t[np.maximum(k - 1, 0)] + 1, 0)
    # runs separated by at most merge_gap_bins valid bins (the padding bin is invalid) are one emission
    inv = np.ones(width, dtype=bool)
    inv[:mw] = ~valid_w
    cinv = np.concatenate(([0], np.cumsum(inv)))  # one row: runs of different rows never join
    gap = starts[1:] - ends[:-1] - 1
    same_row = starts[1:] // width == ends[:-1] // width
    join = same_row & (gap <= config.merge_gap_bins) & (cinv[starts[1:] % width] - cinv[ends[:-1] % width + 1] == 0)
    first_run = np.concatenate(([True], ~join))
    gstart = starts[first_run]
    gend = ends[np.concatenate((~join, [True]))]
    # the emission bins: the low bins inside each group's span, in order
    lens = gend - gstart + 1
    cl = np.cumsum(lens)
    span = np.arange(int(cl[-1])) + np.repeat(gstart - (cl - lens), lens)
    inside = flat[span]
    pos = span[inside]
    gi = np.repeat(np.arange(gstart.size), lens)[inside]
    gfirst = np.searchsorted(pos, gstart)
    sizes = np.diff(np.concatenate((gfirst, [pos.size])))
    r_loc, col = np.divmod(pos, width)
    col = cmap[col]  # working → real columns
    pl = P[r_loc, col].astype(np.float64)
    fl = FL[0 if shared else r_loc, col].astype(np.float64)
    if p_db_all is not None:
        pdb = p_db_all[rows[r_loc], col].astype(np.float64)
    else:
        pdb = 10 * np.log10(np.maximum(pl, 1e-30))
    f = freqs_hz[col]
    w = np.maximum(pl - fl, 0.0)
    W = np.add.reduceat(w, gfirst)
    WF = np.add.reduceat(w * f, gfirst)
    power = np.add.reduceat(pl, gfirst)
    peak = np.maximum.reduceat(pdb, gfirst)
    k = np.minimum.reduceat(np.where(pdb == peak[gi], np.arange(pos.size), pos.size), gfirst)
    # 99 % occupied bandwidth over the group's bins in frequency order (global cumulative sums)
    gcs = np.cumsum(w)
    base = np.where(gfirst > 0, gcs[np.maximum(gfirst - 1, 0)], 0.0)
    half = (1 - 0.99) / 2
    lo_i = np.searchsorted(gcs, base + half * W, side="left") - gfirst
    hi_i = np.searchsorted(gcs, base + (1 - half) * W, side="left") - gfirst
    obw = np.where(W <= 0, sizes, np.where(sizes == 1, 1, np.minimum(hi_i, sizes - 1) - lo_i + 1)) * bin_hz
    k_col, k_row = col[k], rows[r_loc[k]]
    floor_db_k = (10 * np.log10(np.maximum(fl[k], 1e-30))).astype(np.float32)
    snr = pdb[k] - floor_db_k
    center = np.where(W > 0, WF / np.where(W > 0, W, 1.0), f[k])
    excess = None
    if high is not None:
        excess = np.where(covered[k_col], pdb[k] - gain_offset[k_row] - high[k_col], np.nan)
    image = np.zeros(gstart.size, dtype=bool)
    if center_hz is not None:
        j = np.rint((2 * center_hz - f[k] - freqs_hz[0]) / bin_hz).astype(np.int64)
        inband = (j >= 0) & (j < m)
        if inband.any():
            cols3 = np.clip(j[:, None] + np.array([-1, 0, 1]), 0, m - 1)
            if p_db_all is not None:
                mirror_db = p_db_all[k_row[:, None], cols3].astype(np.float64).max(axis=1)
            else:
                mirror_db = 10 * np.log10(np.maximum(p_lin[k_row[:, None], cols3].astype(np.float64), 1e-30)).max(axis=1)
            image = inband & (mirror_db - peak >= config.image_margin_db)
    g_row = rows[gstart // width]
    g_lo_col, g_hi_col = cmap[gstart % width], cmap[gend % width]
    out: dict[int, list[Emission]] = {}
    for g in range(gstart.size):
        i = int(g_row[g])
        if image[g]:
            image_rej[i] += 1
            continue
        has_base = excess is not None and not np.isnan(excess[g])
        kc = int(k_col[g])
        out.setdefault(i, []).append(Emission(
            center_hz=float(center[g]),
            bandwidth_hz=float(obw[g]),
            f_lo_hz=float(freqs_hz[g_lo_col[g]] - bin_hz / 2),
            f_hi_hz=float(freqs_hz[g_hi_col[g]] + bin_hz / 2),
            peak_hz=float(freqs_hz[kc]),
            peak_dbfs=float(peak[g]),
            snr_db=float(snr[g]),
            excess_db=float(excess[g]) if has_base else None,
            power_dbfs=float(10 * np.log10(power[g])),
            bins=col[gfirst[g]:gfirst[g] + sizes[g]],
            baseline_occupancy=float(occ_base[kc]) if has_base else None,
        ))
    return out
