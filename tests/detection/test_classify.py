"""The classifier on tracks the real engine builds from synthetic IQ at 1.024 MS/s (1 kHz bins),
with its decision features: the two-tone test (FSK), the carrier-line test (OOK, CW), bandwidth
and burst statistics. ``test_rules.test_classification`` covers the end class at 250 kS/s; this
covers the features behind it, the wideband class and the rule order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detector.detection._classify import CLASSES, _carrier_line, _two_tones, classify_track
from detector.detection._tracking import Track
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.sim import awgn, gate, nfm, tone
from tests._helpers import run_iq

FS = 1.024e6
CENTER = 446.05e6
F = 100e3  # every emission at +100 kHz
N = int(2.0 * FS)
FRAME = 20 * 512 / FS  # default framing at 1.024 MS/s: 20 half-overlapped 1024-point segments


def engine_tracks(signal, *, seed=1, cfg=EngineConfig()):
    """Confirmed tracks of 2 s of −30 dBFS noise plus ``signal``, after ``finish``."""
    x = awgn(N, -30.0, np.random.default_rng(seed)) + signal
    eng = DetectionEngine(cfg)
    run_iq(eng, x, FS, CENTER, block=1 << 17)
    return [tr for tr in eng.all_tracks.values() if tr.confirmed]


def fsk(rng, *, dev_hz=5e3, baud=4800.0, level=-40.0):
    sps = int(FS / baud)
    bits = rng.integers(0, 2, N // sps + 1) * 2 - 1
    inst = F + dev_hz * bits[np.arange(N) // sps]
    return (10 ** (level / 20) * np.exp(2j * np.pi * np.cumsum(inst) / FS)).astype(np.complex64)


def ook(rng, *, chip_s=1e-3, level=-30.0):
    c = int(chip_s * FS)
    keys = np.repeat(rng.integers(0, 2, N // c + 1), c)[:N]
    return tone(N, FS, F, level) * keys


def band_noise(rng, width_hz, level=-20.0, f=150e3):
    """Noise-like emission, flat over ``width_hz`` about ``f`` (an OFDM-like block)."""
    X = np.fft.fft(rng.standard_normal(N) + 1j * rng.standard_normal(N))
    X[np.abs(np.fft.fftfreq(N, 1 / FS) - f) > width_hz / 2] = 0
    y = np.fft.ifft(X)
    return (y * 10 ** (level / 20) / np.sqrt(np.mean(np.abs(y) ** 2))).astype(np.complex64)


def test_steady_tone_is_a_carrier_with_a_dominant_line():
    (tr,) = engine_tracks(tone(N, FS, F, -45.0))
    assert tr.classification == classify_track(tr) == "carrier"
    assert tr.center_hz - CENTER == pytest.approx(F, abs=FS / 1024)
    assert tr.bandwidth_hz <= 5 * tr.spectrum_bin_hz  # the Hann main lobe, not a modulation
    assert tr.bursts == 1 and tr.on_time_s >= 1.0 and tr.duty_cycle == pytest.approx(1.0, abs=0.02)
    assert _carrier_line(tr) and not _two_tones(tr)


def test_nfm_voice_in_a_12_5_khz_channel():
    rng = np.random.default_rng(2)
    (tr,) = engine_tracks(gate(nfm(N, FS, F, -40.0, rng), FS, [(0.3, 1.8)]))
    assert tr.classification == "nfm_voice"
    assert 6e3 <= tr.bandwidth_hz <= 12.5e3  # inside its channel, and in the classifier's 6–16 kHz
    assert tr.bursts == 1 and tr.burst_durations_s == [pytest.approx(1.5, abs=2 * FRAME)]
    assert abs(tr.first_seen_s - 0.3) <= FRAME
    assert not _two_tones(tr)


def test_2fsk_bursts_show_two_tones_either_side_of_a_dip():
    rng = np.random.default_rng(3)
    starts = np.arange(0.2, 1.9, 0.4)  # 5 packets of 100 ms, ±5 kHz at 4.8 kbit/s
    (tr,) = engine_tracks(gate(fsk(rng), FS, [(t, t + 0.1) for t in starts]))
    assert tr.classification == "fsk_data"
    assert _two_tones(tr) and not _carrier_line(tr)
    assert tr.bursts == 5
    assert tr.burst_starts == pytest.approx(list(starts), abs=FRAME)
    assert tr.burst_durations_s == pytest.approx([0.1] * 5, abs=2 * FRAME)
    assert tr.burst_period_s == pytest.approx(0.4, abs=FRAME)
    # the tones are ±5 kHz about the carrier: the held spectrum's two maxima are ~10 kHz apart
    s = tr.spectrum_lin
    c = int(round((F + CENTER - tr.spectrum_f0_hz) / tr.spectrum_bin_hz))
    lo, hi = int(np.argmax(s[:c])), c + 1 + int(np.argmax(s[c + 1:]))
    assert (hi - lo) * tr.spectrum_bin_hz == pytest.approx(10e3, abs=2 * tr.spectrum_bin_hz)


def test_ook_pulses_are_a_keyed_carrier():
    rng = np.random.default_rng(4)
    starts = np.arange(0.2, 1.9, 0.5)  # 4 packets of 150 ms of 1 ms random chips
    (tr,) = engine_tracks(gate(ook(rng), FS, [(t, t + 0.15) for t in starts]))
    assert tr.classification == "pulsed"
    assert _carrier_line(tr) and not _two_tones(tr)
    assert tr.bursts == 4 and tr.burst_durations_s == pytest.approx([0.15] * 4, abs=2 * FRAME)
    assert tr.center_hz - CENTER == pytest.approx(F, abs=FS / 1024)
    # the carrier line decides: without the held spectrum the same bursts read as narrow data
    assert classify_track(replace(tr, spectrum_lin=None)) == "fsk_data"


@pytest.mark.parametrize("width_hz, expected", [(160e3, "wideband"), (100e3, "unknown")])
def test_wideband_is_150_khz_or_more_of_occupied_bandwidth(width_hz, expected):
    """At 2 kHz bins (the CFAR window spans 258 kHz)."""
    rng = np.random.default_rng(5)
    (tr,) = engine_tracks(gate(band_noise(rng, width_hz), FS, [(0.3, 1.8)]), cfg=EngineConfig(bin_hz=2000.0))
    assert tr.bandwidth_hz == pytest.approx(width_hz, rel=0.1)
    assert tr.center_hz - CENTER == pytest.approx(150e3, abs=2e3)
    assert tr.classification == expected


@pytest.mark.xfail(strict=True, reason=(
    "bug: at the default 1 kHz bins the OS-CFAR window (129 bins ≈ 126 kHz, robust while ≤ 70 % occupied) "
    "cannot hold a ≥ 150 kHz emission: the floor rises inside it, the emission is cut into its edges and "
    "measured ~80–90 kHz wide, so the documented `wideband` class (≥ 150 kHz) is never reached"))
def test_a_160_khz_noise_like_emission_is_wideband_at_the_default_resolution():
    rng = np.random.default_rng(5)
    (tr,) = engine_tracks(gate(band_noise(rng, 160e3), FS, [(0.3, 1.8)]))
    assert tr.bandwidth_hz >= 150e3
    assert tr.classification == "wideband"


# --- the rules' order and limits on hand-made tracks ---------------------------------------------
def track(*, bw, bursts=((0.0, 2.0),), ended=True, n_runs=1, span=None, frame_s=0.01):
    """A track of ``bursts`` (start, end) s, all frames active, ``bw`` occupied, no held spectrum."""
    starts = [a for a, _ in bursts]
    ends = [b for _, b in bursts]
    active = int(round(sum(b - a for a, b in bursts) / frame_s))
    span = bw if span is None else span
    return Track(track_id="T1", f_lo_hz=-span / 2, f_hi_hz=span / 2, first_seen_s=starts[0],
                 last_seen_s=ends[-1] - frame_s, frame_s=frame_s, bandwidth_hz=bw, frames_active=active,
                 bursts=len(bursts), burst_starts=starts, burst_ends=ends if ended else ends[:-1],
                 n_runs_max=n_runs, ended=ended, spectrum_bin_hz=1000.0)


def test_rule_order_on_hand_made_tracks():
    short = tuple((t, t + 0.1) for t in (0.0, 0.5, 1.0))
    assert classify_track(track(bw=200e3, bursts=short, n_runs=5)) == "wideband"  # width first
    assert classify_track(track(bw=150e3)) == "wideband" and classify_track(track(bw=149e3)) == "unknown"
    assert classify_track(track(bw=10e3, bursts=short, n_runs=3)) == "pulsed"  # short and keyed (3 runs)
    assert classify_track(track(bw=10e3, bursts=short, span=45e3)) == "pulsed"  # span ≥ 4× occupied
    assert classify_track(track(bw=10e3, bursts=short)) == "fsk_data"  # short, narrow, not keyed
    assert classify_track(track(bw=40e3, bursts=short)) == "unknown"  # short but wider than 30 kHz
    assert classify_track(track(bw=10e3)) == "nfm_voice"
    assert classify_track(track(bw=10e3, bursts=((0.0, 0.4),))) == "fsk_data"  # < 0.5 s, narrow
    assert classify_track(track(bw=10e3, bursts=((0.0, 0.8),))) == "unknown"  # 0.5–1 s: neither data nor voice
    assert classify_track(track(bw=3e3)) == "carrier" and classify_track(track(bw=5e3)) == "carrier"  # ≤ 5 bins
    assert classify_track(track(bw=3e3, bursts=((0.0, 0.9),), ended=False)) == "unknown"  # < 1 s on, still on
    assert classify_track(track(bw=20e3)) == "unknown"  # 16–150 kHz, long: no rule


def test_a_first_burst_still_on_the_air_is_not_short():
    on = track(bw=10e3, bursts=((0.0, 0.3),), ended=False)
    assert on.burst_ends == [] and classify_track(on) == "unknown"
    assert classify_track(track(bw=10e3, bursts=((0.0, 0.3),), ended=True)) == "fsk_data"


def test_every_class_is_listed():
    assert set(CLASSES) == {"carrier", "nfm_voice", "fsk_data", "pulsed", "wideband", "unknown"}
