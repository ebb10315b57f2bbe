"""Declared exam-room jammers (issue #18 item 4, second half), on generated PSD frames.

A site declares its rooms' jammers (band, sessions). In a session the declared band's floor rise
gives no alert, no ``jamming`` event and no tracks; the jammer switched off in a session is one
``declared_jammer`` alert after its ``off_after_s``, ended when it comes back; the same signal not
declared is still ``jamming``; a transmitter outside the band still alerts.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.baseline import BaselineBuilder
from detector.core.types import Spectrum
from detector.detection import DeclaredJammer, ExamSession
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.detection.events import DeclaredJammerEvent, event_from_json

CENTER = 434.0e6
M, LOOKS, FRAME_S = 1024, 20.0, 0.1
FREQS = CENTER + (np.arange(M) - M // 2) * 1000.0
STATIONS = ((100, -40.0), (700, -42.0), (900, -38.0))  # surveyed carriers: the gain reference
JAM = (200, 500, 15.0)  # bins lo … hi-1, dB over the floor
HIDDEN = 950  # a transmitter's bin, outside the jammer's band
SESSION = ExamSession(0.0, 100.0, "Maths")


def frame(rng, i, *, jam=None, lines=()):
    """A PSD frame: Gamma noise at −60 dBFS per bin, the stations, a jammer's noise (lo, hi, dB)
    and extra lines ((bin, dBFS), ...)."""
    lin = 1e-6 * rng.gamma(LOOKS, 1 / LOOKS, size=M)
    if jam is not None:
        lo, hi, db = jam
        lin[lo:hi] += 1e-6 * 10 ** (db / 10) * rng.gamma(LOOKS, 1 / LOOKS, size=hi - lo)
    for k, level in (*STATIONS, *lines):
        lin[k] += 10 ** (level / 10)
    return Spectrum(freqs_hz=FREQS, power=(10 * np.log10(lin)).astype(np.float32), rbw_hz=1500.0, n_looks=LOOKS,
                    offset_s=i * FRAME_S, duration_s=FRAME_S, center_hz=CENTER)


def survey(*, jam=None, seed=1):
    rng = np.random.default_rng(seed)
    b = BaselineBuilder(FREQS, rbw_hz=1500.0, site="s1", n_looks=LOOKS)
    for i in range(600):
        b.add(frame(rng, i, jam=jam))
    return b.build()


@pytest.fixture(scope="module")
def baseline():
    return survey()


def jammer(**kw):
    return DeclaredJammer("room 101", float(FREQS[JAM[0]]), float(FREQS[JAM[1] - 1]), room="A-101", **kw)


def run(baseline, seconds, *, jam_on=lambda t: True, hidden_from=None, declared=True, sessions=(SESSION,), seed=3,
        jam=JAM):
    rng = np.random.default_rng(seed)
    eng = DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=baseline, sessions=sessions,
                          jammers=(jammer(),) if declared else ())
    events = []
    for i in range(int(round(seconds / FRAME_S))):
        t = i * FRAME_S
        lines = [(HIDDEN, -50.0)] if hidden_from is not None and t >= hidden_from else []
        events += eng.process_spectrum(frame(rng, i, jam=jam if jam_on(t) else None, lines=lines))
    return eng, [e.to_json() for e in events + eng.finish()]


def test_a_declared_jammer_on_in_its_session_is_silent(baseline):
    eng, events = run(baseline, 60.0)
    assert [e for e in events if e["alert"]] == []
    assert [e for e in events if e["event"] in ("jamming", "declared_jammer", "missing")] == []
    assert len({e["track_id"] for e in events}) == 0  # not one track: no flood
    (st,) = eng.declared_jammers.status()
    assert st["state"] == "on" and st["expected"] == "on" and st["alert"] is None
    assert st["level_db"] == pytest.approx(15.0, abs=1.0) and st["on_level_db"] == pytest.approx(15.0, abs=1.0)
    assert st["since_s"] == 0.0 and st["survey_on"] is False


def test_the_same_jammer_not_declared_gives_tracks_and_the_whole_band_one_jamming_event(baseline):
    # declared: silent; not declared: the band's edges are tracks that alert (30 % of the band)
    _, events = run(baseline, 20.0, declared=False)
    assert [e for e in events if e["alert"] and e["event"] == "end"]
    # over (nearly) the whole band the generic check calls it jamming (the existing behaviour)
    whole = (20, 1004, 15.0)
    _, events = run(baseline, 20.0, declared=False, jam=whole)
    assert [e["event"] for e in events if e["event"] == "jamming"] == ["jamming"]


def test_a_declared_band_is_left_out_of_the_jamming_check_but_a_jammer_beside_it_is_not(baseline):
    # the jammer spans the whole tuned band: declared, no jamming event; its state is on
    wide = (20, 1004, 15.0)
    rng = np.random.default_rng(4)
    j = DeclaredJammer("everything", float(FREQS[20]), float(FREQS[1003]))
    eng = DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=baseline, sessions=(SESSION,), jammers=(j,))
    events = []
    for i in range(200):
        events += eng.process_spectrum(frame(rng, i, jam=wide))
    assert [e for e in events if e.alert] == []
    assert eng.declared_jammers.status()[0]["state"] == "on"
    # a declared jammer over 30 % of the band, an undeclared one over the rest: jamming
    eng = DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=baseline, sessions=(SESSION,), jammers=(jammer(),))
    events = []
    for i in range(200):
        f = frame(rng, i, jam=wide)
        events += eng.process_spectrum(f)
    assert [e.kind for e in events if e.kind == "jamming"] == ["jamming"]


def test_the_jammer_switched_off_in_its_session_is_one_alert_ended_when_it_comes_back(baseline):
    off_at, back_at = 30.0, 50.0
    eng, events = run(baseline, 70.0, jam_on=lambda t: not off_at <= t < back_at)
    dj = [e for e in events if e["event"] == "declared_jammer"]
    assert len(dj) == 2, dj
    first, end = dj
    hold = jammer().off_after_s
    assert first["state"] == "off" and first["ended"] is False and first["alert"] is True
    assert first["severity"] == "high" and first["track_id"].startswith("D") and first["session"] == "Maths"
    assert first["jammer"] == "room 101" and first["room"] == "A-101"
    assert "declared jammer room 101 (A-101) off during session Maths" in first["reasons"][0]
    assert "protection failed" in first["reasons"][0]
    assert first["first_seen_s"] == pytest.approx(off_at, abs=2 * FRAME_S)
    assert first["last_seen_s"] == pytest.approx(off_at + hold, abs=2 * FRAME_S)
    assert first["level_db"] == pytest.approx(0.0, abs=1.0) and first["on_level_db"] == pytest.approx(15.0, abs=1.0)
    assert end["track_id"] == first["track_id"] and end["ended"] is True
    assert end["last_seen_s"] == pytest.approx(back_at, abs=2 * FRAME_S) and "back on" in end["reasons"][-1]
    # nothing else alerts, and the jammer's edges made no track when it came back
    assert [e for e in events if e["alert"] and e["event"] != "declared_jammer"] == []
    assert {e["track_id"] for e in events if e["event"] in ("new", "update", "end")} == set()


def test_a_jammer_never_switched_on_is_reported_off_from_the_session_start(baseline):
    _, events = run(baseline, 20.0, jam_on=lambda t: False, sessions=(ExamSession(5.0, 100.0, "Maths"),))
    (dj,) = [e for e in events if e["event"] == "declared_jammer"]
    assert dj["first_seen_s"] == pytest.approx(5.0, abs=2 * FRAME_S) and dj["on_level_db"] is None


def test_the_session_ending_ends_the_off_alert_and_outside_the_jammer_may_be_off(baseline):
    _, events = run(baseline, 60.0, jam_on=lambda t: t < 10.0, sessions=(ExamSession(0.0, 30.0, "Maths"),))
    dj = [e for e in events if e["event"] == "declared_jammer"]
    assert [(e["state"], e["ended"]) for e in dj] == [("off", False), ("off", True)]
    assert dj[1]["last_seen_s"] == pytest.approx(30.0, abs=2 * FRAME_S) and "session ended" in dj[1]["reasons"][-1]


def test_on_outside_its_sessions_and_grace_is_one_low_alert(baseline):
    later = ExamSession(3600.0, 7200.0, "Maths")  # an hour away: the grace (900 s) does not reach now
    eng, events = run(baseline, 30.0, jam_on=lambda t: t < 20.0, sessions=(later,))
    dj = [e for e in events if e["event"] == "declared_jammer"]
    assert [(e["state"], e["ended"], e["severity"]) for e in dj] == [("on_outside_session", False, "low"),
                                                                   ("on_outside_session", True, "low")]
    assert dj[0]["track_id"].startswith("DO") and dj[0]["session"] is None
    assert dj[0]["last_seen_s"] == pytest.approx(10.0, abs=2 * FRAME_S)
    assert dj[1]["last_seen_s"] == pytest.approx(20.0, abs=2 * FRAME_S)
    assert eng.declared_jammers.status()[0]["expected"] == "off"
    # in the grace time before the session, on is fine
    soon = ExamSession(600.0, 7200.0, "Maths")
    _, events = run(baseline, 20.0, sessions=(soon,))
    assert [e for e in events if e["alert"]] == []


def test_without_a_schedule_the_state_is_shown_and_nothing_alerts(baseline):
    eng, events = run(baseline, 20.0, jam_on=lambda t: t < 5.0, sessions=())
    assert [e for e in events if e["alert"]] == []
    st = eng.declared_jammers.status()[0]
    assert st["state"] == "off" and st["expected"] is None and st["since_s"] == pytest.approx(5.0, abs=FRAME_S)


def test_a_hidden_transmitter_outside_the_band_alerts_while_the_jammer_is_on(baseline):
    _, events = run(baseline, 30.0, hidden_from=10.0)
    alerts = [e for e in events if e["alert"]]
    assert alerts and {e["track_id"] for e in alerts} == {alerts[0]["track_id"]}  # one track: the transmitter
    assert alerts[0]["center_hz"] == pytest.approx(FREQS[HIDDEN], abs=1500)
    assert all(e["event"] in ("new", "update", "end") for e in alerts)


def test_a_transmitter_far_over_the_jammer_in_its_band_is_still_tracked(baseline):
    rng = np.random.default_rng(6)
    eng = DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=baseline, sessions=(SESSION,), jammers=(jammer(),))
    events = []
    for i in range(200):
        events += eng.process_spectrum(frame(rng, i, jam=JAM, lines=[(350, -25.0)]))  # 20 dB over the jammer
    alerts = [e for e in events if e.alert]
    assert alerts and all(abs(e.center_hz - FREQS[350]) < 3000 for e in alerts)


def test_a_survey_made_with_the_jammer_on_knows_its_on_level():
    base = survey(jam=JAM, seed=8)
    eng, events = run(base, 40.0, jam_on=lambda t: t < 20.0)
    dj = [e for e in events if e["event"] == "declared_jammer"]
    assert [(e["state"], e["ended"]) for e in dj] == [("off", False)]
    assert dj[0]["first_seen_s"] == pytest.approx(20.0, abs=2 * FRAME_S)
    assert dj[0]["on_level_db"] == pytest.approx(15.0, abs=1.0)
    assert eng.declared_jammers.status()[0]["survey_on"] is True


def test_declared_jammer_event_json_round_trip_and_store(tmp_path):
    ev = DeclaredJammerEvent(track_id="D433838", center_hz=433.8375e6, bandwidth_hz=299e3, first_seen_s=30.0,
                             last_seen_s=40.1, jammer="room 101", state="off", session="Maths", room="A-101",
                             level_db=0.1, on_level_db=15.0, severity="high", reasons=("declared jammer room 101 …",))
    d = ev.to_json()
    assert d["event"] == "declared_jammer" and d["alert"] is True and d["state"] == "off" and d["ended"] is False
    back = event_from_json(d)
    assert back == ev and back.to_json() == d and not back.is_missing
    from dataclasses import replace

    from detector.alerts import open_store

    store = open_store(None, data_dir=tmp_path)
    alert = store.apply(ev, site="s1", run_id="r1")
    assert alert is not None and alert.track_id == "D433838" and alert.severity == "high"
    assert alert.classification == "wideband" and alert.reasons == list(ev.reasons)
    ended = replace(ev, ended=True, last_seen_s=50.1, reasons=ev.reasons + ("ended: back on at 50.0 s",))
    again = store.apply_event(ended.to_json(), site="s1", run_id="r1")
    assert again is not None and again.id == alert.id and again.version == 2 and again.last_seen_s == 50.1
    assert again.reasons[-1] == "ended: back on at 50.0 s"
    # a restarted run continues the same jammer's alert; no track takes it over
    later = store.apply(ev, site="s1", run_id="r2", resume={alert.id})
    assert later is not None and later.id == alert.id


def test_the_monitor_shows_the_declared_jammers_in_health(baseline):
    from detector.app.monitor_app import MonitorApp
    from detector.config.site import JammerEntry, SiteConfig

    cfg = SiteConfig(name="s1", session_seconds=[(0.0, 100.0)],
                     jammers=[JammerEntry(name="room 101", f_lo_hz=float(FREQS[JAM[0]]), f_hi_hz=float(FREQS[JAM[1] - 1]))])
    app = MonitorApp.build(None, source_factory=lambda: None, site="s1", site_config=cfg, baseline=baseline,
                           sessions=cfg.exam_sessions(None), engine_config=EngineConfig(frame_s=FRAME_S))
    rng = np.random.default_rng(9)
    for i in range(20):
        app.engine.process_spectrum(frame(rng, i, jam=JAM))
    (st,) = app.monitor.health()["declared_jammers"]
    assert st["name"] == "room 101" and st["state"] == "on" and st["expected"] == "on"
    assert st["f_lo_hz"] == FREQS[JAM[0]] and st["level_db"] == pytest.approx(15.0, abs=1.5)
