"""estimate_symbols on synthetic bursts with known symbol rates, deviations and codings."""

from __future__ import annotations

import numpy as np
import pytest

from detector.triage import WidthCluster, cluster_widths, elementary_period_s, estimate_symbols

FS = 250e3


def _ook_pwm(unit_s: float, bits: str, carrier_hz: float = -40e3, snr_db: float = 25.0, seed: int = 1) -> np.ndarray:
    """PT2262-style PWM: 0 = 1 unit on, 3 off; 1 = 3 on, 1 off; quiet 5 ms on each side."""
    rng = np.random.default_rng(seed)
    n = int(round(unit_s * FS))
    on = []
    for b in bits:
        on += [1] * (3 * n if b == "1" else n) + [0] * (n if b == "1" else 3 * n)
    env = np.concatenate([np.zeros(int(5e-3 * FS)), np.array(on, float), np.zeros(int(5e-3 * FS))])
    t = np.arange(env.size) / FS
    noise = (rng.normal(size=env.size) + 1j * rng.normal(size=env.size)) * 10 ** (-snr_db / 20) / np.sqrt(2)
    return env * np.exp(2j * np.pi * carrier_hz * t) + noise


def _fsk(baud: float, fs: float, dev_hz: float, n_bits: int = 400, offset_hz: float = 1500.0, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, n_bits) * 2 - 1
    t = np.arange(int(n_bits / baud * fs)) / fs
    sym = bits[np.minimum((t * baud).astype(int), n_bits - 1)]
    phase = 2 * np.pi * np.cumsum(offset_hz + dev_hz * sym) / fs
    x = np.exp(1j * phase)
    return x + (rng.normal(size=x.size) + 1j * rng.normal(size=x.size)) * 0.03


def test_ook_pwm_unit_and_widths():
    est = estimate_symbols(_ook_pwm(400e-6, "0110100111010010"), FS)
    assert est.modulation == "OOK" and est.coding == "PWM"
    assert est.symbol_period_s == pytest.approx(400e-6, rel=0.03)
    assert est.symbol_rate_baud == pytest.approx(2500, rel=0.03)
    assert [c.width_s for c in est.pulse_widths] == pytest.approx([400e-6, 1200e-6], rel=0.03)
    assert est.tone_offsets_hz[0] == pytest.approx(-40e3, abs=2e3)


def test_ook_ppm_period_is_the_short_gap():
    n = int(500e-6 * FS)
    env = []
    for b in "0110100111010010":
        env += [1] * n + [0] * (2 * n if b == "0" else 4 * n)
    x = np.concatenate([np.zeros(1000), np.array(env, float), np.zeros(1000)]).astype(complex)
    x += 0.01 * np.random.default_rng(0).normal(size=x.size)
    est = estimate_symbols(x, FS)
    assert est.coding == "PPM"
    assert est.symbol_period_s == pytest.approx(1000e-6, rel=0.03)


@pytest.mark.parametrize(("baud", "fs", "dev"), [(9600.0, 50e3, 2400.0), (2400.0, 12.8e3, 900.0), (38400.0, 250e3, 20e3)])
def test_fsk_rate_and_deviation_at_fractional_samples_per_symbol(baud, fs, dev):
    est = estimate_symbols(_fsk(baud, fs, dev), fs)
    assert est.modulation == "FSK" and est.coding == "NRZ"
    assert est.symbol_rate_baud == pytest.approx(baud, rel=0.01)
    assert est.deviation_hz == pytest.approx(dev, rel=0.15)
    lo, hi = est.tone_offsets_hz
    assert 0.5 * (lo + hi) == pytest.approx(1500.0, abs=0.1 * dev)


def test_weak_ook_beside_a_strong_steady_carrier_is_found_on_its_keyed_band():
    # GT-WT-02-like: 800 µs pulses, PPM gaps 3.1/6.1 ms, 10 dB under a steady carrier 150 kHz away
    rng = np.random.default_rng(4)
    n = int(800e-6 * FS)
    env = []
    for b in "0010110100011101001":
        env += [1] * n + [0] * int((3.1e-3 if b == "0" else 6.1e-3) * FS)
    env = np.concatenate([np.zeros(2000), np.array(env, float), np.zeros(2000)])
    t = np.arange(env.size) / FS
    x = 0.1 * env * np.exp(2j * np.pi * -60e3 * t) + 0.3 * np.exp(2j * np.pi * 90e3 * t)
    x += (rng.normal(size=x.size) + 1j * rng.normal(size=x.size)) * 0.08
    est = estimate_symbols(x, FS)
    assert est.modulation == "OOK" and est.coding == "PPM"
    assert est.symbol_period_s == pytest.approx(3.1e-3, rel=0.05)
    assert est.tone_offsets_hz[0] == pytest.approx(-60e3, abs=3e3)


def test_noise_and_short_input_do_not_crash():
    rng = np.random.default_rng(3)
    noise = estimate_symbols(rng.normal(size=5000) + 1j * rng.normal(size=5000), FS)
    assert noise.modulation in ("unknown", "FSK", "OOK", "carrier")  # any verdict, no exception
    assert estimate_symbols(np.zeros(10, complex), FS).modulation == "unknown"
    assert estimate_symbols(np.zeros(1000, complex), FS).coding == "no signal"
    with pytest.raises(ValueError):
        estimate_symbols(np.zeros(100, complex), 0.0)
    with pytest.raises(ValueError):
        estimate_symbols(np.zeros((2, 100), complex), FS)


def test_cluster_rule_drops_noise_bins_and_follows_rtl433_short_width():
    widths = [500e-6] * 40 + [1500e-6] * 40 + [40e-6]  # one glitch
    clusters = cluster_widths(widths)
    assert [c.count for c in clusters] == [40, 40]
    pulses = (WidthCluster(500e-6, 40),)
    assert elementary_period_s(pulses, (WidthCluster(1e-3, 20), WidthCluster(2e-3, 20))) == (1e-3, "PPM")
    assert elementary_period_s((WidthCluster(3e-4, 5), WidthCluster(9e-4, 5)), ()) == (3e-4, "PWM")
    assert elementary_period_s(pulses, ())[1] == "single pulse"
