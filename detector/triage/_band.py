"""Where in the slice the burst is: its band, from short-time spectra (pure, ``_symbols`` uses it)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = ["modulated_band", "channel", "mix_filter", "keyed_band"]


def modulated_band(x: NDArray[np.complex128], fs: float) -> tuple[float, float]:
    """(centre, width) in Hz of the band whose power changes most over the slice.

    Short-time spectra (64-point Hann, half overlap); each bin's score is the standard deviation
    of its power over time, so a steady emission beside the burst scores low. The band is the
    contiguous run of bins within 20 dB of the best score; a second such run whose power moves
    against the first (correlation < −0.2: the other tone of a wide 2-FSK) joins it.
    """
    nper = 64 if x.size >= 256 else max(16, x.size // 4)
    f, _t, s = signal.spectrogram(x, fs=fs, nperseg=nper, noverlap=nper // 2, return_onesided=False,
                                  detrend=False, mode="psd")
    order = np.argsort(f)
    f, s = f[order], s[order]
    score = s.std(axis=1)
    dc = int(np.argmin(np.abs(f)))
    score[dc] = 0.5 * (score[max(dc - 1, 0)] + score[min(dc + 1, score.size - 1)])
    floor = score.max() / 100.0
    good = score >= floor

    def run_around(k: int) -> tuple[int, int]:
        lo = hi = k
        while lo > 0 and good[lo - 1]:
            lo -= 1
        while hi < good.size - 1 and good[hi + 1]:
            hi += 1
        return lo, hi

    k = int(np.argmax(score))
    lo, hi = run_around(k)
    p1 = s[lo:hi + 1].sum(axis=0)
    rest = score.copy()
    rest[lo:hi + 1] = 0
    while rest.max() >= floor and p1.std() > 0:
        k2 = int(np.argmax(rest))
        lo2, hi2 = run_around(k2)
        p2 = s[lo2:hi2 + 1].sum(axis=0)
        if p2.std() > 0 and np.corrcoef(p1, p2)[0, 1] < -0.2:
            lo, hi = min(lo, lo2), max(hi, hi2)
            break
        rest[lo2:hi2 + 1] = 0
    df = fs / nper
    if (f[hi] - f[lo]) + df > 0.8 * fs:  # nothing stands out over time: the PSD peak's 10 dB band
        p = s.mean(axis=1)
        p[dc] = 0.5 * (p[max(dc - 1, 0)] + p[min(dc + 1, p.size - 1)])
        k = int(np.argmax(p))
        lo = hi = k
        while lo > 0 and p[lo - 1] >= p[k] / 10:
            lo -= 1
        while hi < p.size - 1 and p[hi + 1] >= p[k] / 10:
            hi += 1
    return 0.5 * (f[lo] + f[hi]), (f[hi] - f[lo]) + df


def channel(x: NDArray[np.complex128], fs: float) -> tuple[NDArray[np.complex128], float, float]:
    """The burst mixed to its band centre and low-pass filtered (cut-off 0.75 × the band width, so
    1.5 × the band passes; at least fs/10, at 250 kHz rtl_433's 25 kHz); (samples, centre Hz, band Hz)."""
    centre, width = modulated_band(x, fs)
    return mix_filter(x, fs, centre, max(0.75 * width, 0.1 * fs)), centre, width


def mix_filter(x: NDArray[np.complex128], fs: float, centre_hz: float, cutoff_hz: float) -> NDArray[np.complex128]:
    """``x`` mixed down by ``centre_hz`` and low-passed at ``cutoff_hz`` (4th-order Butterworth,
    forward-backward: no delay); no filter when the cut-off is at or above 0.45 fs."""
    y = x * np.exp(-2j * np.pi * centre_hz * np.arange(x.size) / fs)
    if cutoff_hz < 0.45 * fs:
        y = signal.sosfiltfilt(signal.butter(4, cutoff_hz, fs=fs, output="sos"), y)
    return y


def keyed_band(x: NDArray[np.complex128], fs: float, nper: int = 256) -> tuple[float, float, float]:
    """(centre, width, score) of the band whose *log* power varies most over the slice.

    Noise alone gives each bin's 10·log10 power a standard deviation of 5.6 dB (an exponential
    variable), a steady carrier less, a keyed carrier more, whatever its level: so a weak OOK
    burst beside a stronger steady emission is found. The band is the contiguous run of bins whose
    score is above the midpoint of the best and the median score; ``score`` is the best, dB.
    """
    nper = min(nper, max(16, x.size // 8))
    f, _t, s = signal.spectrogram(x, fs=fs, nperseg=nper, noverlap=nper // 2, return_onesided=False,
                                  detrend=False, mode="psd")
    order = np.argsort(f)
    f, s = f[order], s[order]
    score = (10 * np.log10(s + 1e-30)).std(axis=1)
    dc = int(np.argmin(np.abs(f)))
    score[dc] = np.median(score)
    k = int(np.argmax(score))
    good = score >= 0.5 * (score[k] + np.median(score))
    lo = hi = k
    while lo > 0 and good[lo - 1]:
        lo -= 1
    while hi < good.size - 1 and good[hi + 1]:
        hi += 1
    return 0.5 * (f[lo] + f[hi]), (f[hi] - f[lo]) + fs / nper, float(score[k])
