"""Frequency error from an FM broadcast station: its 19 kHz stereo pilot and its carrier.

The station is shifted to baseband, low-pass filtered and decimated to ≈ 240–270 kS/s
(``scipy.signal.resample_poly``), and FM-demodulated by the polar discriminator
``f[n] = arg(y[n]·y*[n−1])·fs/2π`` (Hz). Two references come out of it:

* **Pilot** (``reference="pilot"``): the stereo multiplex carries a 19 kHz pilot tone
  (ITU-R BS.450-3 §2: 19 kHz ± 2 Hz). In the demodulated audio its frequency depends only on
  the *sample clock*: counted with the nominal rate it reads ``19 000/(1 + ε)``, independent of
  the LO. On an RTL-SDR one crystal drives both (``clock="shared"``), so this is the dongle's ε.
  The pilot is measured by :func:`~calibration.measure_tone` coherently over the whole block
  (precision ∝ T^−3/2: a few seconds give < 0.1 ppm). Caveat: BS.450 allows the pilot ±2 Hz
  (±105 ppm); most stations derive it from a precise reference, but check against another
  method (the ``carrier_ppm`` beside it) before trusting an unknown station.
* **Carrier** (``reference="carrier"``): the center of the station's frequency deviation. A
  broadcast multiplex is peak-limited symmetrically to ±75 kHz, so the midpoint of the
  discriminator's low and high tails (the 0.5/99.5, 1/99 and 2/98 % quantiles, averaged) is the
  carrier. It is taken per ``segment_s`` segment (uncertainty = standard error over segments)
  and iterated once so that the channel filter is centered on the carrier. The discriminator's
  plain mean (the spectral centroid) is reported too; on real stations, whose audio has no DC,
  both agree, but the simulator's audio has DC content that makes the mean wander by ≈ 0.5 kHz
  per 0.25 s. This reference measures the LO, so it also works with ``clock="lo"``.

The pilot also *identifies* the station: no pilot ≥ ``min_snr_db`` over the audio floor near
19 kHz → :class:`~calibration.CalibrationError` (not a stereo FM station, or too weak).

The simulator (``detector.sim``) applies the ppm error to the LO only, not to the sample clock:
on its IQ the pilot reads 19 000 Hz and ``reference="pilot"`` would report ≈ 0 ppm; use
``reference="carrier"`` with ``clock="lo"`` there. (A shared-crystal dongle can be emulated by
running the simulator at ``fs·(1 + ε)`` and reading its samples as ``fs``; the tests do.)

References
----------
.. [1] ITU-R BS.450-3, "Transmission standards for FM sound broadcasting at VHF", 2001
       (pilot 19 kHz ± 2 Hz, 8–10 % of the ±75 kHz deviation).
.. [2] R. G. Lyons, *Understanding Digital Signal Processing*, 3rd ed., §13.22 (FM demodulation
       by the phase difference of successive samples).
"""

from __future__ import annotations

import numpy as np
import scipy.signal
from numpy.typing import NDArray

from calibration._errors import CalibrationError
from calibration._ppm import DEFAULT_SEARCH_PPM, Clock, PpmEstimate, _check_clock, _ppm_uncertainty, ppm_from_frequency
from calibration._tone import measure_tone
from detector.dsp import make_plan, welch_psd

__all__ = ["estimate_ppm_fm", "PILOT_HZ"]

#: Stereo pilot frequency (Hz), ITU-R BS.450.
PILOT_HZ = 19_000.0
#: Half-width of a broadcast FM channel's occupied band used for the SNR check (Hz).
_HALF_CHANNEL_HZ = 100e3
_TAIL_QUANTILES = (0.5, 1.0, 2.0)


def _baseband(x: NDArray, offset_hz: float, fs: float, q: int) -> NDArray[np.complex128]:
    """Shift ``offset_hz`` to 0 Hz and decimate by ``q`` (polyphase FIR, Kaiser window)."""
    n = np.arange(x.size, dtype=np.float64)
    cycles = (offset_hz / fs * n) % 1.0
    y = x * np.exp(-2j * np.pi * cycles)
    return scipy.signal.resample_poly(y, 1, q) if q > 1 else y


def _discriminate(y: NDArray, fs: float) -> NDArray[np.float64]:
    """Instantaneous frequency (Hz) by the phase difference of successive samples [2]_."""
    return np.angle(y[1:] * np.conj(y[:-1])) * (fs / (2 * np.pi))


def _tail_midpoint(d: NDArray[np.float64]) -> float:
    lo = np.percentile(d, _TAIL_QUANTILES)
    hi = np.percentile(d, [100 - q for q in _TAIL_QUANTILES])
    return float(np.mean((lo + hi) / 2))


def estimate_ppm_fm(
    samples: NDArray,
    *,
    sample_rate_hz: float,
    center_hz: float,
    station_hz: float,
    reference: str = "pilot",
    clock: Clock = "shared",
    segment_s: float = 0.25,
    min_snr_db: float = 10.0,
    search_ppm: float = DEFAULT_SEARCH_PPM,
) -> PpmEstimate:
    """Frequency error from an FM broadcast station's pilot (or carrier); see the module docstring.

    Parameters
    ----------
    samples : ndarray of complex64, shape (n_samples,)
        IQ holding the station, full scale at magnitude 1; ≥ 2 segments long. Tune the station
        ≥ 150 kHz off center so that the DC spike and the IQ image fall outside its channel.
    sample_rate_hz, center_hz : float
        Nominal sample rate (≥ 240 kS/s) and tuned center (Hz).
    station_hz : float
        The station's assigned carrier frequency (Hz).
    reference : {"pilot", "carrier"}
        Which reference gives ``ppm`` (both are computed and reported in ``details``).
    clock : {"shared", "lo"}
        Clock model; ``"pilot"`` needs ``"shared"`` (the pilot measures the sample clock).
    segment_s : float
        Segment length (s) for the carrier's spread-based uncertainty.
    min_snr_db : float
        Smallest accepted SNR of the station (channel over floor) and of the pilot (over the
        audio floor near 19 kHz), dB.
    search_ppm : float
        The station's carrier is searched within ±``search_ppm`` of ``station_hz``.

    Returns
    -------
    PpmEstimate
        ``method`` "fm-pilot" (reference 19 000 Hz, measured = pilot frequency) or "fm-carrier"
        (reference = ``station_hz``); ``details`` holds ``station_hz``, ``pilot_hz``,
        ``pilot_snr_db``, ``pilot_ppm``, ``pilot_uncertainty_ppm``, ``carrier_hz``, ``carrier_ppm``,
        ``carrier_uncertainty_ppm``, ``discriminator_mean_hz``, ``difference_ppm``.

    Raises
    ------
    CalibrationError
        The station's channel outside the band, no station (SNR), no pilot, too short a block.
    ValueError
        ``reference="pilot"`` with ``clock="lo"``, a rate below 240 kS/s, bad arguments.
    """
    _check_clock(clock)
    if reference not in ("pilot", "carrier"):
        raise ValueError(f"reference must be 'pilot' or 'carrier', got {reference!r}")
    if reference == "pilot" and clock == "lo":
        raise ValueError("the pilot measures the sample clock; with clock='lo' (LO error only, as in the "
                         "simulator) use reference='carrier'")
    fs = float(sample_rate_hz)
    if fs < 240e3:
        raise ValueError(f"FM calibration needs ≥ 240 kS/s to hold a 200 kHz channel, got {fs:g}")
    x = np.asarray(samples)
    x = x - np.asarray(x.mean(dtype=np.complex128)).astype(x.dtype)
    off0 = station_hz - center_hz
    search = max(abs(station_hz) * search_ppm * 1e-6, 1e3)
    if abs(off0) + _HALF_CHANNEL_HZ + search > fs / 2:
        raise CalibrationError(
            f"the FM station at {station_hz / 1e6:.3f} MHz (±{(_HALF_CHANNEL_HZ + search) / 1e3:.0f} kHz) is not "
            f"inside the captured band {(center_hz - fs / 2) / 1e6:.3f}–{(center_hz + fs / 2) / 1e6:.3f} MHz"
        )
    q = max(1, int(fs // 240e3))
    fs_d = fs / q
    seg_n = int(round(segment_s * fs_d))
    if x.size // q < 2 * seg_n or seg_n < 1024:
        raise CalibrationError(
            f"too short for FM calibration: {x.size / fs:.3f} s; need ≥ {2 * segment_s:g} s (two segments)"
        )

    # the station: channel power over the floor of the whole band
    plan = make_plan(fs, nfft=1 << int(np.ceil(np.log2(fs / 1e3))))
    p = welch_psd(x[: min(x.size, 1 << 20)].astype(np.complex64), plan)
    chan = np.abs(plan.offsets_hz - off0) <= 60e3
    floor = float(np.percentile(p, 10))
    snr_db = float(10 * np.log10(max(p[chan].mean(), 1e-300) / max(floor, 1e-300)))
    if not snr_db >= min_snr_db:
        raise CalibrationError(
            f"no reference signal: the FM channel at {station_hz / 1e6:.3f} MHz is {snr_db:.1f} dB over the "
            f"noise floor; need ≥ {min_snr_db:g} dB"
        )
    # coarse center: power centroid of the channel, then the tail midpoint, twice (filter centering)
    wide = np.abs(plan.offsets_hz - off0) <= _HALF_CHANNEL_HZ + search
    wgt = np.maximum(p[wide] - floor, 0.0)
    est = float(np.sum(wgt * plan.offsets_hz[wide]) / wgt.sum())
    head = x[: min(x.size, int(fs))]
    for _ in range(2):
        est += _tail_midpoint(_discriminate(_baseband(head, est, fs, q), fs_d))
    d = _discriminate(_baseband(x, est, fs, q), fs_d)
    n_seg = d.size // seg_n
    segs = d[: n_seg * seg_n].reshape(n_seg, seg_n)
    mids = np.array([_tail_midpoint(s) for s in segs])
    carrier_off = est + float(mids.mean())
    carrier_hz = center_hz + carrier_off
    if abs(carrier_hz - station_hz) > search:
        raise CalibrationError(
            f"no reference signal: the FM carrier found at {carrier_hz / 1e6:.6f} MHz is more than "
            f"{search_ppm:g} ppm from {station_hz / 1e6:.6f} MHz"
        )
    carrier_unc_hz = float(mids.std(ddof=1) / np.sqrt(n_seg))
    carrier_ppm = ppm_from_frequency(carrier_hz, station_hz, center_hz=center_hz, clock=clock)
    carrier_unc_ppm = _ppm_uncertainty(carrier_unc_hz, carrier_hz, center_hz, clock)
    disc_mean_hz = center_hz + est + float(d.mean())

    # the pilot in the audio, coherently over the whole block
    try:
        pil = measure_tone(d, sample_rate_hz=fs_d, center_hz=0.0, near_hz=PILOT_HZ,
                           search_hz=max(20.0, PILOT_HZ * search_ppm * 1e-6 + 2.0), min_snr_db=min_snr_db,
                           n_segments=1)
    except CalibrationError as exc:
        raise CalibrationError(
            f"no 19 kHz pilot: the station at {station_hz / 1e6:.3f} MHz is not an FM stereo broadcast "
            f"station or is too weak ({exc})"
        ) from None
    pilot_ppm = ppm_from_frequency(pil.freq_hz, PILOT_HZ, clock="shared")
    pilot_unc_ppm = float(pil.uncertainty_hz / pil.freq_hz * 1e6)

    details = {
        "station_hz": float(station_hz),
        "pilot_hz": round(pil.freq_hz, 5),
        "pilot_snr_db": round(pil.snr_db, 2),
        "pilot_ppm": round(pilot_ppm, 4),
        "pilot_uncertainty_ppm": round(pilot_unc_ppm, 4),
        "carrier_hz": round(carrier_hz, 3),
        "carrier_ppm": round(carrier_ppm, 4),
        "carrier_uncertainty_ppm": round(carrier_unc_ppm, 4),
        "discriminator_mean_hz": round(disc_mean_hz, 3),
        "difference_ppm": round(pilot_ppm - carrier_ppm, 4),
        "channel_snr_db": round(snr_db, 2),
    }
    if reference == "pilot":
        return PpmEstimate(ppm=pilot_ppm, uncertainty_ppm=pilot_unc_ppm, reference_hz=PILOT_HZ,
                           measured_hz=pil.freq_hz, method="fm-pilot", clock=clock, center_hz=float(center_hz),
                           snr_db=pil.snr_db, duration_s=x.size / fs, details=details)
    return PpmEstimate(ppm=carrier_ppm, uncertainty_ppm=carrier_unc_ppm, reference_hz=float(station_hz),
                       measured_hz=carrier_hz, method="fm-carrier", clock=clock, center_hz=float(center_hz),
                       snr_db=snr_db, duration_s=x.size / fs, details=details)
