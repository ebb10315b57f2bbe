"""A survey of a recording with NaN bursts gives a finite baseline, the one of the same recording
without the frames the bursts fell in (issue #24)."""

from __future__ import annotations

import numpy as np

from detector.app.runs import survey_baseline
from detector.baseline import BaselineBuilder
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.sources import RawIQFile

FS, N = 1.024e6, 1 << 19


def _recording(tmp_path, name, x):
    p = tmp_path / name
    p.write_bytes(x.astype(np.complex64).tobytes())
    return RawIQFile(p, sample_format="cf32", sample_rate_hz=FS, center_hz=446e6)


def test_survey_with_nan_bursts_equals_the_survey_without_their_frames(tmp_path):
    rng = np.random.default_rng(7)
    t = np.arange(N) / FS
    clean = (0.05 * np.exp(2j * np.pi * -200e3 * t) + 0.003 * (rng.standard_normal(N) + 1j * rng.standard_normal(N))).astype(np.complex64)
    dirty = clean.copy()
    for s0 in (0, 150_000, 400_000):  # start-up garbage, then two bursts of a bad driver
        dirty[s0:s0 + 3000] = np.nan
    dirty[300_000] = complex(0, -np.inf)

    got = survey_baseline([_recording(tmp_path, "dirty.cf32", dirty)], DetectionEngine(EngineConfig()), site="s")
    assert np.isfinite(got.median).all() and np.isfinite(got.mean_db).all() and np.isfinite(got.p90).all()

    # the reference: the clean recording's frames, minus those in which the dirty one held NaN/inf
    eng_d, eng_c = DetectionEngine(EngineConfig()), DetectionEngine(EngineConfig())
    dirty_frames = [f for b in _recording(tmp_path, "d2.cf32", dirty).blocks() for f in eng_d.frames_of_block(b)]
    clean_frames = [f for b in _recording(tmp_path, "c.cf32", clean).blocks() for f in eng_c.frames_of_block(b)]
    flagged = [bool(f.meta.get("nonfinite")) for f in dirty_frames]
    assert 4 <= sum(flagged) <= 8 and len(dirty_frames) == len(clean_frames)
    assert all(np.isfinite(f.power).all() for f in dirty_frames)
    ref = BaselineBuilder(clean_frames[0].freqs_hz, rbw_hz=clean_frames[0].rbw_hz, site="s", n_looks=clean_frames[0].n_looks)
    for f, bad in zip(clean_frames, flagged):
        if not bad:
            ref.add(f, crop=True)
    ref = ref.build()
    np.testing.assert_array_equal(got.frames, ref.frames)
    assert int(got.frames.max()) == len(clean_frames) - sum(flagged)
    np.testing.assert_allclose(got.median, ref.median, atol=0.05)
    np.testing.assert_allclose(got.mean_db, ref.mean_db, atol=0.05)
    np.testing.assert_array_equal(got.occupied, ref.occupied)
    # and the tone's level is the clean recording's (−26 dBFS), not pulled down by zero-filled frames
    k = int(np.argmin(np.abs(got.freqs_hz - (446e6 - 200e3))))
    assert got.max_db[k] == np.float32(ref.max_db[k])
