"""The live view: latest spectrum, its JSON cache, the waterfall ring."""

from __future__ import annotations

import json

import numpy as np

from detector.core.types import Spectrum
from detector.pipeline.live import LiveView, SpectrumJsonCache, Waterfall


def spec(offset_s, f0=1e6, m=4, level=-50.0):
    return Spectrum(f0 + np.arange(m) * 1e3, np.full(m, level, np.float32), rbw_hz=1e3, offset_s=offset_s, center_hz=f0)


class Result:
    noise_floor_dbfs = -60.0
    emissions = []


class FakeEngine:
    baseline = None

    def __init__(self):
        self.last_spectrum = None
        self.last_result = Result()
        self.frames_processed = 0

    def calibrated_spectrum(self):
        return self.last_spectrum


def test_nothing_before_the_first_frame():
    live = LiveView(FakeEngine())
    live.update()
    assert live.latest is None and live.spectrum() is None and live.spectrum_json() is None
    assert live.waterfall.view() is None


def test_the_latest_spectrum_and_its_json_cached_per_frame():
    eng = FakeEngine()
    live = LiveView(eng)
    eng.last_spectrum, eng.frames_processed = spec(1.0, level=-50.123), 1
    live.update()
    out = live.spectrum()
    assert out["power"] == [-50.12] * 4 and out["unit"] == "dBFS" and out["noise_floor_dbfs"] == -60.0
    assert out["noise_floor_dbm"] is None and out["baseline"] is None and out["emissions"] == []
    body = live.spectrum_json()
    assert json.loads(body) == out and live.spectrum_json() is body  # the same frame: the same bytes
    eng.last_spectrum, eng.frames_processed = spec(1.1, level=-40.0), 2
    live.update()
    assert json.loads(live.spectrum_json())["power"] == [-40.0] * 4


def test_the_json_cache_renders_once_per_snapshot():
    calls = []
    cache = SpectrumJsonCache()
    snap = {"spectrum": object()}
    render = lambda s: calls.append(1) or {"a": 1}  # noqa: E731
    assert cache.get(snap, render) == b'{"a":1}' and cache.get(snap, render) == b'{"a":1}' and len(calls) == 1
    cache.get({"spectrum": object()}, render)
    assert len(calls) == 2


def test_the_waterfall_keeps_one_frame_in_every_and_the_current_grid():
    wf = Waterfall(every=10, maxlen=5)
    kept = [wf.offer(n, spec(n * 0.01)) for n in range(1, 45)]
    assert sum(kept) == 5 and len(wf) == 5  # frames 1, 10, 20, 30, 40
    v = wf.view()
    assert np.allclose(v["times_s"], [0.01, 0.1, 0.2, 0.3, 0.4]) and v["power_db"].shape == (5, 4)
    assert np.allclose(wf.view(seconds=0.15)["times_s"], [0.3, 0.4])
    wf.offer(50, spec(0.5, f0=2e6))  # another tuning: only its rows
    assert wf.view()["freqs_hz"][0] == 2e6 and wf.view()["power_db"].shape == (1, 4)


def test_the_frame_ring_numbers_every_new_frame_and_keeps_the_last():
    eng = FakeEngine()
    live = LiveView(eng)
    live.frames = type(live.frames)(maxlen=3)
    for i in range(5):
        eng.last_spectrum = spec(i * 0.1, level=-50.0 + i)
        eng.frames_processed += 1
        live.update()
        live.update()  # a step without a new frame: not numbered again
    assert live.frames.seq == 5 and len(live.frames) == 3
    got = live.frames.after(3)
    assert [s for s, _, _ in got] == [4, 5] and got[-1][1].power[0] == -46.0
    assert live.frames.after(5) == [] and [s for s, _, _ in live.frames.after(0)] == [3, 4, 5]


def test_noise_floor_and_baseline_in_the_spectrum_unit():
    s = spec(0.0)
    assert LiveView.noise_floor_db(s, Result()) == -60.0
    assert LiveView.noise_floor_db(s, None) is None
    dbm = Spectrum(s.freqs_hz, s.power, rbw_hz=1e3, offset_s=0.0, center_hz=1e6, unit="dBm",
                   meta={"dbm_offset_db": np.array([-30.0, -30.0, -32.0, -32.0])})
    assert LiveView.noise_floor_db(dbm, Result()) == -91.0  # the median offset, −31 dB

    class Aligned:
        median_db = np.array([-70.0, -70.0, np.nan, -70.0])
        p99_db = np.array([-60.0, -60.0, np.nan, -61.0])

    class WithBaseline(FakeEngine):
        baseline = object()

        def _aligned_for(self, freqs_hz, rbw_hz):
            assert freqs_hz.size == 4 and rbw_hz == 1e3
            return Aligned()

    assert LiveView(FakeEngine()).baseline_quantiles(s) is None
    p50, p99 = LiveView(WithBaseline()).baseline_quantiles(dbm)
    assert p50.tolist()[:2] == [-100.0, -100.0] and np.isnan(p50[2]) and p99[3] == -93.0
