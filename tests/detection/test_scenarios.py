"""Issue #3 scenarios on synthetic cu8 IQ: baseline suppression, artefacts, false alarms."""

from __future__ import annotations

import numpy as np
import pytest

from detector.dsp import cu8_to_complex64
from detector.engine import DetectionEngine, EngineConfig
from detector.sim import awgn, cu8_bytes, gate, iq_imbalance, nfm, tone
from detector.types import IQBlock

FS = 250e3
CENTER = 446.05e6
NOISE_DBFS = -30.0  # total noise power: a few LSB rms, like a real dongle at moderate gain


def as_cu8(x, dc=(0.0, 0.0)):
    return cu8_to_complex64(cu8_bytes(x, dc_lsb=dc))


def run(engine, x, fs=FS, center=CENTER, block=1 << 16):
    events = []
    for i in range(0, x.size, block):
        events += engine.process_block(IQBlock(x[i:i + block], center, fs, offset_s=i / fs, retuned=i == 0))
    return events + engine.finish()


def alerted(events):
    return {e["track_id"]: e for e in events if e["alert"]}


def site_iq(seconds, rng, *, burst=None):
    """Noise + a steady carrier at +50 kHz + a licensed channel at −40 kHz (on 30 % of the time)."""
    n = int(seconds * FS)
    x = awgn(n, NOISE_DBFS, rng)
    x += tone(n, FS, 50e3, -35.0)
    calls = [(t, t + 1.5) for t in np.arange(0.5, seconds, 5.0)]
    x += gate(nfm(n, FS, -40e3, -38.0, rng), FS, calls)
    if burst is not None:
        f, t_on, t_off = burst
        x += gate(nfm(n, FS, f, -40.0, rng), FS, [(t_on, t_off)])
    return as_cu8(x)


def test_cfar_only_alerts_on_a_burst_in_noise():
    rng = np.random.default_rng(1)
    n = int(4 * FS)
    x = as_cu8(awgn(n, NOISE_DBFS, rng) + gate(nfm(n, FS, 20e3, -36.0, rng), FS, [(1.0, 3.0)]))
    ev = alerted(run(DetectionEngine(EngineConfig()), x))
    assert len(ev) == 1
    (e,) = ev.values()
    assert e["center_hz"] - CENTER == pytest.approx(20e3, abs=2e3)
    assert 6e3 <= e["bandwidth_hz"] <= 16e3
    assert e["first_seen_s"] == pytest.approx(1.0, abs=0.05)


def test_dc_offset_and_iq_imbalance_noise_gives_no_alert():
    rng = np.random.default_rng(2)
    n = int(6 * FS)
    x = iq_imbalance(awgn(n, NOISE_DBFS, rng), 1.0, 3.0)
    x = as_cu8(x, dc=(3.0, -2.0))
    assert alerted(run(DetectionEngine(EngineConfig()), x)) == {}


def test_iq_image_of_strong_tone_not_alerted_but_real_weak_tone_is():
    fs = 1.024e6
    rng = np.random.default_rng(3)
    n = int(2 * fs)
    strong = iq_imbalance(awgn(n, NOISE_DBFS, rng) + tone(n, fs, 300e3, -6.0), 1.5, 4.0)
    ev = alerted(run(DetectionEngine(EngineConfig()), as_cu8(strong), fs=fs))
    offsets = sorted(round((e["center_hz"] - CENTER) / 1e3) for e in ev.values())
    assert offsets == [300]  # the image at −300 kHz (≈ 20 dB down) is rejected
    weak = awgn(n, NOISE_DBFS, rng) + tone(n, fs, -300e3, -26.0)
    ev = alerted(run(DetectionEngine(EngineConfig()), as_cu8(weak), fs=fs))
    offsets = sorted(round((e["center_hz"] - CENTER) / 1e3) for e in ev.values())
    assert offsets == [-300]
