"""Whitelist, missing emissions, classification and the schedule-aware score, on PSD frames and IQ."""

from __future__ import annotations

import numpy as np
import pytest

from detector.baseline import BaselineBuilder
from detector.detection import Channel, ExamSession, Whitelist, load_whitelist
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.core.errors import InputError
from detector.sim import awgn, gate, nfm, tone
from detector.core.types import Spectrum
from tests._helpers import as_cu8, run_iq

CENTER = 446.05e6
M, LOOKS, FRAME_S = 256, 20.0, 0.1
FREQS = CENTER + (np.arange(M) - M // 2) * 1000.0


def frame(rng, i, *, lines=()):
    """A PSD frame: Gamma noise at −60 dBFS per bin plus steady lines {bin: dBFS}."""
    lin = 1e-6 * rng.gamma(LOOKS, 1 / LOOKS, size=M)
    for k, level in lines:
        lin[k] += 10 ** (level / 10)
    return Spectrum(freqs_hz=FREQS, power=(10 * np.log10(lin)).astype(np.float32), rbw_hz=1500.0, n_looks=LOOKS,
                    offset_s=i * FRAME_S, duration_s=FRAME_S, center_hz=CENTER)


def baseline_of(frames):
    b = BaselineBuilder(FREQS, rbw_hz=1500.0, site="s1", n_looks=LOOKS)
    for f in frames:
        b.add(f)
    return b.build()


def run(engine, frames):
    events = []
    for f in frames:
        events += engine.process_spectrum(f)
    return [e.to_json() for e in events + engine.finish()]


def test_missing_event_when_a_survey_emission_goes_silent():
    rng = np.random.default_rng(1)
    base = baseline_of([frame(rng, i, lines=[(60, -40.0)]) for i in range(600)])
    exam = [frame(rng, i, lines=[(60, -40.0)] if i < 100 else []) for i in range(600)]  # off from 10 s
    events = run(DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=base), exam)
    missing = [e for e in events if e["event"] == "missing"]
    assert len(missing) == 1
    assert missing[0]["center_hz"] == pytest.approx(FREQS[60], abs=1500)
    assert missing[0]["first_seen_s"] == pytest.approx(10.0, abs=0.2)
    assert missing[0]["last_seen_s"] == pytest.approx(40.0, abs=0.3)
    assert not [e for e in events if e["event"] != "missing" and e["alert"]]


def test_the_surveyed_dc_spike_is_never_reported_missing():
    """The survey's receiver had a DC spike (a steady line at the tuned center); the exam's does
    not (DC correction on, another dongle). A station beside it does go silent: only it is missing."""
    rng = np.random.default_rng(5)
    dc = M // 2  # FREQS[dc] == CENTER
    base = baseline_of([frame(rng, i, lines=[(dc, -40.0), (dc + 1, -45.0), (dc + 20, -40.0)]) for i in range(600)])
    exam = [frame(rng, i) for i in range(600)]
    missing = [e for e in run(DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=base), exam) if e["event"] == "missing"]
    assert [round(e["center_hz"] - CENTER) for e in missing] == [20000]


def test_whitelist_suppresses_unless_far_above_baseline():
    rng = np.random.default_rng(2)
    base = baseline_of([frame(rng, i, lines=[(100, -45.0)]) for i in range(600)])
    wl = Whitelist((Channel(FREQS[100], 12500.0, "repeater"), Channel(FREQS[180], 12500.0, "licensed-b")))
    # a licensed channel that was quiet in the survey keys up: whitelisted, no alert
    exam = [frame(rng, i, lines=[(180, -45.0)]) for i in range(100)]
    assert not [e for e in run(DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=base, whitelist=wl), exam) if e["alert"]]
    # without the whitelist the same is an alert
    assert [e for e in run(DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=base), exam) if e["alert"]]
    # the surveyed repeater 15 dB above its baseline level: alert despite the whitelist
    loud = [frame(rng, i, lines=[(100, -30.0)]) for i in range(100)]
    alerts = [e for e in run(DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=base, whitelist=wl), loud) if e["alert"]]
    assert alerts and any("whitelisted channel repeater" in r for r in alerts[-1]["reasons"])


def test_a_channel_whitelisted_by_a_dismissal_alerts_only_far_above_its_dismissed_level():
    """A dismissed newcomer stands far above the baseline by nature: its reference is the level it
    was dismissed at, not the baseline (else it alerts again at every restart)."""
    rng = np.random.default_rng(6)
    base = baseline_of([frame(rng, i, lines=[(100, -45.0)]) for i in range(600)])
    exam = [frame(rng, i, lines=[(100, -30.0)]) for i in range(100)]

    def alerts(level):
        wl = Whitelist((Channel(FREQS[100], 12500.0, "dismissed A-1", "s1", level_dbfs=level),))
        eng = DetectionEngine(EngineConfig(frame_s=FRAME_S), baseline=base, whitelist=wl, site="s1")
        return [e for e in run(eng, exam) if e["alert"]]

    assert alerts(-31.0) == []  # as loud as when dismissed: quiet, although 15 dB above the baseline
    loud = alerts(-45.0)  # 15 dB above the dismissed level: alerts, saying why
    assert loud and any("dB above its level when dismissed" in r for r in loud[-1]["reasons"])


def test_whitelist_files(tmp_path):
    c = tmp_path / "wl.csv"
    c.write_text("center_hz,bandwidth_hz,name,site\n460.25M,12.5k,repeater,\n446.03125M,12500,caretaker,school-7\n")
    wl = load_whitelist(c)
    assert wl.match(460.251e6).name == "repeater"
    assert wl.match(446.031e6, site="school-7").name == "caretaker"
    assert wl.match(446.031e6, site="school-9") is None
    t = tmp_path / "wl.toml"
    t.write_text('far_above_db = 12\n[[channel]]\ncenter_hz = "165.2M"\nbandwidth_hz = 12500\nname = "lmr"\n')
    wl = load_whitelist(t)
    assert wl.far_above_db == 12 and wl.match(165.2e6).name == "lmr"
    bad = tmp_path / "bad.csv"
    bad.write_text("freq,name\n1,x\n")
    with pytest.raises(InputError, match="center_hz"):
        load_whitelist(bad)


FS = 250e3


def iq_run(x, **kw):
    return run_iq(DetectionEngine(EngineConfig(), **kw), as_cu8(x), FS, CENTER)


def final(events):
    ends = [e for e in events if e["event"] == "end"]
    return max(ends, key=lambda e: e["snr_db"])


@pytest.mark.parametrize("kind, expected", [("nfm", "nfm_voice"), ("cw", "carrier"), ("fsk", "fsk_data"), ("ook", "pulsed")])
def test_classification(kind, expected):
    rng = np.random.default_rng(3)
    n = int(4 * FS)
    x = awgn(n, -30.0, rng)
    if kind == "nfm":
        x += gate(nfm(n, FS, 30e3, -30.0, rng), FS, [(0.5, 3.5)])
    elif kind == "cw":
        x += gate(tone(n, FS, 30e3, -40.0), FS, [(0.5, 3.5)])
    elif kind == "fsk":
        # 2-FSK ±5 kHz at 4.8 kbit/s, packets of 100 ms every 400 ms
        bits = rng.integers(0, 2, n // 52 + 1) * 2 - 1
        inst = 30e3 + 5e3 * bits[np.arange(n) // 52]
        x += gate((0.1 * np.exp(2j * np.pi * np.cumsum(inst) / FS)).astype(np.complex64), FS,
                  [(t, t + 0.1) for t in np.arange(0.5, 3.5, 0.4)])
    else:
        # OOK: 1 ms marks keyed at random, 150 ms packets
        keys = np.repeat(rng.integers(0, 2, n // 250 + 1), 250)[:n]
        x += gate(tone(n, FS, 30e3, -20.0) * keys, FS, [(t, t + 0.15) for t in np.arange(0.5, 3.5, 0.6)])
    assert final(iq_run(x))["classification"] == expected


def test_schedule_raises_the_score():
    rng = np.random.default_rng(4)
    n = int(4 * FS)
    x = awgn(n, -30.0, rng) + gate(nfm(n, FS, 30e3, -30.0, rng), FS, [(2.0, 3.5)])
    inside = final(iq_run(x, sessions=(ExamSession(0.0, 100.0),)))
    outside = final(iq_run(x, sessions=(ExamSession(50.0, 100.0),)))
    assert inside["alert"] and outside["alert"]
    assert inside["score_terms"]["schedule"] == 2.0 and outside["score_terms"]["schedule"] == 0.0
    assert any("into exam" in r for r in inside["reasons"])


def test_a_voice_call_is_not_called_data_while_its_first_burst_is_on_the_air():
    rng = np.random.default_rng(4)
    n = int(3 * FS)
    x = awgn(n, -30.0, rng) + gate(nfm(n, FS, 30e3, -30.0, rng), FS, [(0.5, 2.5)])
    events = [e for e in iq_run(x) if e["alert"]]
    first = events[0]
    assert first["first_seen_s"] == pytest.approx(0.5, abs=0.05)
    assert first["last_seen_s"] - first["first_seen_s"] < 0.2  # the first alert comes within the first frames
    assert first["classification"] == "unknown"  # not yet fsk_data or pulsed: the burst has not ended
    assert events[-1]["event"] == "end" and events[-1]["classification"] == "nfm_voice"
    assert {e["classification"] for e in events} <= {"unknown", "nfm_voice"}


def test_a_short_burst_gets_a_short_burst_class_once_it_has_ended():
    rng = np.random.default_rng(5)
    n = int(2 * FS)
    x = awgn(n, -30.0, rng) + gate(nfm(n, FS, 30e3, -30.0, rng), FS, [(0.5, 0.8)])
    events = [e for e in iq_run(x) if e["alert"]]
    assert events[0]["classification"] == "unknown"
    # 0.3 s of an unmodulated-looking NFM carrier: a short keyed burst (its line dominates)
    assert events[-1]["event"] == "end" and events[-1]["classification"] in ("pulsed", "fsk_data")
