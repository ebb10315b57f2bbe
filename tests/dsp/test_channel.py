"""The channel power of a spectrum against analytic cases: white noise reads N0·B, a tone its power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector.dsp import channel_bins, channel_power_db, make_plan, welch_psd

FS = 250e3


def spectrum(x, center_hz, nfft, window="hann"):
    """(freqs_hz, power dB per RBW bin, rbw_hz) of ``x``, as the frame stream makes them."""
    plan = make_plan(FS, nfft=nfft, window=window, overlap=0.5)
    return center_hz + plan.offsets_hz, 10 * np.log10(np.maximum(welch_psd(x, plan), 1e-30)), plan.rbw_hz


def test_white_noise_reads_its_density_times_the_channel_width():
    rng = np.random.default_rng(3)
    sigma2 = 1e-4  # total power over FS
    x = (rng.normal(size=1 << 20) + 1j * rng.normal(size=1 << 20)).astype(np.complex64) * math.sqrt(sigma2 / 2)
    f, p, rbw = spectrum(x, 100e6, 1024)
    b = 25e3
    got = channel_power_db(f, p, rbw, 100e6 + 40e3, b)
    n = channel_bins(f, 100e6 + 40e3, b).size
    expect = 10 * math.log10(sigma2 * n * FS / 1024 / FS)  # N0 · (bins × bin width)
    assert got == pytest.approx(expect, abs=0.1)
    assert n == 103  # bins within ±12.5 kHz at 244.14 Hz spacing
    # the same noise through another FFT size and window reads the same channel power
    f2, p2, rbw2 = spectrum(x, 100e6, 4096, "blackmanharris")
    got2 = channel_power_db(f2, p2, rbw2, 100e6 + 40e3, b)
    assert got2 == pytest.approx(got, abs=0.15)


def test_a_tone_reads_its_power_and_outside_the_channel_nothing_of_it():
    n = 1 << 18
    t = np.arange(n) / FS
    a = 0.01  # −40 dBFS
    x = (a * np.exp(2j * np.pi * 30e3 * t)).astype(np.complex64)
    f, p, rbw = spectrum(x, 0.0, 2048)
    assert channel_power_db(f, p, rbw, 30e3, 12.5e3) == pytest.approx(-40.0, abs=0.05)
    assert channel_power_db(f, p, rbw, -60e3, 12.5e3) < -100


def test_analytic_flat_spectrum_and_edges():
    f = np.arange(100) * 100.0  # 100 Hz bins
    p = np.full(100, -50.0)
    # 11 bins of 1e-5 each, × bin/RBW = 100/150
    assert channel_power_db(f, p, 150.0, 5000.0, 1000.0) == pytest.approx(10 * math.log10(11e-5 * 100 / 150))
    assert math.isnan(channel_power_db(f, p, 150.0, 20000.0, 1000.0))  # not in the spectrum
    assert channel_bins(f, 5020.0, 10.0).tolist() == [50]  # narrower than a bin: the nearest
    p[50] = np.nan  # a bin without a value: the others stand in for it
    assert channel_power_db(f, p, 150.0, 5000.0, 1000.0) == pytest.approx(10 * math.log10(11e-5 * 100 / 150))
    with pytest.raises(ValueError):
        channel_power_db(f, p[:5], 150.0, 5000.0, 1000.0)
