"""Jamming against a gain step: :class:`JammingMonitor`, the engine's ``jamming`` check (issue #18 item 4).

``detect_stack`` measures a level step common to the baseline-covered bins (the median of power
over survey median) and compensates it as a gain change. A jammer that lifts the noise floor over
the band lifts that median too, so on its own the step cannot tell the two apart: a jammer is
absorbed as a gain step. What does tell them apart is the surveyed strong steady stations: a gain
change lifts them with the floor, a jammer does not (a carrier well over the floor keeps its level).

Per stack (at most every ``JammingConfig.interval_s`` of stream time), on the raw power (the gain
compensation of ``detect_stack`` is never applied to it, so nothing needs undoing):

* **floor rise** ``R``: the band (less its edges and the DC spike) is cut into ``segments`` equal
  parts; in each, the median over the bins the survey found quiet (occupancy < 0.1) of the stack's
  mean power over the survey median, in dB. Segments that rose by ≥ ``rise_db`` are jammed; ``R``
  is their median rise.
* **carrier change** ``C``: the median over the strong stations (occupancy ≥ the engine's
  ``missing_occupancy``, outside the DC spike, their survey level ≥ ``station_over_floor_db`` over
  the survey's floor, so that the floor's own rise hardly moves them) of the live level (the
  highest bin within one bin of the station) minus the survey level.

Jamming: ≥ ``band_share`` of the segments jammed and ``C ≤ R − margin_db``. A gain step has
``C ≈ R`` and stays silent (it is the engine's ``gain_offset_db``). The condition must hold for
``after_s`` of stream time; it then gives one :class:`~detector.detection.events.JammingEvent`
per episode (the episode ends once the condition has been clear for ``after_s``).

Without a strong station there is no reference: no verdict (``status()["reference"]`` is False).

The bands of ``JammingConfig.exclude_hz`` (the site's declared exam-room jammers,
:mod:`detector.detection._declared_jammers`, which have their own rule) are left out of the
floor rise: a declared jammer never gives a ``jamming`` event, a jammer beside it still does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detector.detection.events import JAMMING_PREFIX, JammingEvent

__all__ = ["JammingConfig", "JammingMonitor"]


@dataclass(frozen=True)
class JammingConfig:
    """Knobs of the ``jamming`` check (see the module docstring)."""

    rise_db: float = 6.0
    band_share: float = 0.5
    margin_db: float = 4.0
    after_s: float = 5.0
    station_over_floor_db: float = 15.0
    station_occupancy: float = 0.9
    quiet_occupancy: float = 0.1
    segments: int = 32
    min_bins_per_segment: int = 8
    interval_s: float = 2.0
    dc_half_width_hz: float = 2000.0
    edge_crop: float = 0.02
    #: (lo, hi) Hz bands left out of the floor rise (declared jammers)
    exclude_hz: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class _Reference:
    """What the check needs of one aligned baseline on one grid."""

    quiet: NDArray[np.intp]  # bin indices the survey found quiet
    seg: NDArray[np.intp]  # segment (0 … k-1) of each quiet bin
    seg_lo_hz: NDArray[np.float64]  # each segment's frequency span
    seg_hi_hz: NDArray[np.float64]
    med_lin: NDArray[np.float64]  # survey median (linear) of the quiet bins
    floor_db: float  # survey floor: median of the quiet bins' survey medians
    stations: tuple[tuple[int, int, float], ...]  # (lo, hi) bins inclusive, survey level dB
    #: the runs of ``seg`` (nondecreasing): counts per segment, run starts, segments that have
    #: bins, and the lower and upper middle index of each such run
    runs: tuple[NDArray[np.intp], ...] = ()


@dataclass
class _State:
    since: float | None = None  # condition true since (stream s)
    clear_since: float | None = None  # condition false since, during an episode
    reported: bool = False
    next_s: float = -np.inf


def _reference(cfg: JammingConfig, freqs_hz: NDArray, aligned, center_hz: float | None) -> _Reference:
    m = freqs_hz.size
    bin_hz = abs(float(freqs_hz[1] - freqs_hz[0])) if m > 1 else 1.0
    med = np.asarray(aligned.median_db, dtype=np.float64)
    occ = np.nan_to_num(np.asarray(aligned.occupancy, dtype=np.float64), nan=0.0)
    covered = np.asarray(aligned.covered, dtype=bool) & np.isfinite(med)
    crop = int(round(cfg.edge_crop * m))
    valid = np.zeros(m, dtype=bool)
    valid[crop:m - crop] = True
    if center_hz is not None:
        valid &= np.abs(freqs_hz - center_hz) > cfg.dc_half_width_hz + bin_hz
    quiet_mask = covered & valid & (occ < cfg.quiet_occupancy)
    for ex_lo, ex_hi in cfg.exclude_hz:
        quiet_mask &= ~((freqs_hz >= ex_lo) & (freqs_hz <= ex_hi))
    quiet = np.flatnonzero(quiet_mask)
    lo_i, hi_i = crop, max(crop + 1, m - crop)
    edges = np.linspace(lo_i, hi_i, cfg.segments + 1)
    seg = np.clip(np.searchsorted(edges, quiet, side="right") - 1, 0, cfg.segments - 1).astype(np.intp)
    counts = np.bincount(seg, minlength=cfg.segments)
    keep = counts[seg] >= cfg.min_bins_per_segment
    quiet, seg = quiet[keep], seg[keep]
    ei = edges.astype(np.intp)
    seg_lo = freqs_hz[np.clip(ei[:-1], 0, m - 1)].astype(np.float64)
    seg_hi = freqs_hz[np.clip(ei[1:] - 1, 0, m - 1)].astype(np.float64) + bin_hz
    floor_db = float(np.median(med[quiet])) if quiet.size else float("nan")
    strong = covered & (occ >= cfg.station_occupancy) & valid
    d = np.diff(np.concatenate(([0], strong.view(np.int8), [0])))
    stations = []
    for lo, hi in zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()):
        level = float(np.max(med[lo:hi + 1]))
        if np.isfinite(floor_db) and level - floor_db >= cfg.station_over_floor_db:
            stations.append((lo, hi, level))
    counts = np.bincount(seg, minlength=cfg.segments)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = np.flatnonzero(counts)
    runs = (counts, starts, has, starts[has] + (counts[has] - 1) // 2, starts[has] + counts[has] // 2)
    return _Reference(quiet=quiet, seg=seg, seg_lo_hz=seg_lo, seg_hi_hz=seg_hi,
                      med_lin=10.0 ** (med[quiet] / 10.0), floor_db=floor_db, stations=tuple(stations), runs=runs)


def _median(x: NDArray) -> float:
    """The median of a short 1-D array (NaN when empty), without :func:`numpy.median`'s overhead."""
    n = x.size
    if n == 0:
        return float("nan")
    s = np.sort(x)
    h = n // 2
    return float(s[h]) if n % 2 else 0.5 * (float(s[h - 1]) + float(s[h]))


class JammingMonitor:
    """The ``jamming`` check of a :class:`~detector.detection.engine.DetectionEngine` (one per
    engine, so per run): :meth:`check` after each stack gives the ``jamming`` events."""

    def __init__(self, config: JammingConfig | None = None) -> None:
        self.config = config or JammingConfig()
        self._refs: dict = {}  # (id(aligned), center Hz) → _Reference
        self._state: dict = {}  # tuning key (center kHz) → _State
        #: the last measurement: floor rise, carrier change, jammed share, stations, verdict
        self.last: dict | None = None

    def status(self) -> dict:
        """The last measurement (``rise_db``, ``carrier_change_db``, ``band_share``, ``stations``,
        ``reference``, ``jamming``), or ``{"reference": None}`` before the first."""
        return dict(self.last) if self.last is not None else {"reference": None}

    def check(self, freqs_hz: NDArray, aligned, power_lin: NDArray, t_s: float, frame_s: float, *,
              center_hz: float | None = None, mean_lin: NDArray | None = None) -> list[JammingEvent]:
        """The stack ``power_lin`` (linear, (n, m)) at stream time ``t_s`` (its last frame) against
        the survey ``aligned`` on the grid ``freqs_hz``; the ``jamming`` events it gives (0 or 1).
        ``mean_lin`` (m,): the stack's mean over its frames when the caller has it (detection forms
        it for its floor), else it is computed here."""
        cfg = self.config
        if aligned is None or freqs_hz.size < 2 * cfg.segments:
            return []
        key = int(round(float(center_hz if center_hz is not None else freqs_hz[freqs_hz.size // 2]) / 1000.0))
        st = self._state.setdefault(key, _State())
        if t_s < st.next_s:
            return []
        st.next_s = t_s + cfg.interval_s
        rkey = (id(aligned), center_hz, freqs_hz.size, float(freqs_hz[0]))
        ref = self._refs.get(rkey)
        if ref is None:  # per aligned baseline (kept alive by the engine's _aligned, so its id is not reused)
            ref = self._refs[rkey] = _reference(cfg, freqs_hz, aligned, center_hz)
        if ref.quiet.size == 0:
            return []
        if mean_lin is None:
            mean_lin = np.atleast_2d(power_lin).mean(axis=0, dtype=np.float64)  # over the frames first: no copy
        live = mean_lin[ref.quiet] / ref.med_lin
        rise = np.full(cfg.segments, np.nan)
        # the median of each segment at once: the quiet bins are in segment order, so one sort of
        # segment + value/scale (scale > every value: each segment stays in its unit interval)
        # orders the values within their segments; take the middle of each run
        scale = float(live.max()) * 1.000001 + 1e-300 if live.size else 1.0
        srt = (np.sort(ref.seg + live / scale) - ref.seg) * scale
        _, _, has, lo_mid, hi_mid = ref.runs
        rise[has] = 10.0 * np.log10(np.maximum(0.5 * (srt[lo_mid] + srt[hi_mid]), 1e-30))
        have = np.isfinite(rise)
        jammed = have & (rise >= cfg.rise_db)
        share = float(jammed.sum() / max(int(have.sum()), 1))
        r_db = _median(rise[jammed]) if jammed.any() else _median(rise[have])
        c_db = None
        if ref.stations:
            m = mean_lin.shape[0]
            mean_st = []
            for lo, hi, level in ref.stations:
                a, b = max(lo - 1, 0), min(hi + 2, m)
                lv = float(mean_lin[a:b].max())
                mean_st.append(10.0 * math.log10(max(lv, 1e-30)) - level)
            c_db = _median(np.asarray(mean_st))
        verdict = (c_db is not None and share >= cfg.band_share and r_db >= cfg.rise_db
                   and c_db <= r_db - cfg.margin_db)
        self.last = {"rise_db": round(r_db, 2), "carrier_change_db": None if c_db is None else round(c_db, 2),
                     "band_share": round(share, 3), "stations": len(ref.stations), "reference": bool(ref.stations),
                     "jamming": bool(verdict)}
        if not verdict:
            if st.since is not None:
                if not st.reported:
                    st.since = None
                elif st.clear_since is None:
                    st.clear_since = t_s
                elif t_s - st.clear_since >= cfg.after_s:
                    st.since, st.clear_since, st.reported = None, None, False
            return []
        st.clear_since = None
        if st.since is None:
            st.since = t_s
        if st.reported or t_s - st.since < cfg.after_s:
            return []
        st.reported = True
        f_lo = float(ref.seg_lo_hz[jammed].min())
        f_hi = float(ref.seg_hi_hz[jammed].max())
        center = round((f_lo + f_hi) / 2, 1)
        assert c_db is not None
        return [JammingEvent(
            track_id=f"{JAMMING_PREFIX}{int(round(center / 1000.0))}", center_hz=center, bandwidth_hz=round(f_hi - f_lo, 1),
            first_seen_s=round(st.since, 4), last_seen_s=round(t_s + frame_s, 4), rise_db=round(r_db, 2),
            carrier_change_db=round(c_db, 2),
            reasons=(f"noise floor {r_db:+.1f} dB over {share:.0%} of the band for {t_s - st.since:.0f} s while "
                     f"{len(ref.stations)} surveyed station(s) changed by {c_db:+.1f} dB: jamming, not a gain step",),
        )]
