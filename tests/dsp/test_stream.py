"""``FrameStream`` (the detection chain's PSD) against ``frame_psd_stack`` on the whole stream."""

from __future__ import annotations

import numpy as np
import pytest

from detector.dsp import FrameStream, frame_psd_stack, make_plan, power_to_db
from detector.dsp._stream import fft_backends
from detector.dsp._kernels import numba_available, power_sums_kernel, power_sums_numpy

FS = 2.4e6


def test_pyfftw_is_installed_with_the_test_extra():
    assert "pyfftw" in fft_backends()  # so that both backends below are exercised in CI


@pytest.mark.parametrize("backend", fft_backends())
@pytest.mark.parametrize("sizes", [[1 << 18] * 3, [1000, 5, 70_000, 3, 300_000, 50_000], [4096 * 7 + 1] * 20, [123_457] * 6])
@pytest.mark.parametrize("nfft, spf", [(4096, 12), (256, 8), (1024, 1)])
def test_streamed_frames_equal_the_one_shot_stack(backend, sizes, nfft, spf):
    rng = np.random.default_rng(sum(sizes) + nfft)
    x = (rng.normal(size=sum(sizes)) + 1j * rng.normal(size=sum(sizes))).astype(np.complex64)
    x += 0.5 * np.exp(2j * np.pi * 0.123 * np.arange(x.size)).astype(np.complex64)
    plan = make_plan(FS, nfft=nfft)
    one = frame_psd_stack(x, plan, spf)
    stream = FrameStream(plan, spf, backend=backend)
    assert stream.backend == backend
    parts, i, firsts = [], 0, []
    for n in sizes:
        frames, first = stream.push(x[i:i + n])
        i += n
        parts.append(frames)
        firsts.append(first)
    got = np.concatenate(parts)
    assert got.shape == one.shape
    assert firsts[-1] == sum(p.shape[0] for p in parts[:-1])
    np.testing.assert_allclose(got, one, rtol=2e-4, atol=1e-7 * float(one.max()))


@pytest.mark.parametrize("backend", fft_backends())
def test_tone_level_and_frequency(backend):
    plan = make_plan(FS, nfft=4096)
    k = 1000  # bin offset from the center: a tone exactly on a bin reads its power
    f = k * FS / 4096
    x = (0.1 * np.exp(2j * np.pi * f * np.arange(1 << 18) / FS)).astype(np.complex64)
    frames, _ = FrameStream(plan, 12, backend=backend).push(x)
    db = power_to_db(frames[0])
    assert int(np.argmax(db)) == 2048 + k
    assert db[2048 + k] == pytest.approx(-20.0, abs=0.01)


def test_bad_arguments():
    plan = make_plan(FS, nfft=256)
    with pytest.raises(ValueError, match="segments_per_frame"):
        FrameStream(plan, 0)
    with pytest.raises(ValueError, match="backend"):
        FrameStream(plan, 4, backend="fftpack")


@pytest.mark.skipif(not numba_available(), reason="numba not installed (the fast and test extras have it)")
def test_numba_power_sums_give_the_same_bits_as_numpy():
    """The compiled |X|² accumulation and the numpy one agree bit for bit, through FrameStream
    too (blocks that cut frames anywhere)."""
    rng = np.random.default_rng(9)
    spec = (rng.standard_normal((36, 512)) + 1j * rng.standard_normal((36, 512))).astype(np.complex64)
    a = np.empty((3, 512), np.float32)
    b = np.empty((3, 512), np.float32)
    power_sums_kernel("numba")[1](spec.copy(), 12, a)
    power_sums_numpy(spec.copy(), 12, b)
    np.testing.assert_array_equal(a, b)
    plan = make_plan(1e6, nfft=512)
    x = (rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)).astype(np.complex64)
    outs = []
    for kernel in ("numba", "numpy"):
        s = FrameStream(plan, 5, backend="scipy", kernel=kernel)
        outs.append(np.concatenate([s.push(x[i:i + 7777])[0] for i in range(0, x.size, 7777)]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_unknown_psd_kernel_is_refused():
    with pytest.raises(ValueError, match="PSD kernel must be auto, numpy or numba"):
        FrameStream(make_plan(1e6, nfft=512), 2, kernel="cuda")
