"""Frequency error (ppm) from a strong licensed transmitter known to sit on a channel raster.

:func:`measure_emission_center` measures an emission's power-weighted center (with its
uncertainty, SNR and occupied width, as an :class:`EmissionCenter`) and :func:`estimate_ppm_raster`
takes the offset of that center to the nearest raster point as the dongle's error, in the sign
convention and clock models of :mod:`calibration._ppm`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration._errors import CalibrationError
from calibration._ppm import (
    DEFAULT_SEARCH_PPM,
    Clock,
    PpmEstimate,
    _check_clock,
    _ppm_uncertainty,
    _search_hz,
    correct_frequency,
    ppm_from_frequency,
)
from detector.dsp import make_plan, noise_floor, welch_psd

__all__ = ["EmissionCenter", "measure_emission_center", "estimate_ppm_raster"]


@dataclass(frozen=True)
class EmissionCenter:
    """Power-weighted center of an emission (Hz, nominal clock), with its one-sigma uncertainty,
    SNR (dB, peak bin over floor) and the −threshold occupied width (Hz)."""

    freq_hz: float
    uncertainty_hz: float
    snr_db: float
    width_hz: float
    n_segments: int


def measure_emission_center(
    samples: NDArray,
    *,
    sample_rate_hz: float,
    center_hz: float,
    near_hz: float,
    search_hz: float,
    resolution_hz: float = 200.0,
    min_snr_db: float = 10.0,
    n_segments: int = 8,
) -> EmissionCenter:
    """Center of the strongest emission near ``near_hz``: the power centroid of its bins.

    The emission is the contiguous run of bins around the strongest bin in the window that
    stand ≥ 6 dB over the noise floor (a running 30 % order statistic,
    :func:`detector.dsp.noise_floor`); its centroid weights each bin by its power over the floor.
    The mean frequency of a signal's power spectrum equals the time average of its instantaneous
    frequency (L. Cohen, *Time-Frequency Analysis*, Prentice Hall, 1995, §1.4), so for FM or FSK
    the centroid is the carrier when the modulation has no DC. The centroid is taken per
    segment; the uncertainty is the standard error over segments.

    Raises
    ------
    CalibrationError
        No emission reaching ``min_snr_db`` in the window, a window outside the band, too few
        samples.
    """
    x = np.asarray(samples)
    n = x.size
    fs = float(sample_rate_hz)
    if n < 4096:
        raise CalibrationError(f"too few samples to measure an emission: {n} (need ≥ 4096)")
    x = x - np.asarray(x.mean(dtype=np.complex128)).astype(x.dtype)
    nfft = 1 << int(np.ceil(np.log2(fs / max(resolution_hz, 1.0) * 1.5)))
    n_segments = max(1, min(n_segments, n // (4 * nfft)))
    nfft = int(min(nfft, 1 << int(np.floor(np.log2(max(n // (4 * n_segments), 64))))))
    plan = make_plan(fs, nfft=nfft)
    off = plan.offsets_hz
    p = welch_psd(x.astype(np.complex64), plan)
    floor = noise_floor(p)
    lo, hi = near_hz - search_hz - center_hz, near_hz + search_hz - center_hz
    cand = np.flatnonzero((off >= lo) & (off <= hi) & (np.abs(off) > 2 * plan.bin_hz))
    if cand.size == 0:
        raise CalibrationError(
            f"the reference {near_hz / 1e6:.6f} MHz (±{search_hz / 1e3:.1f} kHz) is outside the captured band "
            f"{(center_hz - fs / 2) / 1e6:.6f}–{(center_hz + fs / 2) / 1e6:.6f} MHz"
        )
    excess = p / np.maximum(floor, 1e-300)
    k0 = p.size // 2
    mirror = np.clip(2 * k0 - cand, 0, p.size - 1)
    not_image = p[mirror] < 10.0 * p[cand]  # the IQ image of a ≥ 10 dB stronger signal is no reference
    if not not_image.any():
        raise CalibrationError(f"no reference signal: everything within ±{search_hz:.0f} Hz of {near_hz:.1f} Hz is "
                               "the IQ image of a stronger signal")
    cand = cand[not_image]
    k = int(cand[np.argmax(excess[cand])])
    snr_db = float(10 * np.log10(excess[k]))
    if not snr_db >= min_snr_db:
        raise CalibrationError(
            f"no reference signal: the strongest emission within ±{search_hz:.0f} Hz of {near_hz:.1f} Hz "
            f"is {snr_db:.1f} dB over the noise floor; need ≥ {min_snr_db:g} dB"
        )
    above = excess >= 10 ** 0.6
    a = k
    while a > 0 and above[a - 1]:
        a -= 1
    b = k
    while b < p.size - 1 and above[b + 1]:
        b += 1
    idx = np.arange(a, b + 1)
    seg_len = n // n_segments
    cents = []
    for s in range(n_segments):
        ps = welch_psd(x[s * seg_len : (s + 1) * seg_len].astype(np.complex64), plan)
        wgt = np.maximum(ps[idx] - floor[idx], 0.0)
        if wgt.sum() <= 0:
            continue
        cents.append(float(np.sum(wgt * off[idx]) / wgt.sum()))
    if not cents:  # pragma: no cover - the whole-record average had it
        raise CalibrationError("the emission vanished in every segment")
    c = np.asarray(cents)
    sem = float(c.std(ddof=1) / np.sqrt(c.size)) if c.size >= 3 else plan.bin_hz / 2
    return EmissionCenter(freq_hz=float(center_hz + c.mean()), uncertainty_hz=max(sem, 1e-3 * plan.bin_hz),
                          snr_db=snr_db, width_hz=float((b - a + 1) * plan.bin_hz), n_segments=int(c.size))


def estimate_ppm_raster(
    samples: NDArray,
    *,
    sample_rate_hz: float,
    center_hz: float,
    near_hz: float,
    raster_step_hz: float,
    raster_origin_hz: float = 0.0,
    prior_ppm: float = 0.0,
    prior_uncertainty_ppm: float,
    search_hz: float | None = None,
    min_snr_db: float = 10.0,
    clock: Clock = "shared",
) -> PpmEstimate:
    """Frequency error from a strong licensed transmitter known to sit on a channel raster.

    The emission near ``near_hz`` is measured (:func:`measure_emission_center`), corrected by
    ``prior_ppm``, and assigned to the nearest raster point ``origin + k·step``; the ppm is where
    it appeared against that point. Channel rasters of licensed services are exact to a few Hz
    (e.g. 12.5 kHz PMR/LMR channels, ETSI EN 300 086; 25 kHz SRD channels, ETSI EN 300 220).

    Parameters
    ----------
    samples : ndarray of complex64, shape (n_samples,)
    sample_rate_hz, center_hz : float
        Nominal sample rate and tuned center (Hz).
    near_hz : float
        Where the transmitter is expected (Hz); the strongest emission within ``search_hz``
        (default: 200 ppm or one raster step, whichever is wider) is taken.
    raster_step_hz, raster_origin_hz : float
        The raster: channels at ``origin + k·step`` (Hz).
    prior_ppm, prior_uncertainty_ppm : float
        What is known of the error before (ppm): required, because the raster can only resolve
        errors smaller than half a step. With no calibration at all, a generic dongle is within
        ±60 ppm (``SCENES.md`` §3.6), a TCXO dongle within ±2 ppm.
    min_snr_db : float
        Smallest accepted SNR (dB).
    clock : {"shared", "lo"}

    Raises
    ------
    CalibrationError
        No emission, or an **ambiguous** raster point: the prior's span plus three sigma of the
        measurement reaches 0.45 of a step (``prior_uncertainty_ppm·f + 3σ ≥ 0.45·step``). A
        12.5 kHz raster at 446 MHz resolves only ±12 ppm, so an uncalibrated dongle needs a coarse
        calibration first (carrier or FM pilot); a 100 kHz FM-broadcast raster at 100 MHz
        resolves ±450 ppm.

    Examples
    --------
    >>> fs, n = 1.024e6, 1 << 17
    >>> t = np.arange(n) / fs
    >>> x = (0.3 * np.exp(2j * np.pi * (98.7e6 / (1 + 23e-6) - 98.5e6) * t)).astype(np.complex64)
    >>> e = estimate_ppm_raster(x, sample_rate_hz=fs, center_hz=98.5e6, near_hz=98.7e6,
    ...                         raster_step_hz=100e3, prior_uncertainty_ppm=60.0)
    >>> e.reference_hz, round(e.ppm, 1)
    (98700000.0, 23.0)
    """
    _check_clock(clock)
    if not raster_step_hz > 0:
        raise ValueError(f"raster_step_hz must be > 0, got {raster_step_hz}")
    x = np.asarray(samples)
    fs = float(sample_rate_hz)
    if search_hz is None:
        search_hz = max(_search_hz(near_hz, DEFAULT_SEARCH_PPM), raster_step_hz)
    em = measure_emission_center(x, sample_rate_hz=fs, center_hz=center_hz, near_hz=near_hz,
                                 search_hz=search_hz, resolution_hz=min(200.0, raster_step_hz / 32),
                                 min_snr_db=min_snr_db)
    corrected = correct_frequency(em.freq_hz, prior_ppm, center_hz=center_hz, clock=clock)
    k = round((corrected - raster_origin_hz) / raster_step_hz)
    f_r = raster_origin_hz + k * raster_step_hz
    resid = corrected - f_r
    budget = abs(prior_uncertainty_ppm) * 1e-6 * near_hz + 3 * em.uncertainty_hz
    if budget >= 0.45 * raster_step_hz or abs(resid) + 3 * em.uncertainty_hz >= 0.5 * raster_step_hz:
        raise CalibrationError(
            f"ambiguous raster point: a prior of {prior_ppm:+g} ± {prior_uncertainty_ppm:g} ppm spans ±{budget:.0f} Hz "
            f"at {near_hz / 1e6:.3f} MHz, too much for the {raster_step_hz:.0f} Hz raster (the emission sits "
            f"{resid:+.0f} Hz from {f_r / 1e6:.6f} MHz); calibrate coarsely first (carrier or FM pilot) and give "
            "that as the prior"
        )
    ppm = ppm_from_frequency(em.freq_hz, f_r, center_hz=center_hz, clock=clock)
    return PpmEstimate(
        ppm=ppm,
        uncertainty_ppm=_ppm_uncertainty(em.uncertainty_hz, em.freq_hz, center_hz, clock),
        reference_hz=float(f_r),
        measured_hz=em.freq_hz,
        method="raster",
        clock=clock,
        center_hz=float(center_hz),
        snr_db=em.snr_db,
        duration_s=x.size / fs,
        details={"raster_step_hz": float(raster_step_hz), "raster_origin_hz": float(raster_origin_hz),
                 "prior_ppm": float(prior_ppm), "emission_width_hz": round(em.width_hz, 1)},
    )
