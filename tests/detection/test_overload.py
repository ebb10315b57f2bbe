"""Issue #18 items 1 and 2 on generated input: the rails share, the overload state and its event,
and the by-products of strong emissions (intermodulation, clipping, image) marked as artefacts that
never alert, with and without clipping, with and without a baseline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from detector.detection import Emission
from detector.detection._byproducts import ByproductConfig, mark_byproducts, pair_products
from detector.detection._overload import rails_share
from detector.detection.engine import DetectionEngine
from detector.dsp import FrameStream, cu8_to_complex64, make_plan
from detector.sim import awgn, cu8_bytes, gate, tone
from tests._helpers import recording_of, run_iq, survey_iq

FS = 250e3
CENTER = 446.05e6
NOISE = -30.0
F1, F2 = -40e3, 25e3  # offsets of the two strong tones: 446.0100 and 446.0750 MHz
LEVEL = 20 * np.log10(0.7)  # 0.7 of full scale each (−3.1 dBFS)


def cu8(x):
    """``x`` through the 8-bit ADC (rails at 0/255) and back, as an RTL-SDR gives it."""
    return cu8_to_complex64(cu8_bytes(x))


def two_tones(level_db, seconds=2.0, seed=1, extra=None):
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = awgn(n, NOISE, rng) + tone(n, FS, F1, level_db) + tone(n, FS, F2, level_db, phase=1.0)
    if extra is not None:
        x = x + extra(n)
    return cu8(x)


def ends(events):
    return [e for e in events if e["event"] == "end"]


# --- the rails share --------------------------------------------------------------------------

def test_rails_share_of_two_clipped_tones_is_about_a_fifth_of_the_values():
    x = two_tones(LEVEL, seconds=0.5)
    share = rails_share(x)
    raw = cu8_bytes(x)  # the same values again: the conversion maps bytes 0/255 to exactly ±1.0
    assert share == pytest.approx(np.mean((raw == 0) | (raw == 255)), abs=0.005)  # measured on a quarter of the values
    assert rails_share(x, every=1) == pytest.approx(np.mean((raw == 0) | (raw == 255)), abs=1e-9)  # on all of them
    assert 0.17 <= share <= 0.22  # measured 0.192
    assert rails_share(two_tones(LEVEL - 20.0, seconds=0.5)) == 0.0


def test_rails_share_counts_only_the_rails_for_cu8_and_099_of_full_scale_otherwise():
    b = np.array([0, 255, 254, 1, 127, 128, 200, 60], dtype=np.uint8)  # 2 of 8 values at the rails
    assert rails_share(cu8_to_complex64(b)) == pytest.approx(2 / 8)
    # no rail reached: 0.99 of full scale counts (bytes 254 and 1, ±0.992)
    assert rails_share(cu8_to_complex64(np.array([254, 1, 127, 128], dtype=np.uint8))) == pytest.approx(0.5)
    f = np.array([0.995 + 0.1j, 0.5 - 0.991j, 0.2 + 0.3j, 0.0 + 0.0j], dtype=np.complex64)
    assert rails_share(f) == pytest.approx(2 / 8)
    assert rails_share(np.zeros(0, np.complex64)) == 0.0


def test_rails_share_costs_a_few_percent_of_the_blocks_fft():
    """The share runs on every block: its cost against the framed PSD of the same 64k-sample block
    (measured: 10–15 µs against 340–510 µs, 3 %, without rails; 35–40 µs, 8–10 %, with 19 % of
    the values at the rails)."""
    x = two_tones(LEVEL, seconds=0.27)[: 1 << 16]
    quiet = cu8(awgn(1 << 16, NOISE, np.random.default_rng(2)))
    plan = make_plan(FS, nfft=256)
    stream = FrameStream(plan, 20)

    def best(fn, k=7):
        t = []
        for _ in range(k):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        return min(t)

    fft = best(lambda: (stream.reset(), stream.push(x)))
    for block, limit in ((quiet, 0.06), (x, 0.15)):  # the targets are 3 % and 10 %: room for a loaded machine
        cost = best(lambda b=block: rails_share(b))
        print(f"rails share {1e6 * cost:.0f} µs against {1e6 * fft:.0f} µs of FFT ({100 * cost / fft:.1f} %)")
        assert cost <= limit * fft


# --- overload with clipping -------------------------------------------------------------------

@pytest.fixture(scope="module")
def quiet_baseline():
    rng = np.random.default_rng(7)
    return survey_iq(cu8(awgn(int(3 * FS), NOISE, rng)), FS, CENTER)


@pytest.mark.parametrize("with_baseline", [False, True])
def test_two_clipped_tones_overload_and_only_the_tones_alert(with_baseline, request):
    baseline = request.getfixturevalue("quiet_baseline") if with_baseline else None
    eng = DetectionEngine(baseline=baseline)
    events = run_iq(eng, two_tones(LEVEL), FS, CENTER)
    over = [e for e in events if e["event"] == "overload"]
    assert len(over) == 1, over
    named = sorted(s["center_hz"] - CENTER for s in over[0]["strongest"])
    assert len(named) == 2 and named[0] == pytest.approx(F1, abs=2e3) and named[1] == pytest.approx(F2, abs=2e3)
    assert over[0]["alert"] and "lower the gain" in over[0]["advice"] and over[0]["rails_share"] > 0.1
    assert over[0]["track_id"].startswith("O")
    tracks = ends(events)
    alerting = sorted((t for t in tracks if t["alert"]), key=lambda t: t["center_hz"])
    assert len(alerting) == 2, [(t["center_hz"] - CENTER, t["classification"], t["artefact"]) for t in tracks]
    for t, f in zip(alerting, (F1, F2)):
        assert t["center_hz"] - CENTER == pytest.approx(f, abs=1e3)
        assert t["classification"] == "carrier" and t["artefact"] is None and t["overload"] is True
    others = [t for t in tracks if not t["alert"]]
    assert others, "the clipping products are reported as tracks"
    assert all(t["artefact"] in ("intermodulation", "clipping", "harmonic", "image") and t["artefact_of"] for t in others)
    assert not any(e["alert"] for e in events if e["event"] in ("new", "update", "end") and e["artefact"])
    # /health, the last frame, the readings
    st = eng.overload.status()
    assert st["state"] == "overload" and st["rails_share"] > 0.1 and len(st["strongest"]) == 2
    assert "lower the gain" in st["advice"] and st["overloaded_blocks"] == st["blocks"]
    assert eng.last_spectrum.meta["overload"] is True
    tone_track = next(tr for tr in eng.all_tracks.values() if tr.alert)
    assert tone_track.readings and all(r.overload for r in tone_track.readings)


def test_the_same_tones_20_db_lower_are_two_carriers_and_no_overload():
    eng = DetectionEngine()
    events = run_iq(eng, two_tones(LEVEL - 20.0), FS, CENTER)
    assert not [e for e in events if e["event"] == "overload"]
    tracks = ends(events)
    assert sorted(round((t["center_hz"] - CENTER) / 1e3) for t in tracks if t["alert"]) == [F1 / 1e3, F2 / 1e3]
    assert all(t["classification"] == "carrier" for t in tracks if t["alert"])
    assert not any(t["artefact"] for t in tracks) and not any(t["overload"] for t in tracks)
    assert eng.overload.status()["state"] == "ok" and eng.last_spectrum.meta["overload"] is False


def test_a_weak_emission_off_the_product_frequencies_still_alerts_under_overload():
    f3 = 100e3
    cfg = ByproductConfig()
    preds = [k * f for f in (F1, F2) for k in (-1, *cfg.single_k)]
    preds += [a * F1 + b * F2 for a, b in pair_products(cfg.max_order, cfg.pair_sums)]
    folded = [(p + FS / 2) % FS - FS / 2 for p in preds]
    assert min(abs(p - f3) for p in folded) >= 4e3  # not on a product

    events = run_iq(DetectionEngine(), two_tones(LEVEL, extra=lambda n: tone(n, FS, f3, -45.0)), FS, CENTER)
    alerting = [t for t in ends(events) if t["alert"]]
    assert sorted(round((t["center_hz"] - CENTER) / 1e3) for t in alerting) == [F1 / 1e3, F2 / 1e3, f3 / 1e3]


def test_a_strong_tone_with_its_strong_image_and_its_clipping_product_alerts_alone():
    """One tone near full scale (0.97) and its IQ image 10 dB under it (the image rule's 15 dB
    margin is not met): together they clip (22 % of the values at the rails), which makes the −3f
    clipping product; only the tone alerts."""
    f = 30e3
    rng = np.random.default_rng(3)
    n = int(2 * FS)
    x = cu8(awgn(n, NOISE, rng) + tone(n, FS, f, 20 * np.log10(0.97)) + tone(n, FS, -f, 20 * np.log10(0.97) - 10.0))
    assert 0.15 <= rails_share(x) <= 0.3
    events = run_iq(DetectionEngine(), x, FS, CENTER)
    tracks = ends(events)
    alerting = [t for t in tracks if t["alert"]]
    assert len(alerting) == 1 and alerting[0]["center_hz"] - CENTER == pytest.approx(f, abs=1e3)
    kinds = {round((t["center_hz"] - CENTER) / 1e3): t["artefact"] for t in tracks if not t["alert"]}
    assert kinds.get(-30) == "image" and kinds.get(-91) == "clipping", kinds  # −3f: −90.8 kHz from the peak bin
    assert len([e for e in events if e["event"] == "overload"]) == 1


def test_the_image_rule_marks_a_strong_image_without_clipping_too():
    """No clipping (a tone at 0.5 of full scale), its image 10 dB under it: marked ``image``, no
    overload, and no other product is predicted without overload."""
    rng = np.random.default_rng(4)
    n = int(1.5 * FS)
    x = cu8(awgn(n, NOISE, rng) + tone(n, FS, 30e3, 20 * np.log10(0.5)) + tone(n, FS, -30e3, 20 * np.log10(0.5) - 10.0))
    assert rails_share(x) == 0.0
    events = run_iq(DetectionEngine(), x, FS, CENTER)
    tracks = ends(events)
    assert not [e for e in events if e["event"] == "overload"]
    assert [round((t["center_hz"] - CENTER) / 1e3) for t in tracks if t["alert"]] == [30]
    image = [t for t in tracks if not t["alert"]]
    assert len(image) == 1 and image[0]["artefact"] == "image" and "mirrored about the tuned center" in image[0]["artefact_of"]


def test_a_marked_track_that_outlives_its_parent_is_unmarked_and_alerts():
    """A real tone sits on the −3f clipping product of a strong clipped tone: marked while the
    strong tone is on, unmarked (and alerting) once it has gone and the tone stays."""
    f = 30e3
    rng = np.random.default_rng(5)
    n = int(3 * FS)
    strong = gate(tone(n, FS, f, 0.0), FS, [(0.0, 1.0)])  # full scale: the rails at its peaks
    x = cu8(awgn(n, NOISE, rng) + strong + tone(n, FS, -3 * f, -30.0))
    eng = DetectionEngine()
    events = run_iq(eng, x, FS, CENTER)
    child = [e for e in events if e["event"] in ("new", "update", "end") and abs(e["center_hz"] - CENTER + 3 * f) < 2e3]
    assert child and child[0]["artefact"] == "clipping" and not child[0]["alert"]
    assert child[-1]["alert"] and child[-1]["artefact"] is None
    tr = next(t for t in eng.all_tracks.values() if abs(t.center_hz - CENTER + 3 * f) < 2e3)
    assert any("outlived" in note for note in tr.notes)
    assert tr.first_seen_s < 0.1  # one track all along: marked, then unmarked


def test_mark_byproducts_names_the_product_and_needs_the_margin():
    def em(off, peak, snr=30.0, bw=2000.0):
        f = CENTER + off
        return Emission(center_hz=f, bandwidth_hz=bw, f_lo_hz=f - bw / 2, f_hi_hz=f + bw / 2, peak_hz=f, peak_dbfs=peak,
                        snr_db=snr, excess_db=None, power_dbfs=peak, bins=np.array([0]))

    p1, p2, im3, weak_near = em(F1, -4.0), em(F2, -5.0), em(2 * F1 - F2, -30.0, 20.0), em(2 * F1 - F2, -8.0, 40.0)
    assert mark_byproducts([p1, p2, im3], center_hz=CENTER, sample_rate_hz=FS, bin_hz=976.6, overloaded=True) == 1
    assert im3.artefact == "intermodulation" and "2f1−f2" in im3.artefact_of and p1.artefact is None
    im3.artefact = None
    assert mark_byproducts([p1, p2, im3], center_hz=CENTER, sample_rate_hz=FS, bin_hz=976.6, overloaded=False) == 0
    # 4 dB under its parents: stronger than a product of them can be (margin 6 dB)
    assert mark_byproducts([p1, p2, weak_near], center_hz=CENTER, sample_rate_hz=FS, bin_hz=976.6, overloaded=True) == 0
    # aliases: 3f of a tone at +100 kHz (300 kHz) folds to +50 kHz in a 250 kHz band
    p, h = em(100e3, -3.0), em(50e3, -40.0, 10.0)
    assert mark_byproducts([p, h], center_hz=CENTER, sample_rate_hz=FS, bin_hz=976.6, overloaded=True) == 1
    assert h.artefact == "harmonic" and "3f" in h.artefact_of


# --- the edges: the monitor's /health, /metrics, the store ---------------------------------------

def test_the_monitor_shows_the_overload_in_health_and_metrics():
    from types import SimpleNamespace

    from detector.api.routes.metrics import metrics_text
    from detector.pipeline import Monitor

    x = two_tones(LEVEL, seconds=1.5)

    Recording = recording_of(x, FS, CENTER)

    seen = []
    mon = Monitor(Recording, DetectionEngine(), block_samples=1 << 16)
    mon.on_alert.append(lambda ev, alert: seen.append(ev))
    mon.start()
    try:
        assert mon.finished.wait(30)
        h = mon.health()
    finally:
        mon.stop()
    ov = h["overload"]
    assert ov["state"] == "overload" and 0.15 < ov["rails_share"] < 0.25 and ov["since_s"] == 0.0
    assert sorted(round((s["center_hz"] - CENTER) / 1e3) for s in ov["strongest"]) == [F1 / 1e3, F2 / 1e3]
    # the loop may join waiting blocks into one stack: every block processed was overloaded
    assert ov["advice"].startswith("lower the gain") and ov["overloaded_blocks"] == ov["blocks"] >= 1
    assert [ev.kind for ev in seen].count("overload") <= 1  # the loop reports the one episode at most once

    class Store:
        def list(self, limit=1):
            return [], 0

        def open_alerts(self):
            return []

    text = metrics_text(SimpleNamespace(monitor=SimpleNamespace(health=lambda: h), store=Store()))
    assert "examwatch_overload 1.0" in text and f"examwatch_rails_share {ov['rails_share']}" in text
    assert f"examwatch_overloaded_blocks_total {float(ov['overloaded_blocks'])}" in text


def test_the_overload_event_round_trips_and_is_stored_like_a_jamming_event(tmp_path):
    from detector.alerts import open_store
    from detector.detection.events import OverloadEvent, TrackEvent, event_from_json
    from tests._helpers import iq_blocks

    eng = DetectionEngine()
    evs = [e for b in iq_blocks(two_tones(LEVEL, seconds=1.0), FS, CENTER) for e in eng.process_block(b)]
    evs += eng.finish()
    ev = next(e for e in evs if isinstance(e, OverloadEvent))
    back = event_from_json(ev.to_json())
    assert isinstance(back, OverloadEvent) and back.to_json() == ev.to_json()
    assert back.strongest == ev.strongest and back.rails_share == ev.rails_share and back.advice == ev.advice
    marked = [e for e in evs if isinstance(e, TrackEvent) and e.artefact]
    assert marked and all(event_from_json(e.to_json()).to_json() == e.to_json() for e in marked)
    store = open_store(None, data_dir=tmp_path)
    try:
        alert = store.apply(ev, site="s1", run_id="r1")
        assert alert is not None and alert.severity == "medium" and alert.center_hz == ev.center_hz
        assert any("lower the gain" in r for r in alert.reasons)
        assert all(store.apply(e, site="s1", run_id="r1") is None for e in marked)  # artefacts never alert
        # a restarted run's overload continues the same alert; no track alert takes it over
        later = store.apply(ev, site="s1", run_id="r2", resume={alert.id})
        assert later is not None and later.id == alert.id
    finally:
        store.close()


def test_frames_say_overload_and_overloaded_readings_are_left_out_of_localization():
    from detector.core.types import IQBlock
    from detector.detection import Reading, Track
    from detector.localization.tracks import track_locator

    eng = DetectionEngine()
    clipped = IQBlock(two_tones(LEVEL, seconds=0.3), CENTER, FS, retuned=True)
    quiet = IQBlock(two_tones(LEVEL - 20.0, seconds=0.3), CENTER, FS, retuned=True)
    assert all(f.meta.get("overload") for f in eng.frames_of_block(clipped))
    assert not any(f.meta.get("overload") for f in eng.frames_of_block(quiet))

    rng = np.random.default_rng(9)
    lat, lon = 52.0 + rng.normal(0, 1e-3, 40), 13.0 + rng.normal(0, 1e-3, 40)
    tr = Track("T00001", 446e6, 446.01e6, 0.0, 40.0, 1.0)
    tr.readings = [Reading(float(i), -40.0 - 10 * np.log10(1 + i), float(lat[i]), float(lon[i]), overload=True)
                   for i in range(40)]
    locate = track_locator(min_readings=20)
    assert locate(tr) is None  # every reading overloaded: none left
    tr.readings = [Reading(r.t_s, r.power_db, r.lat, r.lon) for r in tr.readings]
    tr.track_id = "T00002"
    assert locate(tr) is not None
