"""Bursts across retunes (issue #19 item 4): a burst seen again on a later revisit of its hop is the
same track, so repeated short bursts on a hopped band build the burst count and the period."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detector.app.monitor_app import build_engine
from detector.core.types import IQBlock
from detector.detection._tracking import Tracker, TrackerConfig
from detector.detection.engine import EngineConfig
from detector.sim import awgn, nfm

FS = 250e3
HOP_A, HOP_B = 433.5e6, 434.5e6
BURST_OFFSET_HZ = 40e3


def hopping_blocks(seconds: float, period_s: float, burst_s: float, *, cycle=(1.0, 3.0), seed=0):
    """A receiver alternating between hop A (``cycle[0]`` s) and hop B (``cycle[1]`` s); an NFM
    burst of ``burst_s`` on hop A every ``period_s``, starting 0.2 s into an A dwell."""
    rng = np.random.default_rng(seed)
    t, blocks = 0.0, []
    dwell_a, dwell_b = cycle
    while t < seconds:
        for center, dwell in ((HOP_A, dwell_a), (HOP_B, dwell_b)):
            n = int(dwell * FS)
            x = awgn(n, -30.0, rng)
            if center == HOP_A:
                k = int(np.floor((t + 1e-9) / period_s))
                on0 = k * period_s + 0.2
                if t <= on0 < t + dwell:  # the burst lies in this dwell
                    a, b = int((on0 - t) * FS), int(min(dwell, on0 - t + burst_s) * FS)
                    x[a:b] += nfm(b - a, FS, BURST_OFFSET_HZ, -35.0, rng)
            blocks.append(IQBlock(x.astype(np.complex64), center, FS, offset_s=t, retuned=True))
            t += dwell
    return blocks


def tracks_of(blocks, gap_s: float):
    cfg = EngineConfig()
    # the frames' tracker alone (the long-integration stage's windows span several bursts)
    cfg = replace(cfg, integration=None, tracker=replace(cfg.tracker, gap_s=gap_s))
    eng = build_engine(cfg)
    for b in blocks:
        eng.process_block(b)
    eng.finish()
    return [tr for tr in eng.all_tracks.values() if abs(tr.center_hz - (HOP_A + BURST_OFFSET_HZ)) < 10e3]


def test_bursts_on_later_revisits_are_one_track_with_their_period():
    # bursts every 12 s, the hop revisited every 4 s for 1 s: 2.6 s of observed silence between
    # bursts, 11.6 s of timeline; with gap_s = 5 s the track must survive the unobserved time
    tracks = tracks_of(hopping_blocks(40.0, 12.0, 0.4), gap_s=5.0)
    assert len(tracks) == 1
    tr = tracks[0]
    assert tr.bursts == 4  # at 0.2, 12.2, 24.2 and 36.2 s
    assert tr.burst_period_s == pytest.approx(12.0, abs=0.1)
    assert any("periodic bursts every 12" in r for r in tr.alert_reasons)
    # the duty cycle counts observed time only: 4 × 0.4 s on in about 10 s observed
    assert 0.1 < tr.duty_cycle < 0.3


def test_on_a_dwell_an_observed_silence_still_ends_the_track():
    # the same bursts on a receiver that never leaves hop A: 11.6 s of observed silence > gap_s
    blocks = [b for b in hopping_blocks(40.0, 12.0, 0.4, cycle=(4.0, 0.0)) if b.samples.size]
    tracks = tracks_of(blocks, gap_s=5.0)
    assert len(tracks) == 4 and all(tr.bursts == 1 for tr in tracks)


def test_a_track_unseen_for_max_unseen_s_ends_even_if_hardly_observed():
    tk = Tracker(TrackerConfig(gap_s=60.0, max_unseen_s=300.0))
    from detector.detection._results import Emission

    def em(t):
        return [Emission(center_hz=433.525e6, bandwidth_hz=10e3, f_lo_hz=433.52e6, f_hi_hz=433.53e6, peak_hz=433.525e6,
                         peak_dbfs=-40.0, snr_db=20.0, excess_db=None, power_dbfs=-40.0, bins=np.arange(3))]

    tk.update(em(0.0), 0.0, 0.01)
    tk.update(em(0.01), 0.01, 0.01)
    assert len(tk.open) == 1
    tk.unobserved(434.0e6, 435.0e6, 0.02, 299.0)  # tuned elsewhere: no silence
    assert tk.age(299.0) == [] and len(tk.open) == 1
    tk.unobserved(434.0e6, 435.0e6, 299.0, 301.0)
    assert len(tk.age(301.0)) == 1 and not tk.open  # 301 s unseen > max_unseen_s
