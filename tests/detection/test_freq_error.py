"""The receiver's frequency error estimated from known stations (issue #18 item 3).

A receiver +50 ppm high at 404 MHz sees the whitelisted 404.100 MHz carrier at 404.1202 MHz. That
must be the known station (no new alert, no "missing" event), with the error reported; a new
emitter that does not fit the common shift still alerts, at its true frequency.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.detection import Channel, Whitelist
from detector.detection._freq_error import FrequencyErrorEstimator
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.sim import awgn, gate, tone
from tests._helpers import as_cu8, recording_of, run_iq, survey_iq

FS = 1.024e6
CENTER = 404.0e6
NOISE = -30.0
PPM = 50.0
SHIFT = PPM * 1e-6 * CENTER  # 20.2 kHz: what the receiver adds to every frequency
STATIONS = (100e3, -300e3)  # the licensed carrier at 404.100 MHz and a beacon at 403.700 MHz


def band(seconds, *, shift_hz=0.0, seed=1, extra=None):
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = awgn(n, NOISE, rng)
    for f in STATIONS:
        x = x + tone(n, FS, f + shift_hz, -35.0)
    if extra is not None:
        f, level, on = extra
        x = x + gate(tone(n, FS, f + shift_hz, level), FS, [on])
    return as_cu8(x)


@pytest.fixture(scope="module")
def baseline():
    return survey_iq(band(3.0, seed=2), FS, CENTER)


def whitelist():
    return Whitelist(tuple(Channel(center_hz=CENTER + f, bandwidth_hz=12.5e3, name=f"ch{i}") for i, f in enumerate(STATIONS)))


def alerting(events):
    return [e for e in events if e["alert"]]


def test_without_the_estimate_the_shifted_stations_are_new_alerts_and_missing(baseline):
    """The failure the issue measured: the known stations at +20 kHz alert, and go "missing"."""
    eng = DetectionEngine(EngineConfig(frequency_error=None, missing_after_s=2.0), baseline=baseline, whitelist=whitelist())
    events = run_iq(eng, band(4.0, shift_hz=SHIFT), FS, CENTER)
    assert {round(e["center_hz"] - CENTER - SHIFT, -3) for e in alerting(events) if e["event"] != "missing"} >= {100e3}
    assert any(e["event"] == "missing" for e in events)


def test_baseline_stations_give_the_error_and_no_false_alert(baseline):
    eng = DetectionEngine(EngineConfig(missing_after_s=2.0), baseline=baseline, whitelist=whitelist())
    events = run_iq(eng, band(4.0, shift_hz=SHIFT), FS, CENTER)
    assert alerting(events) == []
    st = eng.frequency_error.status()
    # against the whitelisted channels: absolute; against the survey (surveyed on frequency): the same
    assert st["ppm_estimated"] == pytest.approx(PPM, abs=1.5) and st["source"] == "whitelist" and st["stations"] == 2
    assert st["offset_hz"] == pytest.approx(SHIFT, abs=600)
    assert st["ppm_vs_survey"] == pytest.approx(PPM, abs=1.5)


def test_survey_stations_alone_give_the_error_against_the_survey(baseline):
    eng = DetectionEngine(EngineConfig(missing_after_s=2.0), baseline=baseline)
    events = run_iq(eng, band(4.0, shift_hz=SHIFT), FS, CENTER)
    assert alerting(events) == []  # neither new tracks on the stations nor "missing" events
    st = eng.frequency_error.status()
    assert st["source"] == "baseline" and st["stations"] == 2 and st["ppm_estimated"] == pytest.approx(PPM, abs=1.5)
    # the reported frequencies stay the receiver's (the survey's own receiver may be off too): the
    # survey is met where it is
    assert eng.frequency_error.baseline_shift_hz(CENTER) == pytest.approx(-SHIFT, abs=600)


def test_whitelisted_channels_give_the_error_without_a_baseline():
    eng = DetectionEngine(EngineConfig(), whitelist=whitelist())
    events = run_iq(eng, band(4.0, shift_hz=SHIFT), FS, CENTER)
    assert alerting(events) == []
    st = eng.frequency_error.status()
    assert st["ppm_estimated"] == pytest.approx(PPM, abs=2.5) and st["source"] == "whitelist" and st["stations"] == 2


def test_a_new_emitter_still_alerts_at_its_true_frequency(baseline):
    eng = DetectionEngine(EngineConfig(), baseline=baseline, whitelist=whitelist())
    events = run_iq(eng, band(4.0, shift_hz=SHIFT, extra=(-120e3, -40.0, (1.0, 4.0))), FS, CENTER)
    (tid,) = {e["track_id"] for e in alerting(events)}
    last = [e for e in events if e["track_id"] == tid][-1]
    assert abs(last["center_hz"] - (CENTER - 120e3)) < 1.5e3  # corrected: where it really is


def test_a_receiver_on_frequency_estimates_no_error(baseline):
    eng = DetectionEngine(EngineConfig(), baseline=baseline)
    run_iq(eng, band(2.0, seed=5), FS, CENTER)
    st = eng.frequency_error.status()
    assert abs(st["ppm_estimated"] or 0.0) < 1.0 and st["offset_hz"] == 0.0 and st["source"] == "baseline"


def test_an_offset_confirms_a_change_before_applying_it():
    est = FrequencyErrorEstimator().baseline
    assert est.update(5000.0, center_hz=400e6, bin_hz=1000.0, stations=1)  # acquisition: at once
    assert est.offset_hz == 5000.0 and est.ppm == pytest.approx(12.5)
    assert not est.update(2000.0, center_hz=400e6, bin_hz=1000.0, stations=1)  # one estimate
    assert est.update(2100.0, center_hz=400e6, bin_hz=1000.0, stations=1)  # confirmed
    assert est.offset_hz == pytest.approx(7050.0)
    assert est.at(800e6) == pytest.approx(14100.0)  # the error is relative: twice the center, twice the Hz
    assert not est.update(100.0, center_hz=400e6, bin_hz=1000.0, stations=1)  # under a quarter bin


def test_the_monitor_reports_the_estimate_in_health(baseline):
    """``/health`` → ``calibration.ppm_estimated`` (issue #18 item 3), from a monitor run."""
    from detector.pipeline import Monitor

    x = band(3.0, shift_hz=SHIFT, seed=7)

    Recording = recording_of(x, FS, CENTER)

    seen = []
    mon = Monitor(Recording, DetectionEngine(EngineConfig(), baseline=baseline, whitelist=whitelist()), block_samples=1 << 16)
    mon.on_alert.append(lambda ev, alert: seen.append(ev))
    mon.start()
    try:
        assert mon.finished.wait(30)
        cal = mon.health()["calibration"]
        assert cal["ppm_estimated"] == pytest.approx(PPM, abs=1.5)
        assert cal["frequency_error"]["source"] == "whitelist" and seen == []
    finally:
        mon.stop()


def test_missing_bins_of_a_sweep_do_not_break_the_estimate(baseline):
    """NaN bins (a sweep's failed values) are no line: the estimate holds, with no NaN warning."""
    import warnings

    from detector.detection._freq_error import FrequencyErrorEstimator
    from detector.baseline import align

    eng = DetectionEngine(EngineConfig())
    frames = eng.frames_of_block(_block(band(0.3, shift_hz=SHIFT, seed=9)))
    f = frames[0].freqs_hz
    p = 10 * np.log10(np.mean([10 ** (s.power / 10) for s in frames], axis=0))
    p[::7] = np.nan
    a = align(baseline, f, frames[0].rbw_hz)
    est = FrequencyErrorEstimator()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = est.residual_from_baseline(p, a.median_db, a.occupancy, a.covered, center_hz=CENTER, bin_hz=f[1] - f[0])
        w = est.residual_from_channels(f, p, [CENTER + s for s in STATIONS], center_hz=CENTER)
    assert r is not None and r[0] == pytest.approx(SHIFT, abs=600)
    assert w is not None and w[0] == pytest.approx(SHIFT, abs=1000)


def _block(x):
    from detector.core.types import IQBlock

    return IQBlock(x, CENTER, FS, offset_s=0.0, retuned=True)
