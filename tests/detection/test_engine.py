"""The detection engine on small synthetic IQ: event sequence and keys, timing and frequency
accuracy, update rate limit, ``finish``, framing, ``missing``, measured Pfa, time offset."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detector.core.types import IQBlock
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.detection._tracking import TrackerConfig
from detector.sim import awgn, gate, nfm, tone
from tests._helpers import iq_blocks, run_iq, survey_iq

FS = 250e3
CENTER = 446.05e6
NOISE = -30.0
NFFT = 256  # default_nfft(250 kHz, 1 kHz bins)
BIN = FS / NFFT  # 976.6 Hz
FRAME = 20 * 128 / FS  # 20 segments of 128 samples (half-overlapped 256-point FFTs): 10.24 ms

#: keys the engine module docstring and README "replay --jsonl" document for every event
DOC_KEYS = {"event", "track_id", "alert", "center_hz", "bandwidth_hz", "first_seen_s", "last_seen_s", "peak_dbfs",
            "snr_db", "excess_db", "classification", "bursts", "reasons", "location", "peak_dbm"}
#: and for track events (README example)
TRACK_KEYS = DOC_KEYS | {"severity", "score_terms"}


def process(engine, x, *, size=1 << 16):
    """Events of ``process_block`` over ``x`` (without ``finish``)."""
    return run_iq(engine, x, FS, CENTER, block=size, finish=False)


def tone_iq(seconds, on, *, f=30e3, level=-40.0, seed=1):
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    return awgn(n, NOISE, rng) + gate(tone(n, FS, f, level), FS, [on])


def test_events_go_new_update_end_with_the_documented_keys_and_true_times():
    eng = DetectionEngine(EngineConfig(tracker=TrackerConfig(gap_s=0.2)))
    events = process(eng, tone_iq(2.0, (0.5, 1.5)))
    assert eng.finish() == []  # the track ended inside process_block (0.2 s gap), nothing left open
    assert len({e["track_id"] for e in events}) == 1
    kinds = [e["event"] for e in events]
    assert kinds[0] == "new" and kinds[-1] == "end" and set(kinds[1:-1]) == {"update"} and len(kinds) >= 3
    for e in events:
        assert TRACK_KEYS <= set(e), TRACK_KEYS - set(e)
        assert e["track_id"] == "T00001"
    end = events[-1]
    assert abs(end["first_seen_s"] - 0.5) <= FRAME and abs(end["last_seen_s"] - 1.5) <= FRAME
    assert end["center_hz"] - CENTER == pytest.approx(30e3, abs=BIN)
    assert end["bandwidth_hz"] <= 5 * BIN  # a tone: the window's main lobe (4 bins)
    assert end["bursts"] == 1 and end["alert"]
    assert end["duty_cycle"] == pytest.approx(1.0, abs=0.02)
    assert end["f_lo_hz"] <= end["center_hz"] <= end["f_hi_hz"]
    # every event of the track starts at the same time, and its span only grows
    assert {e["first_seen_s"] for e in events} == {end["first_seen_s"]}
    assert [e["last_seen_s"] for e in events] == sorted(e["last_seen_s"] for e in events)
    # the track is ended after 0.2 s of silence, in the block of that time (blocks of 0.26 s)
    assert len(eng.tracker.open) == 0 and eng.all_tracks["T00001"].ended


def test_updates_are_rate_limited_by_update_interval():
    x = tone_iq(3.0, (0.3, 3.0))

    def updates(interval):
        ev = process(DetectionEngine(EngineConfig(update_interval_s=interval)), x)
        return ev, [e for e in ev if e["event"] == "update"]

    slow_ev, slow = updates(5.0)
    # with 5 s, in 3 s: an update only when the alert state or class changes
    prev = {}
    for e in slow_ev:
        if e["event"] == "update":
            p = prev[e["track_id"]]
            assert (e["alert"], e["classification"]) != (p["alert"], p["classification"])
        prev[e["track_id"]] = e
    assert 1 <= len(slow) <= 3
    fast_ev, fast = updates(0.5)
    # with 0.5 s: also a periodic update, never two unchanged ones closer than 0.5 s
    unchanged = [b for a, b in zip(fast_ev, fast_ev[1:])
                 if b["event"] == "update" and (a["alert"], a["classification"]) == (b["alert"], b["classification"])]
    assert len(unchanged) >= 3
    times = [e["last_seen_s"] for e in fast_ev]
    for a, b in zip(fast_ev, fast_ev[1:]):
        if b in unchanged:
            assert b["last_seen_s"] - a["last_seen_s"] >= 0.5 - 1e-6
    assert len(fast) >= len(slow) + 3
    assert times[-1] <= 3.0 + FRAME


def test_finish_ends_the_open_tracks_once():
    eng = DetectionEngine()
    events = process(eng, tone_iq(1.5, (0.2, 1.5)))
    assert [e["event"] for e in events if e["event"] == "end"] == []
    assert [tr.track_id for tr in eng.tracker.open if tr.confirmed] == ["T00001"]
    (end,) = [e.to_json() for e in eng.finish()]
    assert end["event"] == "end" and end["track_id"] == "T00001"
    assert abs(end["first_seen_s"] - 0.2) <= FRAME
    n_frames = int(1.5 * FS) // (20 * 128)
    assert end["last_seen_s"] == pytest.approx(n_frames * FRAME, abs=1e-3)  # the end of the last whole frame
    assert eng.tracker.open == [] and eng.finish() == []


def test_frames_of_block_counts_and_times():
    eng = DetectionEngine()
    x = awgn(250_000, NOISE, np.random.default_rng(2))
    first = eng.frames_of_block(IQBlock(x[:100_000], CENTER, FS, offset_s=0.0, retuned=True))
    second = eng.frames_of_block(IQBlock(x[100_000:], CENTER, FS, offset_s=0.4))
    spf = 20 * 128  # samples per frame
    assert len(first) == 100_000 // spf == 39
    assert len(first) + len(second) == 250_000 // spf == 97  # the remainder carries over
    frames = first + second
    assert [f.offset_s for f in frames] == pytest.approx([i * FRAME for i in range(97)], abs=1e-9)
    f = frames[0]
    assert f.duration_s == pytest.approx(FRAME) and f.unit == "dBFS" and f.center_hz == CENTER
    assert f.freqs_hz.size == NFFT and np.diff(f.freqs_hz) == pytest.approx(BIN)
    assert f.freqs_hz[NFFT // 2] == pytest.approx(CENTER)
    assert f.n_looks == pytest.approx(20, abs=0.5)  # 20 half-overlapped Hann segments ≈ 20 looks
    # noise of −30 dBFS total spread over 256 bins: about −54 dBFS per bin
    assert np.median(np.concatenate([s.power for s in frames])) == pytest.approx(NOISE - 10 * np.log10(NFFT), abs=2.0)


def test_a_block_shorter_than_a_frame_gives_nothing_and_carries_over():
    eng = DetectionEngine()
    x = tone_iq(0.2, (0.0, 0.2))
    assert eng.process_block(IQBlock(x[:1000], CENTER, FS, offset_s=0.0, retuned=True)) == []
    assert eng.frames_processed == 0
    eng.process_block(IQBlock(x[1000:], CENTER, FS, offset_s=1000 / FS))
    assert eng.frames_processed == x.size // (20 * 128)
    assert eng.all_tracks["T00001"].first_seen_s == pytest.approx(0.0, abs=1e-9)


@pytest.fixture(scope="module")
def steady_baseline():
    """A 2 s survey: noise and a steady carrier at +50 kHz."""
    rng = np.random.default_rng(3)
    n = int(2 * FS)
    return survey_iq(awgn(n, NOISE, rng) + tone(n, FS, 50e3, -40.0), FS, CENTER)


@pytest.mark.parametrize("off_at", [1.0, None])
def test_missing_event_when_a_surveyed_station_disappears(steady_baseline, off_at):
    rng = np.random.default_rng(4)
    n = int(3 * FS)
    x = awgn(n, NOISE, rng) + gate(tone(n, FS, 50e3, -40.0), FS, [(0.0, off_at or 3.0)])
    eng = DetectionEngine(EngineConfig(missing_after_s=1.0), baseline=steady_baseline)
    events = process(eng, x, size=8192) + [e.to_json() for e in eng.finish()]
    missing = [e for e in events if e["event"] == "missing"]
    assert not [e for e in events if e["alert"] and e["event"] != "missing"]  # the station is explained
    if off_at is None:
        assert missing == []
        return
    (m,) = missing  # reported once
    block = 8192 / FS
    assert DOC_KEYS <= set(m) and m["alert"] and m["track_id"].startswith("M")
    assert m["center_hz"] - CENTER == pytest.approx(50e3, abs=BIN)
    assert 0 < m["first_seen_s"] - off_at <= block + FRAME  # checked on each block's last frame
    assert m["last_seen_s"] - m["first_seen_s"] == pytest.approx(1.0, abs=block + FRAME)
    assert "absent" in m["reasons"][0]


def test_measured_pfa_on_noise_is_close_to_the_configured_pfa():
    # targets relaxed so that the per-bin Pfa (1.1e-3) is measurable in 2 s (47 k bin decisions)
    cfg = EngineConfig(fa_per_hour=1e5, track_fa_per_hour=1e5)
    eng = DetectionEngine(cfg)
    x = awgn(int(2 * FS), NOISE, np.random.default_rng(5))
    process(eng, x)
    target = eng._pfa(NFFT, FRAME)  # noqa: SLF001 - the configured per-bin, per-frame Pfa
    assert target == pytest.approx(1.0 / 900, rel=0.01)
    assert eng.frames_processed == x.size // (20 * 128)
    assert eng.tested_bins == eng.frames_processed * eng.last_result.n_tested_bins
    assert target / 2 <= eng.measured_pfa <= 2 * target, (eng.measured_pfa, target)


def test_the_default_pfa_is_far_lower_and_noise_flags_nothing():
    eng = DetectionEngine()
    process(eng, awgn(int(1 * FS), NOISE, np.random.default_rng(6)))
    assert eng._pfa(NFFT, FRAME) < 1e-6  # noqa: SLF001
    assert eng.measured_pfa == 0.0 and eng.all_tracks == {}


def test_time_offset_shifts_every_event_time():
    x = tone_iq(1.5, (0.5, 1.0))
    base = DetectionEngine(EngineConfig(tracker=TrackerConfig(gap_s=0.2)))
    shifted = DetectionEngine(EngineConfig(tracker=TrackerConfig(gap_s=0.2)))
    shifted.time_offset_s = 100.0
    a = process(base, x) + [e.to_json() for e in base.finish()]
    b = process(shifted, x) + [e.to_json() for e in shifted.finish()]
    assert [e["event"] for e in a] == [e["event"] for e in b] and len(a) >= 2
    for ea, eb in zip(a, b):
        assert eb["first_seen_s"] - ea["first_seen_s"] == pytest.approx(100.0, abs=1e-3)
        assert eb["last_seen_s"] - ea["last_seen_s"] == pytest.approx(100.0, abs=1e-3)
        assert eb["center_hz"] == ea["center_hz"]
    assert shifted.last_spectrum.offset_s - base.last_spectrum.offset_s == pytest.approx(100.0)


def test_events_do_not_depend_on_how_the_iq_is_cut_into_blocks():
    """A 0.7 s tone at +30 kHz and a 1.5 s NFM call at −40 kHz: the same tracks and events whether
    the IQ comes in blocks of 3 frames or of a second. The centers agree within a quarter bin (a
    stack's frames may share one CFAR floor, so the edge bins of an emission can differ)."""
    rng = np.random.default_rng(7)
    n = int(3 * FS)
    x = (awgn(n, NOISE, rng) + gate(tone(n, FS, 30e3, -40.0), FS, [(0.5, 1.2)])
         + gate(nfm(n, FS, -40e3, -35.0, rng), FS, [(1.0, 2.5)]))
    runs = [run_iq(DetectionEngine(), x, FS, CENTER, block=size) for size in (3 * 20 * 128, 8192, 1 << 16, 1 << 18)]
    key = ("event", "track_id", "first_seen_s", "last_seen_s", "classification", "bursts", "alert")
    ref = runs[0]
    ends = {e["track_id"]: e for e in ref if e["event"] == "end"}
    assert sorted((round((e["center_hz"] - CENTER) / 1e3), e["classification"]) for e in ends.values()) == \
        [(-40, "nfm_voice"), (30, "pulsed")]  # a 0.7 s keyed carrier is short: pulsed, not carrier
    for other in runs[1:]:
        assert [tuple(e[k] for k in key) for e in other] == [tuple(e[k] for k in key) for e in ref]
        assert [e["center_hz"] for e in other] == pytest.approx([e["center_hz"] for e in ref], abs=BIN / 4)


def nan_bursts(n, *, every_s=1.0, length_s=0.05, first_s=0.5):
    """Sample indices of NaN bursts of ``length_s`` every ``every_s`` from ``first_s`` (bool (n,))."""
    bad = np.zeros(n, dtype=bool)
    for t0 in np.arange(first_s, n / FS, every_s):
        bad[int(t0 * FS):int((t0 + length_s) * FS)] = True
    return bad


def flagged_frames(bad):
    """Frames (20 segments of 128 samples, 256-point FFTs) whose samples hold a bad one: exactly
    those the frame stream flags, counted independently here."""
    advance, span = 20 * 128, 19 * 128 + 256
    n_frames = (bad.size - span) // advance + 1
    cs = np.concatenate(([0], np.cumsum(bad)))
    starts = np.arange(n_frames) * advance
    return int(np.count_nonzero(cs[starts + span] > cs[starts])), n_frames


def test_nan_bursts_are_left_out_of_detection_a_gap_not_silence(steady_baseline):
    """A surveyed station at +50 kHz and a new steady −20 dBFS carrier at −30 kHz, with 50 ms of
    NaN samples every second: the frames cut from them are counted and left out, so the station
    is never 'missing' (its check sees only whole frames), the carrier keeps one track and one
    burst, and the floor stays the noise floor (a zero-filled frame's floor is ≈ −300 dB)."""
    rng = np.random.default_rng(5)
    n = int(4 * FS)
    clean = awgn(n, NOISE, rng) + tone(n, FS, 50e3, -40.0) + tone(n, FS, -30e3, -20.0)
    bad = nan_bursts(n)
    x = clean.copy()
    x[bad] = np.complex64(complex(np.nan, np.nan))
    # missing_after_s shorter than a burst: before the fix the zero-filled frames gave 'missing'
    # (blocks of 16 ms: a block's last frame, where the check looks, is often inside a burst)
    cfg = EngineConfig(missing_after_s=0.02)
    ref = DetectionEngine(cfg, baseline=steady_baseline)
    eng = DetectionEngine(cfg, baseline=steady_baseline)
    ref_events, events, floors = [], [], []
    for b_clean, b in zip(iq_blocks(clean, FS, CENTER, block=4096), iq_blocks(x, FS, CENTER, block=4096)):
        ref_events += [e.to_json() for e in ref.process_block(b_clean)]
        events += [e.to_json() for e in eng.process_block(b)]
        if eng.last_result is not None:  # the floor /health and the live view report, after every block
            floors.append((eng.last_result.noise_floor_dbfs, ref.last_result.noise_floor_dbfs))
    events += [e.to_json() for e in eng.finish()]
    n_bad, n_frames = flagged_frames(bad)
    assert n_bad == 4 * 6  # 50 ms and a frame's 10.5 ms span over 10.24 ms frames: 6 frames a burst
    assert eng.frames_excluded == n_bad and eng.frames_processed == n_frames - n_bad
    assert eng._stream.nonfinite_samples == int(bad.sum()) == 4 * 12500  # noqa: SLF001
    assert [e for e in events if e["event"] == "missing"] == []
    tracks = {e["track_id"] for e in events if e["event"] in ("new", "update", "end")}
    assert tracks == {"T00001"} == {e["track_id"] for e in ref_events}
    end = events[-1]
    assert end["event"] == "end" and end["center_hz"] - CENTER == pytest.approx(-30e3, abs=BIN)
    assert end["bursts"] == 1 and end["classification"] == "carrier"
    assert end["duty_cycle"] == pytest.approx(1.0, abs=0.01)  # the blind frames are not counted off
    tr = eng.all_tracks["T00001"]
    assert tr.blind_s == pytest.approx(n_bad * FRAME, abs=1e-9)
    assert tr.frames_active == eng.frames_processed == ref.all_tracks["T00001"].frames_active - n_bad
    floor, floor_ref = np.array(floors).T
    assert floor.size == 4 * FS // 4096 + 1 and np.all(np.isfinite(floor)) and np.max(np.abs(floor - floor_ref)) <= 1.0


def test_a_new_emission_inside_nan_bursts_is_still_detected():
    """A carrier that starts 20 ms after a NaN burst began and lasts 1.18 s is found at its frequency;
    without a baseline, CFAR alone."""
    rng = np.random.default_rng(6)
    n = int(2 * FS)
    x = awgn(n, NOISE, rng) + gate(tone(n, FS, 30e3, -40.0), FS, [(0.52, 1.7)])
    bad = nan_bursts(n, first_s=0.5, every_s=0.5)
    x[bad] = np.complex64(complex(np.inf, 0.0))
    eng = DetectionEngine(EngineConfig(tracker=TrackerConfig(gap_s=0.2)))
    events = process(eng, x, size=8192) + [e.to_json() for e in eng.finish()]
    assert eng.frames_excluded == flagged_frames(bad)[0] == 3 * 6
    (tid,) = {e["track_id"] for e in events}
    end = events[-1]
    assert end["event"] == "end" and end["center_hz"] - CENTER == pytest.approx(30e3, abs=BIN)
    assert end["alert"] and end["bursts"] == 1
    # it starts after the first burst (its first observed frame) and ends at its true end
    assert 0.55 - FRAME <= end["first_seen_s"] <= 0.56 + FRAME and abs(end["last_seen_s"] - 1.7) <= 2 * FRAME


def test_process_spectrum_leaves_a_nonfinite_frame_out():
    eng = DetectionEngine()
    rng = np.random.default_rng(7)
    x = awgn(int(0.2 * FS), NOISE, rng) + tone(int(0.2 * FS), FS, 30e3, -40.0)
    frames = list(eng.frames_of_block(IQBlock(x, CENTER, FS)))
    frames[3] = replace(frames[3], meta={"nonfinite": True})
    other = DetectionEngine()
    for f in frames:
        other.process_spectrum(f)
    assert other.frames_excluded == 1 and other.frames_processed == len(frames) - 1
    assert other.tracker.blind_between(0.0, 1.0) == pytest.approx(frames[3].duration_s)
