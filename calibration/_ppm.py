"""Frequency error of a dongle (ppm): sign convention, estimates from references, corrections.

Sign convention
---------------
``ppm`` is **positive when the dongle tunes high**: its crystal runs fast by ε = ppm·10⁻⁶, so
its local oscillator sits at f_LO·(1 + ε) and a signal at true frequency f appears *below* f in
the spectrum. This is the value rtl-sdr's ``freq_correction`` (``rtlsdr_set_freq_correction``,
``rtl_sdr -p``, ``rtlsdr:...,ppm=``) takes to cancel the error: librtlsdr scales its idea of the
crystal frequency by (1 + ppm·10⁻⁶) when it programs the tuner's PLL and the RTL2832U's
resampler [1]_. It is also the simulator's ``receiver.ppm`` (``detector.sim``: observed
frequency ``f − ε·f_center``), so an estimate on simulated IQ equals the scene's ``ppm``.

Clock models
------------
``clock="shared"`` (default, real RTL-SDRs): one 28.8 MHz crystal drives the tuner's LO *and*
the ADC's sample clock [1]_, so an offset counted with the nominal sample rate is scaled by
1/(1 + ε) as well, and a reference at f_ref appears, exactly, at ``f_meas = f_ref/(1 + ε)``:
``ε = f_ref/f_meas − 1``. ``clock="lo"``: only the LO is off (the simulator, or a dongle with a
separate ADC clock): ``f_meas = f_ref − ε·f_center``, ``ε = (f_ref − f_meas)/f_center``. The two
differ by ε·(f_ref − f_center)/f_ref, below 0.01 ppm for a reference within 100 kHz of the
center at 446 MHz but 0.1 ppm for an FM station 300 kHz off center at 100 MHz.

Estimators
----------
* :func:`estimate_ppm_carrier`: a configured carrier (a signal generator, a beacon) at a known
  frequency: its frequency measured by :func:`~calibration.measure_tone` (zero-padded Hann FFT,
  Gaussian interpolation, uncertainty from the spread over segments or the CRLB).
* :func:`~calibration.estimate_ppm_fm` (module ``_fm``): an FM broadcast station's 19 kHz pilot.
* :func:`estimate_ppm_raster`: a strong licensed transmitter known to sit on a channel raster:
  the offset of its measured center to the nearest raster point.

References
----------
.. [1] osmocom rtl-sdr, ``librtlsdr.c``: ``rtlsdr_set_freq_correction`` /
       ``rtlsdr_get_xtal_freq`` (``APPLY_PPM_CORR(val, ppm) = val·(1 + ppm/1e6)``), and the
       RTL-SDR Blog V3 design notes (one TCXO for the R820T2 and the RTL2832U).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from calibration._errors import CalibrationError
from calibration._tone import measure_tone
from detector.dsp import make_plan, noise_floor, welch_psd

__all__ = [
    "Clock",
    "PpmEstimate",
    "ppm_from_frequency",
    "apparent_frequency",
    "correct_frequency",
    "correct_iq_frequency",
    "estimate_ppm_carrier",
    "estimate_ppm_raster",
    "measure_emission_center",
    "EmissionCenter",
]

Clock = Literal["shared", "lo"]

#: Default search window: a reference farther than this from where it should be is not taken.
DEFAULT_SEARCH_PPM = 200.0


def _check_clock(clock: str) -> None:
    if clock not in ("shared", "lo"):
        raise ValueError(f"clock must be 'shared' or 'lo', got {clock!r}")


def ppm_from_frequency(measured_hz: float, reference_hz: float, *, center_hz: float | None = None,
                       clock: Clock = "shared") -> float:
    """Frequency error (ppm, positive when the dongle tunes high) from where a reference appears.

    Parameters
    ----------
    measured_hz : float
        Absolute frequency (Hz) at which the reference appears (tuned center + offset counted
        with the nominal sample rate).
    reference_hz : float
        True frequency (Hz) of the reference, > 0.
    center_hz : float, optional
        Tuned center (Hz); required for ``clock="lo"``.
    clock : {"shared", "lo"}
        ``"shared"``: ``ppm = (f_ref/f_meas − 1)·10⁶``; ``"lo"``:
        ``ppm = (f_ref − f_meas)/f_center·10⁶`` (see the module docstring).

    Examples
    --------
    A dongle at −37 ppm tuned to 446 MHz sees a 446.1 MHz carrier 16.5 kHz high:

    >>> round(ppm_from_frequency(446.1e6 + 37e-6 * 446e6, 446.1e6, center_hz=446e6, clock="lo"), 6)
    -37.0
    >>> round(ppm_from_frequency(446.1e6 / (1 - 37e-6), 446.1e6), 6)
    -37.0
    """
    _check_clock(clock)
    if not reference_hz > 0 or not measured_hz > 0:
        raise ValueError(f"frequencies must be > 0 Hz, got measured {measured_hz}, reference {reference_hz}")
    if clock == "shared":
        return float((reference_hz / measured_hz - 1.0) * 1e6)
    if center_hz is None or not center_hz > 0:
        raise ValueError("clock='lo' needs the tuned center_hz (> 0)")
    return float((reference_hz - measured_hz) / center_hz * 1e6)


def apparent_frequency(true_hz, ppm: float, *, center_hz: float | None = None, clock: Clock = "shared"):
    """Where a signal at ``true_hz`` appears on a dongle with error ``ppm`` (inverse of
    :func:`correct_frequency`). Works on scalars and arrays (Hz, float64)."""
    _check_clock(clock)
    eps = ppm * 1e-6
    f = np.asarray(true_hz, dtype=np.float64)
    if clock == "shared":
        out = f / (1.0 + eps)
    else:
        if center_hz is None:
            raise ValueError("clock='lo' needs center_hz")
        out = f - eps * center_hz
    return float(out) if out.ndim == 0 else out


def correct_frequency(measured_hz, ppm: float, *, center_hz: float | None = None, clock: Clock = "shared"):
    """True frequency of a signal that appears at ``measured_hz`` on a dongle with error ``ppm``.

    ``shared``: ``f = f_meas·(1 + ε)`` (exact for one crystal); ``lo``: ``f = f_meas + ε·f_center``.
    Use it on a :class:`~detector.core.types.Spectrum`'s ``freqs_hz`` of a recording made without
    ``freq_correction``. Scalars and arrays (Hz, float64).

    Examples
    --------
    >>> round(correct_frequency(446_116_502.0, -37.0, center_hz=446e6, clock="lo"))
    446100000
    """
    _check_clock(clock)
    eps = ppm * 1e-6
    f = np.asarray(measured_hz, dtype=np.float64)
    if clock == "shared":
        out = f * (1.0 + eps)
    else:
        if center_hz is None:
            raise ValueError("clock='lo' needs center_hz")
        out = f + eps * center_hz
    return float(out) if out.ndim == 0 else out


def correct_iq_frequency(samples: NDArray, *, ppm: float, center_hz: float, sample_rate_hz: float,
                         t0_s: float = 0.0, clock: Clock = "shared") -> NDArray[np.complex64]:
    """Digital frequency correction of IQ recorded without ``freq_correction``.

    Mixes the block by the LO error so that a signal at the tuned center appears at its true
    offset: by ``+ε·f_center`` (``lo``) or ``+ε·f_center/(1 + ε)`` (``shared``, in nominal-clock
    Hz). Phase is continuous across blocks when ``t0_s`` is each block's start (s).

    Notes
    -----
    With a shared crystal the sample clock is off too: after this mix an offset Δ from the
    center still reads Δ/(1 + ε), an error |ε·Δ| ≤ |ε|·fs/2 (29 Hz at 24 ppm and 2.4 MS/s).
    Re-label the rate as ``fs·(1 + ε)`` where that matters.

    Parameters
    ----------
    samples : ndarray of complex64, shape (n,)
    ppm : float
        Frequency error (positive when the dongle tunes high).
    center_hz, sample_rate_hz : float
        Tuned center and nominal sample rate (Hz).
    t0_s : float
        Time of sample 0 (s) from the start of the run.

    Returns
    -------
    ndarray of complex64, shape (n,)
    """
    _check_clock(clock)
    eps = ppm * 1e-6
    shift = eps * center_hz / (1.0 + eps) if clock == "shared" else eps * center_hz
    n = np.asarray(samples).size
    cycles = (shift * (t0_s + np.arange(n, dtype=np.float64) / sample_rate_hz)) % 1.0
    return (np.asarray(samples) * np.exp(2j * np.pi * cycles)).astype(np.complex64)


@dataclass(frozen=True)
class PpmEstimate:
    """A frequency-error estimate.

    Attributes
    ----------
    ppm : float
        Frequency error, positive when the dongle tunes high (rtl-sdr ``freq_correction``).
    uncertainty_ppm : float
        One-sigma uncertainty (ppm) of the measurement; the reference's own accuracy is not in it.
    reference_hz : float
        True frequency of the reference (Hz): the carrier, the raster point, or 19 000 Hz for an
        FM pilot.
    measured_hz : float
        Where the reference appeared (Hz, nominal clock).
    method : str
        ``"carrier"``, ``"fm-pilot"``, ``"fm-carrier"`` or ``"raster"``.
    clock : str
        Clock model used (``"shared"`` or ``"lo"``).
    center_hz : float
        Tuned center of the capture (Hz).
    snr_db : float
        SNR of the reference (dB).
    duration_s : float
        Length of IQ used (s).
    details : dict
        Method-specific figures (JSON-ready scalars).
    """

    ppm: float
    uncertainty_ppm: float
    reference_hz: float
    measured_hz: float
    method: str
    clock: str
    center_hz: float
    snr_db: float
    duration_s: float
    details: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        """JSON-ready dict: ``ppm``, ``uncertainty_ppm``, ``reference_hz``, ``measured_hz`` first."""
        return {
            "ppm": round(self.ppm, 6),
            "uncertainty_ppm": round(self.uncertainty_ppm, 6),
            "reference_hz": self.reference_hz,
            "measured_hz": round(self.measured_hz, 3),
            "method": self.method,
            "clock": self.clock,
            "center_hz": self.center_hz,
            "snr_db": round(self.snr_db, 2),
            "duration_s": round(self.duration_s, 6),
            **self.details,
        }


def _ppm_uncertainty(unc_hz: float, measured_hz: float, center_hz: float, clock: str) -> float:
    return float(unc_hz / (measured_hz if clock == "shared" else center_hz) * 1e6)


def _search_hz(reference_hz: float, search_ppm: float, floor_hz: float = 1e3) -> float:
    if not search_ppm > 0:
        raise ValueError(f"search_ppm must be > 0, got {search_ppm}")
    return max(abs(reference_hz) * search_ppm * 1e-6, floor_hz)


def estimate_ppm_carrier(
    samples: NDArray,
    *,
    sample_rate_hz: float,
    center_hz: float,
    reference_hz: float,
    search_ppm: float = DEFAULT_SEARCH_PPM,
    min_snr_db: float = 10.0,
    clock: Clock = "shared",
    n_segments: int = 8,
    expected_ppm: float = 0.0,
) -> PpmEstimate:
    """Frequency error from a configured carrier of known frequency.

    The strongest tone within ±``search_ppm`` of where ``reference_hz`` appears at
    ``expected_ppm`` (its true frequency for 0) is measured by :func:`~calibration.measure_tone`
    and converted by :func:`ppm_from_frequency`.

    Parameters
    ----------
    samples : ndarray of complex64, shape (n_samples,)
        IQ, full scale at magnitude 1.
    sample_rate_hz, center_hz : float
        Nominal sample rate and tuned center (Hz).
    reference_hz : float
        True frequency of the carrier (Hz).
    search_ppm : float
        Half-width of the search window in ppm of ``reference_hz`` (at least 1 kHz).
    min_snr_db : float
        Smallest accepted SNR of the carrier (dB over the local floor per RBW bin).
    clock : {"shared", "lo"}
        Clock model (module docstring).
    n_segments : int
        Segments for the spread-based uncertainty.
    expected_ppm : float
        Center of the search window, in ppm (a previous estimate when tracking drift, so that a
        narrow window cannot lock onto a neighbouring signal).

    Raises
    ------
    CalibrationError
        No carrier reaching ``min_snr_db`` within the window (a missing or wrong reference), a
        reference outside the captured band or at the DC spike, too few samples.

    Examples
    --------
    >>> fs, n, eps = 1.024e6, 1 << 17, -37e-6
    >>> t = np.arange(n) / fs
    >>> f_seen = 446.1e6 / (1 + eps) - 446e6        # one crystal for LO and ADC
    >>> x = (0.3 * np.exp(2j * np.pi * f_seen * t)).astype(np.complex64)
    >>> x += (1e-3 * np.random.default_rng(0).standard_normal(n)).astype(np.complex64)
    >>> round(estimate_ppm_carrier(x, sample_rate_hz=fs, center_hz=446e6, reference_hz=446.1e6).ppm, 2)
    -37.0
    """
    x = np.asarray(samples)
    fs = float(sample_rate_hz)
    near = float(apparent_frequency(reference_hz, expected_ppm, center_hz=center_hz, clock=clock)) if expected_ppm else reference_hz
    m = measure_tone(x, sample_rate_hz=fs, center_hz=center_hz, near_hz=near,
                     search_hz=_search_hz(reference_hz, search_ppm), min_snr_db=min_snr_db,
                     n_segments=n_segments, exclude_dc_hz=2e-3 * fs)
    ppm = ppm_from_frequency(m.freq_hz, reference_hz, center_hz=center_hz, clock=clock)
    return PpmEstimate(
        ppm=ppm,
        uncertainty_ppm=_ppm_uncertainty(m.uncertainty_hz, m.freq_hz, center_hz, clock),
        reference_hz=float(reference_hz),
        measured_hz=m.freq_hz,
        method="carrier",
        clock=clock,
        center_hz=float(center_hz),
        snr_db=m.snr_db,
        duration_s=x.size / fs,
        details={"crlb_hz": round(m.crlb_hz, 6), "n_segments": m.n_segments,
                 "carrier_dbfs": round(m.power_dbfs, 2)},
    )


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
