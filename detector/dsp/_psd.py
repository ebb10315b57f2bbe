"""Framed Welch power spectra on ``scipy.fft``.

One core, :func:`_segment_powers`, cuts a block into windowed, overlapping segments (a strided
view, no Python loop), takes one batched FFT and returns |X|² per segment; the public functions
average those periodograms over the whole block (:func:`welch_psd`), over frames of a chosen
number of segments (:func:`frame_psd_stack`), or keep them all (:func:`spectrogram`).

The result equals ``scipy.signal.welch(x, fs, window, nperseg=nfft, noverlap, detrend=False,
return_onesided=False, scaling="spectrum")`` (tested), fft-shifted so frequency ascends, and is
several times faster (issue #10).

References
----------
.. [1] P. D. Welch, "The use of fast Fourier transform for the estimation of power spectra",
       IEEE Trans. Audio Electroacoust. 15(2), 1967.
.. [2] G. Heinzel, A. Rüdiger, R. Schilling, "Spectrum and spectral density estimation by the DFT",
       MPI Hannover, 2002 (ENBW, window normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.fft
import scipy.signal
from numpy.typing import NDArray

__all__ = [
    "default_nfft",
    "PsdPlan",
    "make_plan",
    "framed_psd",
    "welch_psd",
    "frame_psd_stack",
    "spectrogram",
    "power_to_db",
    "dc_bins",
    "interpolate_dc",
]

#: Power floor (linear, full-scale units) used when converting to dB: -300 dBFS, never -inf.
_POWER_FLOOR = 1e-30


@dataclass(frozen=True, eq=False)
class PsdPlan:
    """Everything fixed for a run of framed PSDs at one sample rate and FFT size.

    Attributes
    ----------
    sample_rate_hz : float
    nfft : int
        Segment (FFT) length in samples.
    step : int
        Hop between segment starts in samples (``nfft − overlap``).
    window : ndarray of float32, shape (nfft,)
    scale : float
        ``1/sum(window)²``: makes a bin read the power of a complex tone ("spectrum" scaling).
    rbw_hz : float
        Equivalent noise bandwidth of a bin, ``fs·Σw²/(Σw)²`` (Hann: 1.5·fs/nfft).
    offsets_hz : ndarray of float64, shape (nfft,)
        Bin center offsets from the tuned center, ascending (fft-shifted).
    looks_per_segment : float
        Independent looks contributed by each overlapped segment (Hann, 50 %: 0.947; THEORY §1.1).
    """

    sample_rate_hz: float
    nfft: int
    step: int
    window: NDArray[np.float32]
    scale: float
    rbw_hz: float
    offsets_hz: NDArray[np.float64]
    looks_per_segment: float
    window_name: str

    @property
    def bin_hz(self) -> float:
        """Spacing of the bins (Hz), ``fs/nfft``."""
        return self.sample_rate_hz / self.nfft

    def segments_in(self, n_samples: int) -> int:
        """How many complete segments ``n_samples`` holds."""
        return 0 if n_samples < self.nfft else 1 + (n_samples - self.nfft) // self.step


def _looks_per_segment(window: np.ndarray, step: int) -> float:
    """Effective independent looks per segment for overlapped segments (Welch 1967, eq. for ρ)."""
    n = window.size
    w2 = window.astype(np.float64) ** 2
    denom = float(np.sum(w2)) ** 2
    corr = 0.0
    lag = step
    while lag < n:
        rho = float(np.sum(w2[lag:] * w2[: n - lag])) / denom
        corr += 2.0 * rho
        lag += step
    return 1.0 / (1.0 + corr)


def make_plan(
    sample_rate_hz: float,
    *,
    nfft: int | None = None,
    rbw_hz: float | None = None,
    window: str = "hann",
    overlap: float = 0.5,
) -> PsdPlan:
    """Build a :class:`PsdPlan` from either an FFT size or a wanted RBW.

    Parameters
    ----------
    sample_rate_hz : float
        Complex sample rate, > 0.
    nfft : int, optional
        Segment length; if omitted it is the smallest power of two whose RBW is ≤ ``rbw_hz``
        (default RBW when both are omitted: fs/683, i.e. nfft = 1024 for Hann).
    rbw_hz : float, optional
        Wanted resolution bandwidth (Hz).
    window : str
        Any window ``scipy.signal.get_window`` knows (periodic form, as Welch uses).
    overlap : float
        Fraction of overlap between segments, 0 ≤ overlap < 1.

    Raises
    ------
    ValueError
        Non-positive rate, an RBW the rate cannot give, or an overlap outside [0, 1).
    """
    if not sample_rate_hz > 0:
        raise ValueError(f"sample rate must be > 0 Hz, got {sample_rate_hz}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if nfft is None:
        if rbw_hz is None:
            nfft = 1024
        else:
            if not rbw_hz > 0:
                raise ValueError(f"RBW must be > 0 Hz, got {rbw_hz}")
            probe = scipy.signal.get_window(window, 4096, fftbins=True)
            enbw_bins = 4096 * float(np.sum(probe**2)) / float(np.sum(probe)) ** 2
            need = enbw_bins * sample_rate_hz / rbw_hz
            nfft = int(2 ** max(4, int(np.ceil(np.log2(need)))))
    if nfft < 8 or nfft > 2**22:
        raise ValueError(f"FFT size must be within 8..4194304, got {nfft}")
    w = scipy.signal.get_window(window, nfft, fftbins=True).astype(np.float64)
    step = max(1, int(round(nfft * (1.0 - overlap))))
    s1 = float(np.sum(w))
    rbw = sample_rate_hz * float(np.sum(w**2)) / s1**2
    offsets = scipy.fft.fftshift(scipy.fft.fftfreq(nfft, d=1.0 / sample_rate_hz))
    return PsdPlan(
        sample_rate_hz=float(sample_rate_hz),
        nfft=int(nfft),
        step=step,
        window=w.astype(np.float32),
        scale=1.0 / s1**2,
        rbw_hz=rbw,
        offsets_hz=offsets.astype(np.float64),
        looks_per_segment=_looks_per_segment(w, step),
        window_name=window,
    )


def _segment_powers(samples: NDArray[np.complex64], plan: PsdPlan, n_segments: int | None = None) -> NDArray[np.float32]:
    """|FFT|² of each windowed segment, *unshifted*, scaled to power per bin. Shape (n_seg, nfft)."""
    x = np.asarray(samples)
    if x.dtype != np.complex64:
        x = x.astype(np.complex64)
    n_seg = plan.segments_in(x.size) if n_segments is None else n_segments
    if n_seg <= 0:
        return np.empty((0, plan.nfft), dtype=np.float32)
    view = np.lib.stride_tricks.as_strided(
        x, shape=(n_seg, plan.nfft), strides=(x.strides[0] * plan.step, x.strides[0]), writeable=False
    )
    seg = view * plan.window  # complex64 copy
    spec = scipy.fft.fft(seg, axis=-1, overwrite_x=True)
    # |X|² through np.abs (a vectorised hypot): measured ~20× faster here than re² + im² on the
    # strided real/imag views of a complex64 array
    p = np.abs(spec)
    p *= p
    p *= np.float32(plan.scale)
    return p


def framed_psd(samples: NDArray[np.complex64], plan: PsdPlan) -> NDArray[np.float32]:
    """Periodogram of every segment, fft-shifted: linear power per bin, shape (n_segments, nfft).

    Segments start every ``plan.step`` samples; a tail shorter than ``nfft`` is not used.
    """
    return scipy.fft.fftshift(_segment_powers(samples, plan), axes=-1)


def welch_psd(samples: NDArray[np.complex64], plan: PsdPlan) -> NDArray[np.float64]:
    """Welch average over the whole block: linear power per bin, float64 shape (nfft,), ascending.

    Raises ``ValueError`` when the block is shorter than one segment.
    """
    p = _segment_powers(samples, plan)
    if p.shape[0] == 0:
        raise ValueError(f"block of {np.asarray(samples).size} samples is shorter than one FFT segment ({plan.nfft})")
    return scipy.fft.fftshift(p.mean(axis=0, dtype=np.float64))


def frame_psd_stack(
    samples: NDArray[np.complex64], plan: PsdPlan, segments_per_frame: int
) -> NDArray[np.float32]:
    """Average consecutive groups of ``segments_per_frame`` periodograms into frames.

    Returns linear power per bin, float32, shape (n_frames, nfft), frequency ascending; samples
    after the last complete frame are not used (the caller carries them to the next block: frame
    ``k`` starts at sample ``k·segments_per_frame·step``).
    """
    if segments_per_frame < 1:
        raise ValueError(f"segments_per_frame must be ≥ 1, got {segments_per_frame}")
    n_seg = plan.segments_in(np.asarray(samples).size)
    n_frames = n_seg // segments_per_frame
    if n_frames == 0:
        return np.empty((0, plan.nfft), dtype=np.float32)
    p = _segment_powers(samples, plan, n_frames * segments_per_frame)
    p = p.reshape(n_frames, segments_per_frame, plan.nfft).mean(axis=1)
    return scipy.fft.fftshift(p, axes=-1).astype(np.float32, copy=False)


def spectrogram(
    samples: NDArray[np.complex64], plan: PsdPlan
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32]]:
    """Spectrogram for waterfalls: ``(times_s, offsets_hz, power)``.

    ``times_s`` (n_seg,) are segment centers from sample 0, ``offsets_hz`` (nfft,) bin offsets
    from the tuned center, ``power`` (n_seg, nfft) linear power per bin, time-major (the transpose
    of ``scipy.signal.spectrogram``'s layout).
    """
    p = framed_psd(samples, plan)
    t = cast(NDArray[np.float64], (np.arange(p.shape[0]) * plan.step + plan.nfft / 2) / plan.sample_rate_hz)
    return t, plan.offsets_hz.copy(), p


def power_to_db(power: NDArray) -> NDArray[np.float32]:
    """Linear power → dB (float32), with a −300 dB floor instead of −inf for zero power."""
    return (10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), _POWER_FLOOR))).astype(np.float32)


def dc_bins(offsets_hz: NDArray[np.float64], *, half_width_bins: int = 1) -> NDArray[np.intp]:
    """Indices of the bins of the DC spike: the bin nearest 0 Hz offset and ``half_width_bins`` each side."""
    k0 = int(np.argmin(np.abs(offsets_hz)))
    lo = max(0, k0 - half_width_bins)
    hi = min(offsets_hz.size, k0 + half_width_bins + 1)
    return np.arange(lo, hi, dtype=np.intp)


def interpolate_dc(power: NDArray, offsets_hz: NDArray[np.float64], *, half_width_bins: int = 1) -> NDArray:
    """Replace the DC-spike bins by a linear interpolation between their neighbours (last axis).

    Works on (nfft,) or (n_frames, nfft) arrays in linear power or dB; returns a new array.
    """
    out = np.array(power, copy=True)
    idx = dc_bins(offsets_hz, half_width_bins=half_width_bins)
    lo, hi = idx[0] - 1, idx[-1] + 1
    if lo < 0 or hi >= offsets_hz.size:
        return out
    frac = (idx - lo) / (hi - lo)
    out[..., idx] = out[..., [lo]] * (1 - frac) + out[..., [hi]] * frac
    return out


def default_nfft(sample_rate_hz: float, bin_hz: float = 1000.0) -> int:
    """Smallest power-of-two FFT whose bin spacing is ≤ ``bin_hz`` (≈ 1 kHz bins by default)."""
    return int(2 ** max(6, int(np.ceil(np.log2(sample_rate_hz / bin_hz)))))
