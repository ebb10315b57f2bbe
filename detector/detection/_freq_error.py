"""The receiver's frequency error, estimated from the stations the site already knows.

A dongle whose crystal is ε ppm off shows every signal of a band about ε·f_center away from where
it is (the LO error shifts the whole captured band; over 2.4 MHz the shift is the same to within
0.3 %). The survey's baseline knows where its strong steady stations were; the whitelist knows the
licensed channels. While monitoring, their *common* shift is the receiver's frequency error, and
a known station seen off its channel by that shift is that station, not a new emitter (nor a
"missing" one).

:class:`FrequencyErrorEstimator` keeps the estimate. Per stack of frames it takes the stack's mean
spectrum (on the grid already corrected by the current estimate) and measures the remaining shift:

* with a baseline that holds strong steady stations (occupancy ≥ ``steady_occupancy`` and a median
  ≥ ``strong_db`` over the band's median): the lag of the cross-correlation of the live and the
  survey spectra (levels above their band median, clipped to [0, 30] dB, so that the lines and not
  the noise decide; computed directly over the few steady survey bins, lag by lag), searched within
  ± ``tolerance_ppm`` and refined to a fraction of a bin by a
  parabola through the peak (the usual sub-sample peak interpolation of cross-correlation delay
  estimation, e.g. Jacovitt & Scarano, IEEE Trans. Signal Processing 41(2), 1993);
* else with whitelisted narrow channels in the band: the offset of the strongest bin within the
  tolerance of each channel that stands ``strong_db`` over the band's median, the median over the
  channels.

Against the baseline the estimate is the error *relative to the survey* (the same dongle's drift
since, or the difference between two dongles); against the whitelist it is absolute (channel
centers are true frequencies). A lone whitelisted channel gives no estimate: its modulation or a
neighbour cannot be told from a receiver error. The receiver's DC spike is never a station (it
stays at the tuned center whatever the error).

Two offsets are kept, because they mean different things:

* ``baseline``: live − survey. The baseline is aligned to the live grid shifted by it, so that the
  survey's stations meet themselves (no new track, no "missing" event); reported frequencies do
  not move for it (the survey's own receiver may have been off too).
* ``whitelist``: live − true. Reported frequencies (events, alerts, spectra) are lowered by it;
  a calibration profile or ``--ppm-reference`` applied before already removed what it knows.

The correlation must reach ``min_correlation`` (normalised) for an estimate to count. An offset
moves only when ``confirm`` consecutive estimates agree within a bin on a change of more than
``step_bins`` bins (the first estimate is applied at once), so that it neither follows noise nor
re-aligns the baseline every block.

Pure: arrays in, numbers out; no clock and no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["FrequencyErrorConfig", "FrequencyErrorEstimator", "OffsetTracker"]


@dataclass(frozen=True)
class FrequencyErrorConfig:
    """Settings of :class:`FrequencyErrorEstimator` (see the module docstring)."""

    #: largest frequency error searched (± ppm of the tuned center): an RTL-SDR without TCXO is within it
    tolerance_ppm: float = 100.0
    steady_occupancy: float = 0.9
    #: a station is strong when its level is this far over the band's median (dB)
    strong_db: float = 15.0
    min_correlation: float = 0.5
    #: the applied correction changes when the estimate moves by more than this many bins
    step_bins: float = 0.25
    confirm: int = 2
    #: a warning suggests calibration from this error on (ppm)
    advise_ppm: float = 2.0


class OffsetTracker:
    """One running offset (Hz at ``center_hz``; it scales with the center on a retune) and the
    confirmation rule of the module docstring."""

    def __init__(self, config: FrequencyErrorConfig) -> None:
        self.config = config
        self.offset_hz = 0.0
        self.center_hz: float | None = None
        self.stations = 0
        self.estimates = 0
        self.correlation: float | None = None
        self._pending: list[float] = []

    @property
    def known(self) -> bool:
        return self.estimates > 0

    @property
    def ppm(self) -> float | None:
        return None if not self.known or not self.center_hz else self.offset_hz / self.center_hz * 1e6

    def at(self, center_hz: float) -> float:
        """The offset (Hz) at a tuned center."""
        return 0.0 if not self.center_hz else self.offset_hz * center_hz / self.center_hz

    def update(self, residual_hz: float, *, center_hz: float, bin_hz: float, stations: int,
               correlation: float | None = None) -> bool:
        """Take one measured residual (Hz, after the current offset); True when the offset changed."""
        first = not self.known
        self.estimates += 1
        self.stations, self.correlation = stations, correlation
        if self.center_hz is not None and self.center_hz != center_hz:
            self.offset_hz *= center_hz / self.center_hz  # retuned: the error in ppm carries over
        self.center_hz = center_hz
        cfg = self.config
        if abs(residual_hz) <= cfg.step_bins * bin_hz:
            self._pending.clear()
            return False
        if first:
            self.offset_hz += residual_hz  # acquisition: the first estimate is applied at once
            return True
        self._pending.append(residual_hz)
        if len(self._pending) < cfg.confirm:
            return False
        recent = self._pending[-cfg.confirm:]
        if max(recent) - min(recent) > bin_hz:
            self._pending = self._pending[-1:]
            return False
        self.offset_hz += float(np.median(recent))
        self._pending.clear()
        return True


class FrequencyErrorEstimator:
    """The receiver's frequency error against the survey (``baseline``) and against the licensed
    channels (``whitelist``), each an :class:`OffsetTracker` (see the module docstring)."""

    def __init__(self, config: FrequencyErrorConfig = FrequencyErrorConfig()) -> None:
        self.config = config
        self.baseline = OffsetTracker(config)
        self.whitelist = OffsetTracker(config)
        self._ref_key: tuple | None = None  # what _reference was made from (the arrays themselves)
        self._ref: tuple | None = None

    @property
    def source(self) -> str | None:
        """Which reference the reported error comes from (the whitelist's is absolute)."""
        return "whitelist" if self.whitelist.known else "baseline" if self.baseline.known else None

    @property
    def ppm(self) -> float | None:
        """The error in ppm of the tuned center: against the whitelist when known, else the survey."""
        return self.whitelist.ppm if self.whitelist.known else self.baseline.ppm

    def report_offset_hz(self, center_hz: float) -> float:
        """What reported frequencies are lowered by (live − true, from the whitelist)."""
        return self.whitelist.at(center_hz)

    def baseline_shift_hz(self, center_hz: float) -> float:
        """Where, on the reported grid, the survey's frequencies lie: ``f_survey = f_reported + shift``."""
        return self.whitelist.at(center_hz) - self.baseline.at(center_hz)

    def status(self) -> dict:
        """For ``/health`` (``calibration.frequency_error``): ``ppm_estimated`` and where it comes from,
        and both offsets."""
        ppm = self.ppm
        t = self.whitelist if self.whitelist.known else self.baseline
        return {"ppm_estimated": None if ppm is None else round(ppm, 2), "source": self.source, "stations": t.stations,
                "offset_hz": round(t.offset_hz, 1), "estimates": self.baseline.estimates + self.whitelist.estimates,
                "correlation": None if t.correlation is None else round(t.correlation, 3),
                "ppm_vs_survey": None if self.baseline.ppm is None else round(self.baseline.ppm, 2),
                "ppm_vs_whitelist": None if self.whitelist.ppm is None else round(self.whitelist.ppm, 2)}

    # --- measuring -----------------------------------------------------------------------------
    def _max_lag(self, center_hz: float, bin_hz: float, m: int) -> int:
        return int(min(m // 4, np.ceil(self.config.tolerance_ppm * 1e-6 * abs(center_hz) / bin_hz)))

    def residual_from_baseline(self, power_db: NDArray, median_db: NDArray, occupancy: NDArray, covered: NDArray, *,
                               center_hz: float, bin_hz: float, exclude: NDArray | None = None) -> tuple[float, int, float] | None:
        """The shift (Hz) of the live spectrum against the survey's, the number of strong steady
        survey stations it rests on, and the normalised correlation; None when the survey holds no
        strong steady station here or the spectra do not correlate.

        ``power_db`` (m,) is the live stack's mean level per bin; ``median_db``, ``occupancy`` and
        ``covered`` (m,) the baseline on the same grid; ``exclude`` (m,) marks bins that are no
        station (the receiver's DC spike, which stays at the tuned center whatever the error)."""
        cfg = self.config
        live = np.asarray(power_db, np.float64)
        lag_max = self._max_lag(center_hz, bin_hz, live.size)
        ref = self._reference(median_db, occupancy, covered, exclude, lag_max)
        if ref is None:
            return None
        cov, idx, ref_vals, near, lag_j, lag_ok, n_stations = ref
        good = np.isfinite(live)  # a sweep's missing (NaN) bins are no line
        if good.sum() < 16:
            return None
        live_lines = np.clip(np.where(good, live - float(np.median(live[good])), 0.0), 0.0, 30.0)
        # the live lines that can match: within the search range of a steady survey line (other
        # emissions, a newcomer or a wideband link, neither help nor dilute the correlation)
        live_lines[~near] = 0.0
        # the cross-correlation at lags -lag_max … lag_max, over the few steady survey bins only:
        # win[k] = Σ_i live[i + k − lag_max] · ref[i]
        win = np.where(lag_ok, live_lines[lag_j], 0.0) @ ref_vals
        k = int(np.argmax(win))
        norm = float(np.sqrt(np.dot(ref_vals, ref_vals) * np.dot(live_lines, live_lines)))
        corr = float(win[k]) / norm if norm > 0 else 0.0
        if corr < cfg.min_correlation:
            return None
        frac = 0.0
        if 0 < k < win.size - 1:
            y0, y1, y2 = float(win[k - 1]), float(win[k]), float(win[k + 1])
            den = y0 - 2 * y1 + y2
            frac = 0.5 * (y0 - y2) / den if den != 0 else 0.0
        return (k - lag_max + frac) * bin_hz, n_stations, corr

    def _reference(self, median_db, occupancy, covered, exclude, lag_max: int):
        """The survey's side of the correlation, kept while the same baseline arrays, excluded bins
        and search range come back: ``(covered, steady bin indices, their line levels, the mask of
        live bins within reach, lag index table, its validity, number of stations)``, or None."""
        key = self._ref_key
        if (key is not None and key[0] is median_db and key[1] is occupancy and key[2] == lag_max
                and (exclude is None) == (key[3] is None) and (exclude is None or np.array_equal(exclude, key[3]))):
            return self._ref
        cfg = self.config
        cov = np.asarray(covered, bool) & np.isfinite(median_db)
        if exclude is not None:
            cov &= ~np.asarray(exclude, bool)
        ref = None
        if cov.sum() >= 16:
            lvl = np.where(cov, np.asarray(median_db, np.float64), np.nan)
            lines = np.clip(np.nan_to_num(lvl - float(np.nanmedian(lvl)), nan=0.0), 0.0, 30.0)
            steady = cov & (np.nan_to_num(occupancy) >= cfg.steady_occupancy) & (lines >= cfg.strong_db)
            if steady.any():
                m = cov.size
                idx = np.flatnonzero(steady)
                lag_j = idx[None, :] + np.arange(-lag_max, lag_max + 1)[:, None]
                lag_ok = (lag_j >= 0) & (lag_j < m)
                lag_j = np.clip(lag_j, 0, m - 1)
                near = np.zeros(m, dtype=bool)
                near[lag_j[lag_ok]] = True
                n_stations = int(np.count_nonzero(np.diff(np.concatenate(([0], steady.view(np.int8), [0]))) == 1))
                ref = (cov, idx, lines[idx], near & cov, lag_j, lag_ok, n_stations)
        self._ref_key = (median_db, occupancy, lag_max, None if exclude is None else np.array(exclude, bool))
        self._ref = ref
        return ref

    def residual_from_channels(self, freqs_hz: NDArray, power_db: NDArray, channels_hz: list[float], *,
                               center_hz: float) -> tuple[float, int] | None:
        """The median offset (Hz) of the strongest bin near each whitelisted channel center that
        stands ``strong_db`` over the band's median, and how many channels gave one; None unless
        at least two channels agree within two bins (a lone channel cannot tell a receiver error
        from its own modulation or a neighbour)."""
        cfg = self.config
        f = np.asarray(freqs_hz, np.float64)
        p = np.asarray(power_db, np.float64)
        good = np.isfinite(p)
        if good.sum() < 16:
            return None
        p = np.where(good, p, -np.inf)  # a sweep's missing (NaN) bins are never a channel's peak
        tol = cfg.tolerance_ppm * 1e-6 * abs(center_hz)
        floor = float(np.median(p[good]))
        offs = []
        for c in channels_hz:
            sel = np.flatnonzero(np.abs(f - c) <= tol)
            if sel.size < 3 or c - tol < f[0] or c + tol > f[-1]:
                continue
            i = sel[int(np.argmax(p[sel]))]
            if p[i] - floor < cfg.strong_db:
                continue
            offs.append(float(f[i] - c))
        if len(offs) < 2:
            return None
        bin_hz = float(f[1] - f[0])
        med = float(np.median(offs))
        agree = [o for o in offs if abs(o - med) <= 2 * bin_hz]
        if len(agree) < 2:
            return None
        return float(np.median(agree)), len(agree)

    # --- one measurement -----------------------------------------------------------------------
    def measure(self, freqs_hz: NDArray, power_db: NDArray, *, center_hz: float, channels_hz: list[float],
                aligned_for, dc_half_width_hz: float) -> bool:
        """Measure both errors on one stack's mean spectrum and update them; True when a correction
        changed.

        ``freqs_hz`` (m,) is the grid as received, ``power_db`` (m,) the stack's mean level;
        ``channels_hz`` the centers of the whitelisted narrow channels; ``aligned_for(grid)`` gives
        the baseline on a reported grid, already shifted by the current error against the survey
        (None: no baseline); the receiver's DC spike (``dc_half_width_hz`` about ``center_hz``) is
        never a station."""
        bin_hz = float(freqs_hz[1] - freqs_hz[0])
        f = freqs_hz - self.report_offset_hz(center_hz) if self.whitelist.known else freqs_hz
        changed = False
        if channels_hz:
            r = self.residual_from_channels(f, power_db, channels_hz, center_hz=center_hz)
            if r is not None and self.whitelist.update(r[0], center_hz=center_hz, bin_hz=bin_hz, stations=r[1]):
                changed = True
                f = freqs_hz - self.report_offset_hz(center_hz)
        aligned = aligned_for(f) if aligned_for is not None else None
        if aligned is not None:
            dc = np.abs(freqs_hz - center_hz) <= dc_half_width_hz + 2 * bin_hz
            r2 = self.residual_from_baseline(power_db, aligned.median_db, aligned.occupancy, aligned.covered,
                                             center_hz=center_hz, bin_hz=bin_hz, exclude=dc)
            if r2 is not None and self.baseline.update(r2[0], center_hz=center_hz, bin_hz=bin_hz, stations=r2[1],
                                                       correlation=r2[2]):
                changed = True
        return changed
