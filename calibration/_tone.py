"""Precise frequency of a tone (a carrier, an FM pilot) in a block of samples.

Two stages, both on ``scipy.fft``:

1. **Find it.** A Welch average (Hann, 50 % overlap, :func:`detector.dsp.welch_psd`) locates the
   strongest bin within ``search_hz`` of the expected frequency, skipping bins that are the IQ
   image of a signal ≥ 10 dB stronger at the mirror frequency. Its SNR is the bin's power over
   the median of an annulus of bins around it (the local noise floor per RBW bin); below
   ``min_snr_db`` there is no usable reference and :class:`~calibration.CalibrationError` says so.
2. **Measure it.** The block is cut into ``n_segments`` segments; each is Hann-windowed,
   zero-padded four times and transformed, and the peak is refined by a parabola through the
   logarithms of the three highest magnitudes (Gaussian interpolation [2]_). With four-fold
   zero padding the interpolation bias of a Hann peak is below 10⁻³ bin [2]_. The estimate is the
   mean over segments; its uncertainty the larger of the segments' standard error and the
   Cramér–Rao bound of the whole block [1]_.

A real-valued input (an FM discriminator's audio) works the same: only the positive-frequency
image is searched, and the Cramér–Rao bound written with the bin readings (tone power per bin,
noise per bin) is the same expression for real and complex signals.

References
----------
.. [1] D. C. Rife, R. R. Boorstyn, "Single-tone parameter estimation from discrete-time
       observations", IEEE Trans. Inf. Theory 20(5), 591–598, 1974 (CRLB
       var(ω) ≥ 6 / (SNR · N · (N² − 1)), SNR = A²/σ²).
.. [2] M. Gasior, J. L. Gonzalez, "Improving FFT frequency measurement resolution by parabolic
       and Gaussian spectrum interpolation", CERN AB-Note-2004-021, 2004.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from calibration._errors import CalibrationError
from detector.dsp import make_plan, welch_psd

__all__ = ["ToneMeasurement", "measure_tone", "tone_crlb_hz"]

#: Fewest samples a tone measurement accepts.
_MIN_SAMPLES = 1024
#: Zero-padding factor of the fine FFTs.
_PAD = 4


@dataclass(frozen=True)
class ToneMeasurement:
    """A measured tone.

    Attributes
    ----------
    freq_hz : float
        Absolute frequency (Hz) at which the tone appears: ``center_hz`` + its offset, counted
        with the *nominal* sample rate (i.e. as the receiver reports it, uncorrected).
    offset_hz : float
        Offset from ``center_hz`` (Hz).
    uncertainty_hz : float
        One-sigma uncertainty of ``freq_hz`` (Hz): max(standard error over segments, CRLB).
    crlb_hz : float
        Cramér–Rao bound (one sigma, Hz) of a tone of the measured SNR over the whole block.
    snr_db : float
        Peak bin of the Welch average over the local noise floor per RBW bin (dB).
    power_dbfs : float
        Tone power (dBFS; 0 dBFS = full-scale complex tone), from the Welch peak bin.
    rbw_hz : float
        RBW of the Welch average used to find the tone (Hz).
    n_segments : int
        Segments averaged in the fine stage.
    segment_offsets_hz : tuple of float
        Offset measured in each segment (Hz), in time order.
    """

    freq_hz: float
    offset_hz: float
    uncertainty_hz: float
    crlb_hz: float
    snr_db: float
    power_dbfs: float
    rbw_hz: float
    n_segments: int
    segment_offsets_hz: tuple[float, ...]


def tone_crlb_hz(snr_linear: float, n_samples: int, sample_rate_hz: float) -> float:
    """Cramér–Rao bound (one sigma, Hz) on the frequency of a tone in white noise [1]_.

    Parameters
    ----------
    snr_linear : float
        A²/σ²: tone power over the total noise power per sample (both in the same units).
    n_samples : int
        Observation length N.
    sample_rate_hz : float
        Sample rate (Hz).

    Returns
    -------
    float
        ``fs/(2π) · sqrt(6 / (SNR · N · (N² − 1)))``.

    Examples
    --------
    >>> round(tone_crlb_hz(100.0, 1_000_000, 1e6), 6)   # 20 dB per sample, 1 s at 1 MS/s
    3.9e-05
    """
    n = float(n_samples)
    if not (snr_linear > 0 and n > 1):
        return float("inf")
    return float(sample_rate_hz / (2 * np.pi) * np.sqrt(6.0 / (snr_linear * n * (n * n - 1.0))))


def _coarse_nfft(n: int, sample_rate_hz: float, search_hz: float) -> int:
    """Power-of-two Welch segment: ≤ n/8 samples (≥ 15 looks), ≤ 2^16, bins finer than search/8."""
    want = sample_rate_hz / max(search_hz / 8.0, 1e-9)
    nfft = 1 << int(np.ceil(np.log2(max(want, 256))))
    cap = 1 << int(np.floor(np.log2(max(n // 8, 256))))
    return int(max(256, min(nfft, cap, 1 << 16)))


def _parabolic_log_peak(mag: NDArray[np.float64], k: int) -> float:
    """Fractional bin of the maximum from a parabola through log-magnitudes at k−1, k, k+1 [2]_."""
    if k <= 0 or k >= mag.size - 1:
        return float(k)
    a, b, c = np.log(np.maximum(mag[k - 1 : k + 2], 1e-300))
    den = a - 2 * b + c
    if den >= 0:  # not a maximum (flat top): keep the bin
        return float(k)
    return float(k + 0.5 * (a - c) / den)


def measure_tone(
    samples: NDArray,
    *,
    sample_rate_hz: float,
    center_hz: float,
    near_hz: float,
    search_hz: float,
    min_snr_db: float = 10.0,
    n_segments: int = 8,
    exclude_dc_hz: float = 0.0,
) -> ToneMeasurement:
    """Measure the frequency of the strongest tone within ``search_hz`` of ``near_hz``.

    Parameters
    ----------
    samples : ndarray of complex64 (or real float), shape (n_samples,)
        Samples, full scale at magnitude 1. The mean (DC offset) is removed first.
    sample_rate_hz : float
        Nominal sample rate (Hz), > 0.
    center_hz : float
        Tuned center frequency (Hz); 0 for audio.
    near_hz : float
        Where the tone is expected (absolute Hz).
    search_hz : float
        Half-width (Hz) of the search window around ``near_hz``; > 0.
    min_snr_db : float
        Smallest SNR (dB, peak bin over the local floor) accepted as a reference.
    n_segments : int
        Segments of the fine stage (≥ 1); 1 uses the whole block coherently (a stable tone,
        best precision), more segments give an uncertainty from their spread.
    exclude_dc_hz : float
        Offsets with ``|offset| <`` this (Hz) are never taken as the tone (a DC spike).

    Returns
    -------
    ToneMeasurement

    Raises
    ------
    CalibrationError
        Too few samples, a search window outside the captured band, or no tone reaching
        ``min_snr_db`` within it.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> fs, n = 1e6, 1 << 18
    >>> t = np.arange(n) / fs
    >>> x = 0.1 * np.exp(2j * np.pi * 123_456.7 * t)
    >>> x = (x + 0.01 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    >>> m = measure_tone(x, sample_rate_hz=fs, center_hz=100e6, near_hz=100.12e6, search_hz=10e3)
    >>> abs(m.freq_hz - 100_123_456.7) < 0.05
    True
    """
    if not sample_rate_hz > 0:
        raise ValueError(f"sample rate must be > 0 Hz, got {sample_rate_hz}")
    if not search_hz > 0:
        raise ValueError(f"search_hz must be > 0, got {search_hz}")
    if n_segments < 1:
        raise ValueError(f"n_segments must be ≥ 1, got {n_segments}")
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D, got shape {x.shape}")
    n = x.size
    if n < _MIN_SAMPLES:
        raise CalibrationError(f"too few samples to measure a tone: {n} (need ≥ {_MIN_SAMPLES})")
    real_input = not np.iscomplexobj(x)
    x = x - np.asarray(x.mean(dtype=np.float64 if real_input else np.complex128)).astype(x.dtype)
    fs = float(sample_rate_hz)
    half = fs / 2.0
    lo_off = max(near_hz - search_hz - center_hz, -half)
    hi_off = min(near_hz + search_hz - center_hz, half)
    if real_input:
        lo_off = max(lo_off, 0.0)
    if hi_off <= lo_off:
        raise CalibrationError(
            f"the reference {near_hz / 1e6:.6f} MHz (±{search_hz / 1e3:.1f} kHz) is outside the captured band "
            f"{(center_hz - half) / 1e6:.6f}–{(center_hz + half) / 1e6:.6f} MHz"
        )

    # 1. find it in a Welch average
    plan = make_plan(fs, nfft=_coarse_nfft(n, fs, search_hz))
    p = welch_psd(x.astype(np.complex64), plan)
    off = plan.offsets_hz
    cand = np.flatnonzero((off >= lo_off) & (off <= hi_off) & (np.abs(off) >= exclude_dc_hz))
    if cand.size == 0:
        raise CalibrationError(
            f"the search window around {near_hz:.1f} Hz holds no usable bins (too near DC or the band edge)"
        )
    if not real_input:
        # the IQ image of a stronger signal is not a reference: drop bins whose mirror about the
        # tuned center (±1 bin) is ≥ 10 dB stronger
        k0 = p.size // 2
        mirror = np.clip(2 * k0 - cand, 0, p.size - 1)
        mirror_p = np.maximum.reduce([p[np.clip(mirror + d, 0, p.size - 1)] for d in (-1, 0, 1)])
        images = mirror_p >= 10.0 * p[cand]
        if images.all():
            raise CalibrationError(
                f"no reference signal: everything within ±{search_hz:.0f} Hz of {near_hz:.1f} Hz is the IQ image of a "
                f"stronger signal mirrored about {center_hz:.1f} Hz"
            )
        cand = cand[~images]
    k = int(cand[np.argmax(p[cand])])
    inner = max(4, int(np.ceil(2 * plan.rbw_hz / plan.bin_hz)))
    outer = max(64, 4 * inner, int(np.ceil(search_hz / plan.bin_hz)))
    idx = np.arange(max(0, k - outer), min(p.size, k + outer + 1))
    ring = idx[np.abs(idx - k) > inner]
    if real_input:
        ring = ring[off[ring] > 0]
    if ring.size < 8:
        raise CalibrationError("too few bins around the reference to estimate the noise floor")
    floor = float(np.median(p[ring]))
    snr_db = float(10 * np.log10(max(p[k], 1e-300) / max(floor, 1e-300)))
    if not snr_db >= min_snr_db:
        raise CalibrationError(
            f"no reference signal: the strongest peak within ±{search_hz:.0f} Hz of {near_hz:.1f} Hz "
            f"(at {center_hz + off[k]:.1f} Hz) is {snr_db:.1f} dB over the noise floor; need ≥ {min_snr_db:g} dB"
        )
    coarse_off = float(off[k])

    # 2. measure it: zero-padded Hann FFT per segment, Gaussian interpolation
    seg_len = n // n_segments
    if seg_len < 256:
        n_segments = max(1, n // 256)
        seg_len = n // n_segments
    nfft = 1 << int(np.ceil(np.log2(_PAD * seg_len)))
    w = np.hanning(seg_len + 2)[1:-1]  # symmetric Hann without the zero end points
    guard = 1.5 * plan.bin_hz + 2 * fs / seg_len
    freqs = scipy.fft.fftfreq(nfft, d=1.0 / fs)
    win = np.flatnonzero(np.abs(freqs - coarse_off) <= guard)
    if win.size == 0:  # pragma: no cover - guard ≥ one fine bin
        win = np.array([int(np.argmin(np.abs(freqs - coarse_off)))])
    seg_offsets = []
    for s in range(n_segments):
        seg = x[s * seg_len : (s + 1) * seg_len] * w
        spec = np.abs(scipy.fft.fft(seg, n=nfft))
        j = int(win[np.argmax(spec[win])])
        frac = _parabolic_log_peak(spec, j)
        f = frac * fs / nfft
        if f >= half:
            f -= fs
        seg_offsets.append(f)
    seg_offsets_arr = np.asarray(seg_offsets)
    offset = float(seg_offsets_arr.mean())
    noise_per_sample = floor * fs / plan.rbw_hz
    crlb = tone_crlb_hz(float(p[k]) / max(noise_per_sample, 1e-300), n_segments * seg_len, fs)
    if n_segments >= 3:
        sem = float(seg_offsets_arr.std(ddof=1) / np.sqrt(n_segments))
        unc = max(sem, crlb)
    else:
        unc = crlb + 1e-3 * fs / nfft  # interpolation bias allowance
    return ToneMeasurement(
        freq_hz=float(center_hz + offset),
        offset_hz=offset,
        uncertainty_hz=float(unc),
        crlb_hz=float(crlb),
        snr_db=snr_db,
        power_dbfs=float(10 * np.log10(max(p[k], 1e-300))),
        rbw_hz=float(plan.rbw_hz),
        n_segments=int(n_segments),
        segment_offsets_hz=tuple(float(v) for v in seg_offsets_arr),
    )
