"""Synthetic IQ: noise, tones, NFM voice, on/off gating, RTL-SDR impairments, cu8 quantization.

Pure functions of a ``numpy.random.Generator``: the same seed gives the same samples. Levels are
dBFS of *total* power (0 dBFS = full-scale complex tone, as in :mod:`detector.dsp`).
"""

from __future__ import annotations

import numpy as np
import scipy.signal
from numpy.typing import NDArray

__all__ = ["awgn", "tone", "nfm", "gate", "iq_imbalance", "cu8_bytes", "rtl_receiver", "rtl_noise_dbfs"]


def awgn(n: int, level_dbfs: float, rng: np.random.Generator) -> NDArray[np.complex64]:
    """Complex white Gaussian noise of total power ``level_dbfs``. Shape (n,)."""
    s = np.sqrt(10 ** (level_dbfs / 10) / 2)
    return (s * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)


def tone(n: int, fs_hz: float, f_hz: float, level_dbfs: float, *, phase: float = 0.0, t0_s: float = 0.0) -> NDArray[np.complex64]:
    """Complex exponential at offset ``f_hz`` with power ``level_dbfs``. Shape (n,)."""
    t = t0_s + np.arange(n) / fs_hz
    return (10 ** (level_dbfs / 20) * np.exp(1j * (2 * np.pi * f_hz * t + phase))).astype(np.complex64)


def nfm(n: int, fs_hz: float, f_hz: float, level_dbfs: float, rng: np.random.Generator, *,
        deviation_hz: float = 2500.0, audio_band_hz: tuple[float, float] = (300.0, 3000.0)) -> NDArray[np.complex64]:
    """Narrowband FM 'voice': band-limited noise audio (300–3000 Hz) at ±``deviation_hz`` peak,
    about 11 kHz occupied (Carson), power ``level_dbfs``. Shape (n,)."""
    sos = scipy.signal.butter(4, audio_band_hz, btype="bandpass", fs=fs_hz, output="sos")
    audio = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    audio /= max(np.percentile(np.abs(audio), 99.5), 1e-12)
    audio = np.clip(audio, -1, 1)
    phase = 2 * np.pi * np.cumsum(f_hz + deviation_hz * audio) / fs_hz
    return (10 ** (level_dbfs / 20) * np.exp(1j * phase)).astype(np.complex64)


def gate(x: NDArray, fs_hz: float, intervals_s: list[tuple[float, float]]) -> NDArray:
    """Zero ``x`` outside the given (start, end) intervals (s)."""
    mask = np.zeros(x.size, dtype=bool)
    for a, b in intervals_s:
        mask[max(0, int(a * fs_hz)):max(0, int(b * fs_hz))] = True
    return np.where(mask, x, 0).astype(x.dtype)


def iq_imbalance(x: NDArray, gain_db: float, phase_deg: float) -> NDArray[np.complex64]:
    """Receiver IQ imbalance y = μx + νx*, μ = (1 + g·e^{−jφ})/2, ν = (1 − g·e^{jφ})/2 (SCENES.md §3.6)."""
    g = 10 ** (gain_db / 20)
    phi = np.deg2rad(phase_deg)
    mu = (1 + g * np.exp(-1j * phi)) / 2
    nu = (1 - g * np.exp(1j * phi)) / 2
    return (mu * x + nu * np.conj(x)).astype(np.complex64)


def cu8_bytes(x: NDArray, *, dc_lsb: tuple[float, float] = (0.0, 0.0)) -> NDArray[np.uint8]:
    """Quantize to RTL-SDR cu8 (zero 127.5, full scale 127.5 LSB) with clipping and a DC offset in LSB.

    Returns interleaved uint8 of shape (2n,).
    """
    inter = np.empty(2 * x.size, dtype=np.float64)
    inter[0::2] = x.real * 127.5 + 127.5 + dc_lsb[0]
    inter[1::2] = x.imag * 127.5 + 127.5 + dc_lsb[1]
    return np.clip(np.round(inter), 0, 255).astype(np.uint8)


def rtl_noise_dbfs(sample_rate_hz: float, gain_db: float = 40.0) -> float:
    """Thermal noise (dBFS, total over ``sample_rate_hz``) of the simulated RTL-SDR at ``gain_db``: kTB
    with NF(G) = 3.7 + 0.8·(49.6 − G) dB (floor 3.7 dB) over the full scale of −22 − G dBm
    (SCENES.md §3.6; the same as :class:`~detector.sim.sdr.SimSDR`)."""
    nf = max(3.7, 3.7 + 0.8 * (49.6 - gain_db))
    return float(-174.0 + nf + 10 * np.log10(sample_rate_hz) + 22.0 + gain_db)


def rtl_receiver(x: NDArray, *, iq_gain_db: float = 0.3, iq_phase_deg: float = 2.0,
                 dc_lsb: tuple[float, float] = (1.5, -1.0)) -> NDArray[np.complex64]:
    """``x`` through the simulated RTL-SDR's impairments, as :class:`~detector.sim.sdr.SimSDR` applies
    them (defaults: its receiver's): IQ imbalance, then 8-bit cu8 quantization with clipping and a
    DC offset, back to complex64 (the samples a dongle's driver hands over)."""
    from detector.dsp import cu8_to_complex64

    return cu8_to_complex64(cu8_bytes(iq_imbalance(x, iq_gain_db, iq_phase_deg), dc_lsb=dc_lsb))
