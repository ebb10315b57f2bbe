"""Jamming against a gain step (issue #18 item 4).

The issue measured a noise floor risen by 10 dB over the whole band, carriers unchanged: 0 alerts,
0 ``missing`` events, absorbed as a gain step and shown nowhere. Now it is one ``jamming`` event
within ``jam_after_s``; a real gain step (carriers rise too) stays silent and is shown as the
engine's ``gain_offset_db``.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.detection.engine import DetectionEngine, EngineConfig
from detector.detection.events import JammingEvent, event_from_json
from detector.sim import awgn, tone
from tests._helpers import as_cu8, recording_of, run_iq, survey_iq

FS = 1.024e6
CENTER = 404.0e6
NOISE = -30.0
STATIONS = (100e3, -300e3, 250e3)
JAM_AT = 2.0  # s


def band(seconds, *, seed=1, floor_rise_db=0.0, gain_db=0.0, at_s=JAM_AT):
    """Noise and the surveyed carriers; from ``at_s`` the floor rises by ``floor_rise_db`` (a
    jammer) and everything by ``gain_db`` (a gain step)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    k = int(at_s * FS)
    x = awgn(n, NOISE, rng)
    if floor_rise_db:
        x[k:] += awgn(n - k, NOISE + 10 * np.log10(10 ** (floor_rise_db / 10) - 1), rng)
    for f in STATIONS:
        x = x + tone(n, FS, f, -35.0)
    if gain_db:
        x[k:] *= np.float32(10 ** (gain_db / 20))
    return as_cu8(x)


@pytest.fixture(scope="module")
def baseline():
    return survey_iq(band(3.0, seed=2), FS, CENTER)


def run(baseline, x):
    eng = DetectionEngine(EngineConfig(missing_after_s=5.0), baseline=baseline)
    return eng, run_iq(eng, x, FS, CENTER)


def test_a_floor_rise_with_carriers_unchanged_is_one_jamming_event(baseline):
    eng, events = run(baseline, band(12.0, floor_rise_db=10.0))
    jams = [e for e in events if e["event"] == "jamming"]
    assert len(jams) == 1, events
    (j,) = jams
    assert j["alert"] is True and j["track_id"].startswith("J") and j["severity"] == "high"
    assert JAM_AT - 0.5 <= j["first_seen_s"] <= JAM_AT + 0.5
    # reported once it has held jam_after_s, at the next check (every JammingConfig.interval_s):
    # well within the 30 s
    assert j["last_seen_s"] - JAM_AT <= eng.config.jam_after_s + 2 * eng.jamming.config.interval_s + 0.5 < 30.0
    assert j["rise_db"] == pytest.approx(10.0, abs=1.5)
    assert abs(j["carrier_change_db"]) < 2.0
    # the band: (nearly) all of it, edges and DC left out
    assert j["center_hz"] - j["bandwidth_hz"] / 2 <= CENTER - 0.4 * FS
    assert j["center_hz"] + j["bandwidth_hz"] / 2 >= CENTER + 0.4 * FS
    assert not any(e["event"] == "missing" for e in events)
    assert [e for e in events if e["alert"] and e["event"] != "jamming"] == []
    assert eng.jamming.status()["jamming"] is True


def test_a_gain_step_is_silent_and_shown_as_gain_offset(baseline):
    eng, events = run(baseline, band(8.0, gain_db=10.0))
    assert [e for e in events if e["alert"]] == []
    assert eng.gain_offset_db == pytest.approx(10.0, abs=1.0)
    st = eng.jamming.status()
    assert st["jamming"] is False and st["carrier_change_db"] == pytest.approx(10.0, abs=1.5)


def test_no_change_no_event(baseline):
    eng, events = run(baseline, band(7.0, seed=3))
    assert [e for e in events if e["alert"]] == []
    assert eng.gain_offset_db == pytest.approx(0.0, abs=1.0)
    assert eng.jamming.status()["rise_db"] == pytest.approx(0.0, abs=1.0)


def test_without_strong_stations_no_verdict():
    x = as_cu8(awgn(int(8 * FS), NOISE, np.random.default_rng(4)))
    base = survey_iq(as_cu8(awgn(int(2 * FS), NOISE, np.random.default_rng(5))), FS, CENTER)
    k = int(JAM_AT * FS)
    y = x.copy()
    y[k:] *= np.float32(10 ** 0.5)  # the floor +10 dB with nothing to tell jammer from gain
    eng = DetectionEngine(EngineConfig(), baseline=base)
    events = run_iq(eng, y, FS, CENTER)
    assert not any(e["event"] == "jamming" for e in events)
    assert eng.jamming.status()["reference"] is False


def jamming_event():
    return JammingEvent(track_id="J404000", center_hz=404.0e6, bandwidth_hz=980e3, first_seen_s=2.0, last_seen_s=7.1,
                        rise_db=9.8, carrier_change_db=0.3, reasons=("noise floor +9.8 dB …",))


def test_jamming_event_json_round_trip():
    ev = jamming_event()
    d = ev.to_json()
    assert d["event"] == "jamming" and d["alert"] is True and d["rise_db"] == 9.8 and d["carrier_change_db"] == 0.3
    assert d["classification"] == "wideband" and d["bursts"] == 0 and d["location"] is None and d["severity"] == "high"
    back = event_from_json(d)
    assert back == ev and back.to_json() == d and not back.is_missing


def test_the_store_keeps_a_jamming_event_as_an_alert(tmp_path):
    from detector.alerts import open_store

    store = open_store(None, data_dir=tmp_path)
    alert = store.apply(jamming_event(), site="s1", run_id="r1")
    assert alert is not None and alert.track_id == "J404000" and alert.severity == "high"
    assert alert.classification == "wideband" and alert.center_hz == 404.0e6
    again = store.apply_event(jamming_event().to_json(), site="s1", run_id="r1")
    assert again is not None and again.id == alert.id
    # a restarted run's jamming continues the same band's alert, and no track takes it over
    later = store.apply(jamming_event(), site="s1", run_id="r2", resume={alert.id})
    assert later is not None and later.id == alert.id


def test_the_monitor_shows_the_gain_offset_in_health(baseline):
    from detector.pipeline import Monitor

    x = band(4.0, gain_db=10.0, at_s=0.5, seed=7)

    Recording = recording_of(x, FS, CENTER)

    seen = []
    mon = Monitor(Recording, DetectionEngine(EngineConfig(), baseline=baseline), block_samples=1 << 16)
    mon.on_alert.append(lambda ev, alert: seen.append(ev))
    mon.start()
    try:
        assert mon.finished.wait(30)
        assert mon.health()["gain_offset_db"] == pytest.approx(10.0, abs=1.0) and seen == []
    finally:
        mon.stop()


def test_metrics_show_the_gain_offset():
    from types import SimpleNamespace

    from detector.api.routes.metrics import metrics_text

    class Store:
        def list(self, limit=1):
            return [], 0

        def open_alerts(self):
            return []

    text = metrics_text(SimpleNamespace(monitor=SimpleNamespace(health=lambda: {"gain_offset_db": 9.91}), store=Store()))
    assert "examwatch_gain_offset_db 9.91" in text
    text = metrics_text(SimpleNamespace(monitor=SimpleNamespace(health=lambda: {"gain_offset_db": None}), store=Store()))
    assert "examwatch_gain_offset_db" not in text  # no baseline: no measurement
