"""One frame: noise floor (order-statistic CFAR), per-bin tests against floor and baseline,
bins grouped into emissions, artefacts (DC spike, IQ image, band edges, gain steps) rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage
from numpy.typing import NDArray

from detector.detection._thresholds import noise_quantile_ratio, threshold_ratio

__all__ = ["Emission", "FrameResult", "DetectionConfig", "os_cfar_floor", "detect_frame"]


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
    floor_db: NDArray[np.float32]
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
    """Find the emissions of one frame.

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
        ``covered`` on this frame's grid. Where it covers a bin, the bin must also exceed the
        baseline's high quantile by the look-derived margin; elsewhere CFAR alone decides.

    Returns
    -------
    FrameResult
    """
    m = freqs_hz.size
    bin_hz = float(freqs_hz[1] - freqs_hz[0]) if m > 1 else 1.0
    p_db = np.asarray(power_dbfs, dtype=np.float64)
    p_lin = 10.0 ** (p_db / 10.0)
    floor = os_cfar_floor(p_lin, looks, window_bins=config.cfar_window_bins, quantile=config.cfar_quantile)
    thr = threshold_ratio(looks, config.pfa_bin)
    flagged = p_lin > floor * thr
    rejected = {"dc": 0, "edge": 0, "image": 0, "baseline": 0}

    # DC spike and band edges
    valid = np.ones(m, dtype=bool)
    if center_hz is not None:
        dc = np.abs(freqs_hz - center_hz) <= max(config.dc_half_width_hz, 1.5 * bin_hz)
        rejected["dc"] = int((flagged & dc).sum())
        valid &= ~dc
        n_edge = int(round(config.edge_crop * m))
        if n_edge:
            edge = np.zeros(m, dtype=bool)
            edge[:n_edge] = edge[m - n_edge:] = True
            rejected["edge"] = int((flagged & edge & valid).sum())
            valid &= ~edge
    flagged &= valid

    # Baseline: compensate a gain step, then require excess over the high quantile.
    gain_offset = 0.0
    excess = None
    if baseline is not None:
        covered = np.asarray(baseline.covered, dtype=bool) & valid
        if covered.sum() >= 8:
            med = np.asarray(baseline.median_db, dtype=np.float64)
            diff = p_db[covered] - med[covered]
            gain_offset = float(np.median(diff))
            if abs(gain_offset) < config.gain_step_db:
                gain_offset = 0.0
        high = np.asarray(getattr(baseline, f"{config.baseline_quantile}_db"), dtype=np.float64)
        med = np.asarray(baseline.median_db, dtype=np.float64)
        if config.baseline_tolerance_bins:
            # a strong emission that drifts by a fraction of a bin (ppm drift between survey and
            # exam) moves its steep skirts by several dB: compare with the neighbours' levels too
            size = 2 * config.baseline_tolerance_bins + 1
            high = np.where(np.isnan(high), np.nan, scipy.ndimage.maximum_filter1d(np.nan_to_num(high, nan=-np.inf), size))
            med = np.where(np.isnan(med), np.nan, scipy.ndimage.maximum_filter1d(np.nan_to_num(med, nan=-np.inf), size))
        excess = np.where(covered, p_db - gain_offset - high, np.nan)
        occ_base = np.asarray(baseline.occupancy, dtype=np.float64)
        if config.baseline_tolerance_bins:
            occ_base = scipy.ndimage.maximum_filter1d(np.nan_to_num(occ_base, nan=0.0), 2 * config.baseline_tolerance_bins + 1)
        # the same Pfa expressed over the baseline: from its median to the p-quantile of L looks
        margin = 10 * np.log10(thr / noise_quantile_ratio(looks, 0.5)) + config.baseline_margin_db
        above_base = (p_db - gain_offset) > np.maximum(high + config.baseline_margin_db, med + margin)
        keep = np.where(covered, above_base, True)
        rejected["baseline"] = int((flagged & ~keep).sum())
        flagged &= keep

    n_flagged = int(flagged.sum())
    # Hysteresis: an emission extends over the contiguous bins above a low threshold (Pfa 5 %)
    # around its flagged seeds, so its occupied bandwidth is not only its strongest bins.
    if n_flagged:
        low = (p_lin > floor * threshold_ratio(looks, 0.05)) & valid
        lab, _ = scipy.ndimage.label(low | flagged)
        seeds = np.unique(lab[flagged])
        flagged = np.isin(lab, seeds[seeds > 0]) & valid
    if config.merge_gap_bins and n_flagged:
        closed = scipy.ndimage.binary_closing(flagged, structure=np.ones(2 * config.merge_gap_bins + 1, bool))
        grouped = (closed | flagged) & valid
    else:
        grouped = flagged
    floor_db = (10 * np.log10(np.maximum(floor, 1e-30))).astype(np.float32)
    emissions: list[Emission] = []
    for lo, hi in _runs(grouped):
        idx = np.arange(lo, hi + 1)
        idx = idx[flagged[idx]]
        if idx.size == 0:
            continue
        k = int(idx[np.argmax(p_db[idx])])
        w = p_lin[idx] - floor[idx]
        w = np.where(w > 0, w, 0.0)
        center = float(np.sum(freqs_hz[idx] * w) / np.sum(w)) if w.sum() > 0 else float(freqs_hz[k])
        emissions.append(
            Emission(
                center_hz=center,
                bandwidth_hz=_occupied_bandwidth(p_lin[idx] - floor[idx], bin_hz),
                f_lo_hz=float(freqs_hz[lo] - bin_hz / 2),
                f_hi_hz=float(freqs_hz[hi] + bin_hz / 2),
                peak_hz=float(freqs_hz[k]),
                peak_dbfs=float(p_db[k]),
                snr_db=float(p_db[k] - floor_db[k]),
                excess_db=None if excess is None or np.isnan(excess[k]) else float(excess[k]),
                power_dbfs=float(10 * np.log10(np.sum(p_lin[idx]))),
                bins=idx,
                baseline_occupancy=None if excess is None or np.isnan(excess[k]) else float(np.nan_to_num(occ_base[k])),
            )
        )
    # IQ image: a peak mirrored about the tuned center of a much stronger signal. The mirror is
    # looked up in the frame itself (±1 bin), not among the emissions: the strong signal may be a
    # known station that the baseline keeps out of the emission list.
    if center_hz is not None and emissions:
        keep_list = []
        for e in emissions:
            mirror = 2 * center_hz - e.peak_hz
            j = int(round((mirror - freqs_hz[0]) / bin_hz))
            if 0 <= j < m:
                lo_j, hi_j = max(0, j - 1), min(m, j + 2)
                if float(np.max(p_db[lo_j:hi_j])) - e.peak_dbfs >= config.image_margin_db:
                    rejected["image"] += 1
                    continue
            keep_list.append(e)
        emissions = keep_list
    return FrameResult(
        emissions=emissions,
        floor_db=floor_db,
        noise_floor_dbfs=float(np.median(floor_db[valid])) if valid.any() else float("nan"),
        gain_offset_db=gain_offset,
        n_flagged_bins=n_flagged,
        rejected=rejected,
        n_tested_bins=int(valid.sum()),
    )
