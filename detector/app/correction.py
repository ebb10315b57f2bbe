"""Applying a dongle's calibration profile to its samples (glue between ``calibration`` and the engine).

* Frequency error: a dongle that tunes high by ε ppm shows a signal at true f at f − ε·f_center;
  the block's center is corrected to ``f_center·(1 + ε)`` (no per-sample work). On an RTL-SDR the
  integer part goes to the tuner's ``freq_correction`` instead and only the remainder is applied
  here (``hardware_ppm``).
* DC offset and IQ imbalance: :func:`calibration.correct_iq` on the samples.
* dBFS → dBm: detection stays in dBFS (its thresholds are relative to the noise floor and the
  baseline); with a power table in the profile and a known tuner gain, the engine's published
  spectra (``/spectrum/latest``, the waterfall) are in dBm and events carry ``peak_dbm``
  (:meth:`ProfileCorrection.power_offset_db`).
* Drift: with a reference carrier (:class:`LiveDrift`), the frequency error is re-measured every
  ``interval_s`` during the run, a warm-up/linear/constant model is fitted to the estimates
  (:func:`calibration.track_drift`) and its current value replaces the profile's ppm; the fit
  residual is reported (``status()``).

The profile in force is recorded in the survey's baseline (``calibration_profile``, its id) and a
mismatch at monitoring time is a warning.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from detector.core.types import IQBlock

__all__ = ["LiveDrift", "ProfileCorrection", "load_correction", "profile_warnings"]

log = logging.getLogger(__name__)


class LiveDrift:
    """The frequency error tracked during a run from a carrier of known frequency.

    Every ``interval_s`` of stream time, when the reference lies inside the block's band, the
    first ``window_s`` of the block (after IQ correction, before any digital ppm correction) is
    measured by :func:`calibration.estimate_ppm_carrier`: the estimate is the error *left in the
    samples* (on an RTL-SDR, after the tuner's ``freq_correction``). :func:`calibration.track_drift`
    fits the estimates (``auto`` model: warm-up with ≥ 6 windows); :meth:`ppm_at` is the model's
    value, or the last estimate before two exist.

    The first estimate searches ±``search_ppm`` (100: an RTL-SDR without TCXO is within it) around
    ``prior_ppm`` (0 without a profile; with a profile, whose ppm was measured, ±20 ppm around its
    value); later ones only ±``track_search_ppm`` around the current prediction, so that a faded
    reference cannot be replaced by a neighbouring signal (warm-up drift moves a few ppm in
    minutes, far less between two estimates). After ``reacquire_after`` failed windows in a row
    the wide search is used again. A window without the carrier changes nothing and is counted in
    ``failures``.

    Parameters
    ----------
    reference_hz : float
        True frequency of the reference carrier (Hz).
    interval_s : float
        Stream seconds between estimates (> 0).
    window_s : float
        IQ seconds per estimate (≥ 2 ms).
    clock : {"shared", "lo"}
        Clock model of :mod:`calibration._ppm` (``shared`` on real dongles).
    min_snr_db : float
        Smallest accepted carrier SNR.
    max_windows : int
        Estimates kept for the fit (the oldest are dropped).
    prior_ppm : float, optional
        Expected error before the first estimate (ppm).
    search_ppm, track_search_ppm : float
        Half-widths of the first and of the tracking search windows (ppm).
    reacquire_after : int
        Failed windows in a row before searching wide again.
    """

    def __init__(self, reference_hz: float, *, interval_s: float = 10.0, window_s: float = 0.02, clock: str = "shared",
                 min_snr_db: float = 10.0, max_windows: int = 360, prior_ppm: float | None = None,
                 search_ppm: float = 100.0, track_search_ppm: float = 5.0, reacquire_after: int = 3) -> None:
        if not (reference_hz > 0 and math.isfinite(reference_hz)):
            raise ValueError(f"reference_hz must be > 0, got {reference_hz}")
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        if not window_s >= 2e-3:
            raise ValueError(f"window_s must be ≥ 2 ms, got {window_s}")
        self.reference_hz = float(reference_hz)
        self.interval_s = float(interval_s)
        self.window_s = float(window_s)
        self.clock = clock
        self.min_snr_db = float(min_snr_db)
        self.max_windows = int(max_windows)
        self.prior_ppm = prior_ppm
        self.search_ppm = float(search_ppm)
        self.track_search_ppm = float(track_search_ppm)
        self.reacquire_after = int(reacquire_after)
        self.times_s: list[float] = []
        self.ppm: list[float] = []
        self.uncertainty_ppm: list[float] = []
        self.failures = 0
        self._failed_in_row = 0
        self.last_error: str | None = None
        self.track = None
        self._next_s = -math.inf

    def in_band(self, block: IQBlock) -> bool:
        half = 0.45 * block.sample_rate_hz
        off = abs(self.reference_hz - block.center_hz)
        return 2e-3 * block.sample_rate_hz < off < half

    def observe(self, block: IQBlock) -> bool:
        """Measure ``block`` if an estimate is due and the reference is in its band; True when a
        new estimate was added."""
        if block.offset_s < self._next_s or not self.in_band(block):
            return False
        from calibration import CalibrationError, estimate_ppm_carrier, track_drift

        self._next_s = block.offset_s + self.interval_s
        n = min(block.samples.size, max(1024, int(self.window_s * block.sample_rate_hz)))
        t_mid = block.offset_s + n / (2 * block.sample_rate_hz)
        tracking = bool(self.ppm) and self._failed_in_row < self.reacquire_after
        expected = self.ppm_at(t_mid) if tracking else (self.prior_ppm or 0.0)
        try:
            est = estimate_ppm_carrier(block.samples[:n], sample_rate_hz=block.sample_rate_hz, center_hz=block.center_hz,
                                       reference_hz=self.reference_hz, clock=self.clock, min_snr_db=self.min_snr_db,
                                       search_ppm=self.track_search_ppm if tracking else self.search_ppm,
                                       expected_ppm=expected)
        except CalibrationError as exc:
            self.failures += 1
            self._failed_in_row += 1
            if self.last_error is None:  # once per outage, not every interval
                log.warning("drift tracking: no estimate at %.1f s: %s", block.offset_s, exc)
            self.last_error = str(exc)
            return False
        self.last_error = None
        self._failed_in_row = 0
        self.times_s.append(t_mid)
        self.ppm.append(est.ppm)
        self.uncertainty_ppm.append(est.uncertainty_ppm)
        if len(self.times_s) > self.max_windows:
            del self.times_s[0], self.ppm[0], self.uncertainty_ppm[0]
        if len(self.times_s) >= 2:
            try:
                self.track = track_drift(self.times_s, self.ppm, self.uncertainty_ppm)
            except CalibrationError as exc:  # e.g. equal times after a source restart: keep the old fit
                log.warning("drift tracking: fit failed: %s", exc)
        return True

    def ppm_at(self, t_s: float) -> float | None:
        """The tracked frequency error (ppm) at stream time ``t_s``; None before any estimate.

        The model is not extrapolated backwards before its first window, nor forwards by more than
        one interval past its last one (then the last model value holds)."""
        if not self.ppm:
            return None
        if self.track is None:
            return self.ppm[-1]
        t = min(max(t_s, self.times_s[0]), self.times_s[-1] + self.interval_s)
        return float(self.track.ppm_at(t))

    def status(self) -> dict:
        """JSON-ready state: reference, estimates (the last 20), model and fit residual (ppm)."""
        out = {"reference_hz": self.reference_hz, "interval_s": self.interval_s, "n_windows": len(self.ppm),
               "failures": self.failures, "last_error": self.last_error,
               "last_ppm": round(self.ppm[-1], 4) if self.ppm else None,
               "recent": [{"t_s": round(t, 3), "ppm": round(p, 4), "uncertainty_ppm": round(u, 4)}
                          for t, p, u in zip(self.times_s[-20:], self.ppm[-20:], self.uncertainty_ppm[-20:])]}
        if self.track is not None:
            out.update(self.track.to_json())
        return out


class ProfileCorrection:
    """A callable ``block → corrected block``: a dongle's profile and/or live drift tracking.

    Parameters
    ----------
    profile : CalibrationProfile or None
        ppm, IQ and power calibration of the dongle; None for drift tracking alone.
    hardware_ppm : float
        The part of the profile's ppm already applied by the tuner (``freq_correction``).
    drift : LiveDrift, optional
        Re-measures the frequency error during the run; its value replaces the profile's.
    """

    def __init__(self, profile=None, *, hardware_ppm: float = 0.0, drift: LiveDrift | None = None) -> None:
        self.profile = profile
        self.hardware_ppm = float(hardware_ppm)
        self.ppm = ((profile.ppm.ppm if profile is not None and profile.ppm is not None else 0.0) - hardware_ppm)
        self.imbalance = profile.iq.imbalance() if profile is not None and profile.iq is not None else None
        self.drift = drift
        if drift is not None and drift.prior_ppm is None and profile is not None and profile.ppm is not None:
            drift.prior_ppm = self.ppm  # the first search starts where the profile expects it …
            drift.search_ppm = min(drift.search_ppm, 20.0)  # … and need not be wide
        self.warnings: list[str] = []
        self._offsets: dict = {}

    @property
    def profile_id(self) -> str | None:
        return self.profile.profile_id if self.profile is not None else None

    @property
    def correction_id(self) -> str | None:
        """What a baseline records of the correction in force: the profile id, plus
        ``ppm-ref=<Hz>`` with live drift tracking (None without either)."""
        parts = [self.profile_id] if self.profile_id is not None else []
        if self.drift is not None:
            parts.append(f"ppm-ref={self.drift.reference_hz:.0f}")
        return "+".join(parts) or None

    @property
    def power_table(self):
        return self.profile.power.table if self.profile is not None and self.profile.power is not None else None

    def _warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)
            log.warning("%s", msg)

    def __call__(self, block: IQBlock) -> IQBlock:
        x = block.samples
        if self.imbalance is not None:
            from calibration import correct_iq

            x = correct_iq(x, self.imbalance)
        if self.drift is not None:
            self.drift.observe(replace(block, samples=x))
            now = self.drift.ppm_at(block.offset_s + block.duration_s / 2)
            if now is not None:
                self.ppm = now
        center = block.center_hz * (1.0 + self.ppm * 1e-6) if self.ppm else block.center_hz
        return replace(block, samples=x, center_hz=center)

    def power_offset_db(self, freqs_hz: NDArray[np.float64], gain_db: float | None) -> NDArray[np.float64] | None:
        """``dBm − dBFS`` per frequency (Hz, shape (m,)) at the tuner gain ``gain_db``; None (with
        one warning) when the profile has no power table, the gain is unknown (AGC) or the table
        does not cover this gain or band. Cached per grid and gain."""
        table = self.power_table
        if table is None:
            return None
        f = np.asarray(freqs_hz, dtype=np.float64)
        key = (f.size, float(f[0]), float(f[-1]), gain_db)
        if key in self._offsets:
            return self._offsets[key]
        off = None
        if gain_db is None:
            self._warn("levels stay in dBFS: the tuner gain is unknown (automatic gain), and the power "
                       "calibration needs a fixed gain (rtlsdr:...,gain=G)")
        else:
            from calibration import CalibrationError, power_offset_db

            try:
                off = np.asarray(power_offset_db(table, f, float(gain_db)), dtype=np.float64).reshape(f.shape)
            except CalibrationError as exc:
                self._warn(f"levels stay in dBFS for {f[0] / 1e6:.3f}–{f[-1] / 1e6:.3f} MHz: {exc}")
        if len(self._offsets) > 64:
            self._offsets.clear()
        self._offsets[key] = off
        return off

    def status(self) -> dict:
        """JSON-ready summary for ``/health``: profile, ppm applied, drift, warnings."""
        return {"profile": self.profile_id, "ppm_applied": round(self.ppm + self.hardware_ppm, 4),
                "hardware_ppm": self.hardware_ppm, "power_calibrated": self.power_table is not None,
                "drift": self.drift.status() if self.drift is not None else None, "warnings": list(self.warnings)}


def load_correction(profile_path: Path | None, *, serial: str | None = None, profiles_dir: Path | None = None,
                    hardware_ppm: float = 0.0, drift: LiveDrift | None = None) -> ProfileCorrection | None:
    """The correction of ``--profile PATH`` (checked against ``serial`` when the source knows it), or
    the profile found for ``serial`` in ``profiles_dir``, with ``drift`` tracking when given; None
    when nothing applies."""
    from calibration.profiles import find_profile, load_profile

    prof = None
    if profile_path is not None:
        prof = load_profile(profile_path, serial=serial)
    elif serial and profiles_dir is not None:
        prof = find_profile(serial, profiles_dir)
    if prof is None and drift is None:
        return None
    return ProfileCorrection(prof, hardware_ppm=hardware_ppm, drift=drift)


def profile_warnings(baseline, correction: ProfileCorrection | None) -> list[str]:
    """Warnings when the baseline's survey used another correction (profile, ``--ppm-reference``)
    than this run, or none: known stations may then sit at other frequencies or levels than in the
    baseline, and alert."""
    if baseline is None:
        return []
    recorded = getattr(baseline, "calibration_profile", None)
    current = correction.correction_id if correction is not None else None
    if recorded == current:
        return []
    hint = "survey with the same --profile and --ppm-reference as this run"
    if recorded is None:
        return [f"the survey ran without the correction this run applies ({current}): known stations may sit at "
                f"other frequencies than in the baseline and alert; {hint}"]
    if current is None:
        return [f"the survey used the correction {recorded}; this run has none (frequencies and levels may differ); {hint}"]
    return [f"the correction changed since the survey ({recorded} → {current}); {hint}"]
