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
* :func:`~calibration.estimate_ppm_raster` (module ``_raster``): a strong licensed transmitter
  known to sit on a channel raster: the offset of its measured center to the nearest raster point.

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

from calibration._tone import measure_tone

__all__ = [
    "Clock",
    "PpmEstimate",
    "ppm_from_frequency",
    "apparent_frequency",
    "correct_frequency",
    "correct_iq_frequency",
    "estimate_ppm_carrier",
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
