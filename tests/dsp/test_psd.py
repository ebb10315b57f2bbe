import numpy as np
import pytest
import scipy.signal

from detector.dsp import (
    FrameStream,
    dc_bins,
    frame_psd_stack,
    interpolate_dc,
    make_plan,
    power_to_db,
    spectrogram,
    welch_psd,
)

FS = 250e3


def tone(n, f_hz, amp=1.0, fs=FS, phase=0.3):
    t = np.arange(n) / fs
    return (amp * np.exp(1j * (2 * np.pi * f_hz * t + phase))).astype(np.complex64)


def test_framed_equals_scipy_welch():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=40000) + 1j * rng.normal(size=40000)).astype(np.complex64) * 0.1 + tone(40000, 12345.0, 0.3)
    plan = make_plan(FS, nfft=512)
    ours = welch_psd(x, plan)
    f, ref = scipy.signal.welch(x, FS, window="hann", nperseg=512, noverlap=256, detrend=False,
                                return_onesided=False, scaling="spectrum")
    ref = np.fft.fftshift(ref)
    np.testing.assert_allclose(plan.offsets_hz, np.fft.fftshift(f))
    np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=1e-12)


def test_full_scale_tone_reads_0_dbfs_and_rbw_is_hann_enbw():
    plan = make_plan(FS, nfft=1024)
    f0 = plan.offsets_hz[600]  # bin-centred
    p = power_to_db(welch_psd(tone(65536, f0), plan))
    assert int(np.argmax(p)) == 600
    assert p[600] == pytest.approx(0.0, abs=0.01)
    assert plan.rbw_hz == pytest.approx(1.5 * FS / 1024, rel=1e-6)


def test_noise_level_per_rbw_bin():
    rng = np.random.default_rng(2)
    sigma2 = 1e-3
    x = (np.sqrt(sigma2 / 2) * (rng.normal(size=2**18) + 1j * rng.normal(size=2**18))).astype(np.complex64)
    plan = make_plan(FS, nfft=1024)
    p = welch_psd(x, plan)
    expected = sigma2 * plan.rbw_hz / FS
    assert 10 * np.log10(p.mean() / expected) == pytest.approx(0.0, abs=0.05)


def test_rbw_option_picks_power_of_two():
    plan = make_plan(2.4e6, rbw_hz=1000.0)
    assert plan.nfft == 4096 and plan.rbw_hz <= 1000.0


def test_frame_stack_and_streaming_match_one_shot():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=100_000) + 1j * rng.normal(size=100_000)).astype(np.complex64)
    plan = make_plan(FS, nfft=256)
    one = frame_psd_stack(x, plan, 8)
    stream = FrameStream(plan, 8)
    parts = []
    for chunk in np.array_split(x, 7):
        frames, _ = stream.push(chunk)
        parts.append(frames)
    streamed = np.concatenate(parts)
    assert streamed.shape == one.shape
    np.testing.assert_allclose(streamed, one, rtol=1e-5)
    assert stream.frame_s == pytest.approx(8 * 128 / FS)


def test_spectrogram_layout():
    plan = make_plan(FS, nfft=256)
    t, f, p = spectrogram(tone(256 * 10, 50e3), plan)
    assert p.shape == (19, 256) and t.shape == (19,) and f.shape == (256,)
    assert f[np.argmax(p[0])] == pytest.approx(50e3, abs=FS / 256)


def test_dc_interpolation():
    plan = make_plan(FS, nfft=64)
    p = np.ones(64)
    idx = dc_bins(plan.offsets_hz, half_width_bins=1)
    assert list(idx) == [31, 32, 33]
    p[idx] = 100.0
    q = interpolate_dc(p, plan.offsets_hz, half_width_bins=1)
    np.testing.assert_allclose(q, 1.0)


@pytest.mark.parametrize("kwargs", [{"nfft": 4}, {"overlap": 1.0}, {"rbw_hz": -1.0}])
def test_bad_plans(kwargs):
    with pytest.raises(ValueError):
        make_plan(FS, **kwargs)
    with pytest.raises(ValueError):
        make_plan(0.0)


def test_mark_images_flags_the_weak_mirror_of_a_strong_peak_only():
    from detector.dsp import Peak, mark_images

    m, c = 256, 128
    p = np.full(m, 1e-6)
    p[c + 40] = 1.0  # strong emission at +40 bins: 60 dB over the noise
    p[c - 40] = 10 ** (-2.5)  # its image, 25 dB below
    p[c - 90] = 10 ** (-4.0)  # a real weak emission whose mirror (+90) is noise
    peaks = [Peak(index=c + 40, lo=c + 39, hi=c + 41, peak_db=0.0, snr_db=60.0, bandwidth_bins=3),
             Peak(index=c - 40, lo=c - 41, hi=c - 39, peak_db=-25.0, snr_db=35.0, bandwidth_bins=3),
             Peak(index=c - 90, lo=c - 91, hi=c - 89, peak_db=-40.0, snr_db=20.0, bandwidth_bins=3)]
    got = mark_images(peaks, p, c)
    assert [pk.image for pk in got] == [False, True, False]
    assert [pk.index for pk in got] == [pk.index for pk in peaks]
    # 10 dB below its mirror is not enough for the default 15 dB margin
    ten_below = Peak(index=c - 40, lo=c - 41, hi=c - 39, peak_db=-10.0, snr_db=50.0, bandwidth_bins=3)
    assert not mark_images([ten_below], p, c)[0].image
    assert mark_images([ten_below], p, c, margin_db=10.0)[0].image
