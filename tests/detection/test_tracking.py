"""The tracker on hand-made emissions: opening, linking, ending, bursts, duty cycle, readings,
bandwidth and center estimates (``detector.detection._tracking``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from detector.detection._emissions import Emission
from detector.detection._tracking import Reading, Tracker, TrackerConfig

FRAME = 0.01
BIN = 1000.0


def em(center_hz, bw_hz=10e3, *, peak=-40.0, snr=20.0, power=None, excess=None, occ=None):
    """An emission spanning ``bw_hz`` about ``center_hz``, occupied bandwidth ``bw_hz``."""
    lo, hi = center_hz - bw_hz / 2, center_hz + bw_hz / 2
    return Emission(center_hz=center_hz, bandwidth_hz=bw_hz, f_lo_hz=lo, f_hi_hz=hi, peak_hz=center_hz,
                    peak_dbfs=peak, snr_db=snr, excess_db=excess, power_dbfs=peak + 3 if power is None else power,
                    bins=np.arange(int(bw_hz // BIN)), baseline_occupancy=occ)


def feed(tracker, frames, *, t0=0.0, allow_join=True, position=None):
    """``frames``: one list of emissions per frame (empty = silent). Returns (new, updated, ended) summed."""
    new, upd, end = [], [], []
    for i, ems in enumerate(frames):
        n, u, e = tracker.update(ems, t0 + i * FRAME, FRAME, allow_join=allow_join, position=position)
        new += n
        upd += u
        end += e
    return new, upd, end


def test_a_strong_emission_opens_a_confirmed_track_at_once():
    tr = Tracker()
    new, upd, end = tr.update([em(100e3, snr=20.0)], 1.5, FRAME)
    assert [t.track_id for t in new] == ["T00001"] and upd == [] and end == []
    t = new[0]
    assert t.first_seen_s == t.last_seen_s == 1.5 and t.frames_active == 1 and t.bursts == 1
    assert (t.f_lo_hz, t.f_hi_hz) == (95e3, 105e3)
    assert t.center_hz == pytest.approx(100e3) and t.confirmed and not t.ended


def test_a_weak_emission_is_tentative_until_its_second_frame():
    tr = Tracker(id_prefix="X")
    new, _, _ = tr.update([em(100e3, snr=8.0)], 0.0, FRAME)
    assert new == [] and len(tr.open) == 1 and not tr.open[0].confirmed and tr.open[0].track_id == ""
    new, upd, _ = tr.update([em(100e3, snr=8.0)], FRAME, FRAME)
    assert [t.track_id for t in new] == ["X00001"] and upd == []
    assert new[0].frames_active == 2 and new[0].first_seen_s == 0.0


def test_the_same_frequency_next_frame_updates_the_same_track():
    tr = Tracker()
    new, upd, _ = feed(tr, [[em(100e3)], [em(100.5e3)], [em(99.5e3)]])
    assert len(new) == 1 and len(upd) == 2
    assert {t.track_id for t in upd} == {new[0].track_id} and all(t is new[0] for t in upd)
    t = new[0]
    assert t.frames_active == 3 and t.last_seen_s == pytest.approx(2 * FRAME) and len(tr.open) == 1
    assert (t.f_lo_hz, t.f_hi_hz) == (94.5e3, 105.5e3)  # the union of the spans


def test_the_link_gate_is_2_5_khz_beyond_the_track_span():
    """README "Tracks": a 2.5 kHz gate. 2 kHz beyond the span links; 4 kHz beyond opens another
    track (once the first is older than the 30 ms onset window)."""
    tr = Tracker()
    (t1,), _, _ = feed(tr, [[em(100e3)]] * 5)  # span 95–105 kHz, seen 0–40 ms
    n, u, _ = tr.update([em(109e3, bw_hz=4e3)], 5 * FRAME, FRAME)  # 107–111 kHz: 2 kHz beyond
    assert n == [] and u == [t1] and t1.f_hi_hz == 111e3
    n, u, _ = tr.update([em(117e3, bw_hz=4e3, snr=30.0)], 6 * FRAME, FRAME)  # 115–119 kHz: 4 kHz beyond
    assert len(n) == 1 and n[0] is not t1 and u == [] and len(tr.open) == 2


def test_a_gap_beyond_the_timeout_ends_the_track():
    tr = Tracker(TrackerConfig(gap_s=0.5))
    (t,), _, _ = feed(tr, [[em(100e3)]] * 3)  # last seen at 0.02 s
    assert tr.age(0.515) == [] and t in tr.open  # within gap_s: still open
    ended = tr.age(0.53)
    assert ended == [t] and t.ended and tr.open == []
    assert t.burst_ends == [pytest.approx(0.03)] and t.bursts == 1
    # the same frequency later is a new track with a new id
    new, _, _ = tr.update([em(100e3)], 1.0, FRAME)
    assert [x.track_id for x in new] == ["T00002"]


def test_update_ends_silent_tracks_of_other_frequencies():
    tr = Tracker(TrackerConfig(gap_s=0.1))
    (a,), _, _ = feed(tr, [[em(100e3)]])
    new, _, ended = tr.update([em(-300e3)], 0.2, FRAME)
    assert ended == [a] and len(new) == 1 and tr.open == new


def test_two_emissions_far_apart_give_two_tracks():
    tr = Tracker()
    new, _, _ = feed(tr, [[em(100e3), em(500e3)]] * 3)
    assert sorted(round(t.center_hz) for t in new) == [100000, 500000]
    assert len({t.track_id for t in new}) == 2 and len(tr.open) == 2
    assert all(t.frames_active == 3 for t in new)


def test_emissions_switching_on_together_are_one_transmission():
    """Within 250 kHz in the same frame (not the timeline's first): one track; on the first frame
    only emissions within ``join_hz`` (25 kHz) of each other are grouped."""
    tr = Tracker()
    new, _, _ = tr.update([em(100e3), em(200e3)], 1.0, FRAME, allow_join=True)
    assert len(new) == 1 and new[0].n_runs_max == 2
    assert (new[0].f_lo_hz, new[0].f_hi_hz) == (95e3, 205e3)
    first = Tracker()
    new, _, _ = first.update([em(100e3), em(200e3), em(220e3)], 0.0, FRAME, allow_join=False)
    assert sorted((t.f_lo_hz, t.f_hi_hz) for t in new) == [(95e3, 105e3), (195e3, 225e3)]


def test_bursts_split_by_silences_longer_than_burst_gap():
    """On 0–90 ms, off 200 ms, on 300–390 ms, a 30 ms dropout at 420–450 ms (shorter than the
    50 ms burst gap), on to 590 ms."""
    tr = Tracker()
    on = [[em(100e3)]]
    frames = on * 10 + [[]] * 20 + on * 12 + [[]] * 3 + on * 15
    (t,), _, _ = feed(tr, frames)
    assert t.bursts == 2 and t.burst_starts == [pytest.approx(0.0), pytest.approx(0.3)]
    assert t.burst_ends == [pytest.approx(0.1)]  # the open burst has no end yet
    assert t.frames_active == 37
    (ended,) = tr.close_all()
    assert ended is t and t.burst_ends == [pytest.approx(0.1), pytest.approx(0.6)]
    assert t.burst_durations_s == [pytest.approx(0.1), pytest.approx(0.3)]


def test_duty_cycle_and_burst_period():
    tr = Tracker()
    frames = ([[em(100e3)]] * 5 + [[]] * 15) * 4  # 50 ms on every 200 ms, 4 bursts
    (t,), _, _ = feed(tr, frames)
    assert t.bursts == 4 and t.frames_active == 20
    assert t.on_time_s == pytest.approx(0.2)
    assert t.span_s == pytest.approx(0.65)  # first seen 0, last 0.64, plus a frame
    assert t.duty_cycle == pytest.approx(0.2 / 0.65)
    assert t.burst_period_s == pytest.approx(0.2)


def test_irregular_bursts_have_no_period():
    tr = Tracker()
    on, off = [[em(100e3)]], [[]]
    (t,), _, _ = feed(tr, on + off * 9 + on + off * 29 + on + off * 7 + on)
    assert t.bursts == 4 and t.burst_period_s is None


def test_readings_accumulate_time_power_and_position():
    tr = Tracker()
    t = None
    for i, (lat, lon) in enumerate([(35.0, 135.0), (35.001, 135.002), (35.002, 135.004)]):
        n, _, _ = tr.update([em(100e3, power=-50.0 + i)], 2.0 + i * FRAME, FRAME, position=SimpleNamespace(lat=lat, lon=lon))
        t = t or n[0]
    assert t.readings == [Reading(2.0, pytest.approx(-50.0), 35.0, 135.0),
                          Reading(pytest.approx(2.01), pytest.approx(-49.0), 35.001, 135.002),
                          Reading(pytest.approx(2.02), pytest.approx(-48.0), 35.002, 135.004)]
    # two emissions of one frame in one track: one reading, their powers summed
    tr.update([em(100e3, power=-50.0), em(103e3, bw_hz=2e3, power=-50.0)], 2.03, FRAME)
    assert len(t.readings) == 4 and t.readings[-1].power_db == pytest.approx(-50.0 + 10 * np.log10(2))
    assert t.readings[-1].lat is None and t.readings[-1].lon is None  # no position given


def test_readings_are_capped_at_max_readings():
    tr = Tracker(TrackerConfig(max_readings=7))
    (t,), _, _ = feed(tr, [[em(100e3)]] * 12)
    assert len(t.readings) == 7 and t.frames_active == 12
    assert t.readings[-1].t_s == pytest.approx(6 * FRAME)


def test_bandwidth_is_the_90th_percentile_and_center_is_power_weighted():
    tr = Tracker()
    bws = [4e3, 12e3, 6e3, 10e3, 8e3, 5e3, 11e3, 7e3, 9e3, 13e3]
    (t,), _, _ = feed(tr, [[em(100e3, bw_hz=b)] for b in bws])
    assert t.bandwidth_hz == pytest.approx(np.percentile(bws, 90))
    assert t.bandwidth_hz == pytest.approx(12.1e3)
    # center: weighted by linear peak power; a 10 dB weaker frame weighs a tenth
    tr2 = Tracker()
    (c,), _, _ = feed(tr2, [[em(100e3, peak=-40.0)], [em(102e3, peak=-50.0)]])
    assert c.center_hz == pytest.approx((100e3 * 1.0 + 102e3 * 0.1) / 1.1)
    assert c.peak_dbfs == -40.0 and c.snr_db == 20.0


def test_peak_snr_excess_and_occupancy_are_maxima():
    tr = Tracker()
    (t,), _, _ = feed(tr, [[em(100e3, peak=-45.0, snr=18.0, excess=4.0, occ=0.1)],
                           [em(100e3, peak=-41.0, snr=16.0, excess=None)],
                           [em(100e3, peak=-43.0, snr=22.0, excess=7.5, occ=0.05)]])
    assert (t.peak_dbfs, t.snr_db, t.excess_db, t.baseline_occupancy) == (-41.0, 22.0, 7.5, 0.1)


def test_a_tentative_track_that_ends_is_dropped_without_an_event():
    tr = Tracker(TrackerConfig(gap_s=0.1))
    new, _, _ = tr.update([em(100e3, snr=8.0)], 0.0, FRAME)
    assert new == [] and tr.dropped == 0
    assert tr.age(0.5) == [] and tr.open == [] and tr.dropped == 1
    # close_all likewise returns only the confirmed tracks
    tr.update([em(100e3, snr=8.0)], 1.0, FRAME)
    (strong,), _, _ = tr.update([em(400e3, snr=30.0)], 1.0, FRAME)
    assert tr.close_all() == [strong] and tr.dropped == 2 and tr.open == []


def test_a_tentative_fragment_overlapping_an_older_track_is_absorbed():
    tr = Tracker()
    (t,), _, _ = feed(tr, [[em(100e3, bw_hz=10e3)]] * 5)  # 95–105 kHz
    # an emission beyond the gate that opens a tentative track, then widens into the old span
    tr.update([em(110e3, bw_hz=6e3, snr=8.0)], 5 * FRAME, FRAME)  # 107–113 kHz: linked (2 kHz gate)
    assert len(tr.open) == 1 and t.f_hi_hz == 113e3
    tr.update([em(125e3, bw_hz=6e3, snr=8.0)], 6 * FRAME, FRAME)  # 122–128: 9 kHz beyond, tentative
    assert len(tr.open) == 2
    n, u, _ = tr.update([em(118e3, bw_hz=14e3, snr=8.0)], 7 * FRAME, FRAME)  # 111–125: joins t, ...
    # ... and the tentative 122–128 track's span now overlaps t's: absorbed into t
    assert tr.open == [t] and n == [] and u == [t]
    assert t.f_hi_hz == 128e3 and tr.dropped == 0


def test_spectrum_max_hold_of_the_track_band():
    tr = Tracker()
    freqs = np.arange(0.0, 200e3, BIN)
    a = np.full(freqs.size, 1.0)
    a[100] = 50.0
    b = np.full(freqs.size, 2.0)
    b[101] = 40.0
    new, _, _ = tr.update([em(100e3)], 0.0, FRAME, spectrum=(freqs, a))
    tr.update([em(100e3)], FRAME, FRAME, spectrum=(freqs, b))
    t = new[0]
    # the held band: the track's span ±4 bins
    assert t.spectrum_bin_hz == BIN and t.spectrum_f0_hz == pytest.approx(95e3 - 4 * BIN)
    k = int(round((100e3 - t.spectrum_f0_hz) / BIN))
    assert t.spectrum_lin[k] == 50.0 and t.spectrum_lin[k + 1] == 40.0 and t.spectrum_lin[k - 3] == 2.0


def test_blind_time_neither_ends_a_track_nor_splits_a_burst():
    """0.3 s of frames left out (NaN samples) in a steady emission, with gap_s 0.1 s and
    burst_gap_s 0.05 s: without blind time the track would end and a new one start."""
    def run(blind: bool):
        tr = Tracker(TrackerConfig(gap_s=0.1, burst_gap_s=0.05))
        ids = set()
        for k in range(100):
            t = k * FRAME
            if 30 <= k < 60:
                if blind and k == 30:
                    tr.blind(30 * FRAME, 60 * FRAME)
                tr.age(t)  # as the engine ages the open tracks after each block
                continue
            n, u, _ = tr.update([em(100e3)], t, FRAME)
            ids |= {x.track_id for x in n + u}
        return tr, ids

    tr, ids = run(blind=True)
    assert ids == {"T00001"} and len(tr.open) == 1
    t = tr.open[0]
    assert t.bursts == 1 and t.frames_active == 70 and t.blind_s == pytest.approx(0.3)
    assert t.duty_cycle == pytest.approx(1.0) and t.span_s == pytest.approx(1.0)
    # the decision's window holds the last observed frames: the five before the gap are recent
    # on the track's observed clock
    assert t.recent[-1] - t.recent[-2] == pytest.approx(FRAME)
    tr, ids = run(blind=False)
    assert ids == {"T00001", "T00002"}
    assert tr.blind_between(0.0, 10.0) == 0.0


def test_blind_between_sums_intervals_and_merges_contiguous_ones():
    tr = Tracker()
    tr.blind(1.0, 1.5)
    tr.blind(1.5, 2.0)  # contiguous: one interval
    tr.blind(3.0, 3.25)
    assert len(tr._blind_t0) == 2  # noqa: SLF001
    assert tr.blind_between(0.0, 10.0) == pytest.approx(1.25)
    assert tr.blind_between(1.25, 3.1) == pytest.approx(0.75 + 0.1)
    assert tr.blind_between(2.0, 3.0) == 0.0 and tr.blind_between(5.0, 4.0) == 0.0


def test_a_reading_carries_the_position_time_resolution_and_speed():
    tr = Tracker()
    pos = SimpleNamespace(lat=35.0, lon=135.0, speed_mps=12.5)
    tr.update([em(100e3)], 0.0, FRAME, position=pos, position_res_s=0.25)
    tr.update([em(100e3)], FRAME, FRAME, position=None, position_res_s=0.25)
    assert tr.open[0].readings == [Reading(0.0, pytest.approx(-37.0), 35.0, 135.0, 12.5, 0.25),
                                   Reading(FRAME, pytest.approx(-37.0), None, None, None, None)]
