"""NaN/inf samples (start-up garbage, a bad driver): counted, zeroed, and the frames that held them
flagged, never a NaN in a frame (issue #24)."""

from __future__ import annotations

import numpy as np

from detector.dsp import FrameStream, count_nonfinite, frame_psd_stack, make_plan, replace_nonfinite


def _noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 0.01).astype(np.complex64)


def test_count_and_replace():
    x = np.ones(10, dtype=np.complex64)
    x[2] = complex(np.nan, 0)
    x[5] = complex(0, np.inf)
    x[7] = complex(-np.inf, np.nan)
    assert count_nonfinite(x) == 3
    y, bad = replace_nonfinite(x)
    assert bad.tolist() == [i in (2, 5, 7) for i in range(10)]
    assert y[2] == 0 and y[5] == 0 and y[7] == 0 and y[0] == 1
    assert np.isnan(x[2].real)  # the input is not modified
    clean = np.ones(4, dtype=np.complex64)
    same, none = replace_nonfinite(clean)
    assert same is clean and none is None and count_nonfinite(clean) == 0


def test_frame_stream_flags_exactly_the_frames_whose_segments_held_a_nan():
    plan = make_plan(1e6, nfft=256)  # Hann, 50 % overlap: step 128
    spf = 4
    x = _noise(256 * 40)
    stream = FrameStream(plan, spf)
    adv, span = spf * plan.step, (spf - 1) * plan.step + plan.nfft
    burst = slice(3100, 3110)  # in frames 5 (2560–3200) and 6 (3072–3712)
    x_bad = x.copy()
    x_bad[burst] = np.nan
    frames = []
    flags = []
    for k in range(0, x.size, 1000):  # block boundaries that do not match frames: the carry carries the marks
        f, _ = stream.push(x_bad[k:k + 1000])
        frames.append(f)
        flags.append(stream.last_flagged.copy())
    frames = np.concatenate(frames)
    flags = np.concatenate(flags)
    assert np.isfinite(frames).all()
    assert stream.nonfinite_samples == 10
    starts = np.arange(frames.shape[0]) * adv
    expect = (starts < burst.stop) & (starts + span > burst.start)
    assert flags.tolist() == expect.tolist() and expect.sum() == 2
    # unflagged frames equal the frames of the clean stream; flagged ones are those with zeros
    ref = frame_psd_stack(x, plan, spf)[: frames.shape[0]]
    np.testing.assert_allclose(frames[~flags], ref[~flags], rtol=2e-4)
    x_zero = x.copy()
    x_zero[burst] = 0
    np.testing.assert_allclose(frames[flags], frame_psd_stack(x_zero, plan, spf)[: frames.shape[0]][flags], rtol=2e-4)


def test_reset_drops_the_marks_of_the_carry():
    plan = make_plan(1e6, nfft=256)
    stream = FrameStream(plan, 2)
    x = _noise(300)
    x[-1] = np.nan
    stream.push(x)  # one frame, the NaN sits in the carry
    stream.reset()
    stream.push(_noise(2000, 1))
    assert not stream.last_flagged.any() and stream.nonfinite_samples == 1


def test_the_optimistic_check_gives_what_checking_every_block_gives():
    """FrameStream frames a block unchecked and looks at the frames' sum; a NaN/inf sample anywhere
    (block, carry, block edge) must give the same frames, flags and count as checking the samples
    of every block first (forced here by marking the carry as checked)."""
    rng = np.random.default_rng(5)
    plan = make_plan(1e6, nfft=256)
    for trial in range(30):
        n = 20_000
        x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
        for _ in range(int(rng.integers(0, 4))):
            x[rng.integers(0, n)] = (np.nan, np.inf, -np.inf)[int(rng.integers(0, 3))]
        cuts = np.sort(rng.integers(0, n, int(rng.integers(1, 8))))
        fast, checked = FrameStream(plan, 3, backend="scipy"), FrameStream(plan, 3, backend="scipy")
        got, want, fl_got, fl_want = [], [], [], []
        for blk in np.split(x, cuts):
            got.append(fast.push(blk)[0])
            fl_got.append(fast.last_flagged.copy())
            if checked._carry_bad is None:  # noqa: SLF001 - forces the checked path
                checked._carry_bad = np.zeros(checked._carry.size, dtype=bool)  # noqa: SLF001
            want.append(checked.push(blk)[0])
            fl_want.append(checked.last_flagged.copy())
        assert np.array_equal(np.concatenate(got), np.concatenate(want)), trial
        assert np.array_equal(np.concatenate(fl_got), np.concatenate(fl_want)), trial
        assert fast.nonfinite_samples == checked.nonfinite_samples == int(np.count_nonzero(~np.isfinite(x))), trial
