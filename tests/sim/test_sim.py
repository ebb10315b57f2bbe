"""The simulated exam site checks itself: noise statistics, link budget, impairments, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

from detector.dsp import make_plan, power_to_db, welch_psd
from detector.core.errors import InputError
from detector.sim.scene import Emitter, Receiver, Scene, load_scene, scene_from_spec
from detector.sim.sdr import SimPsd, SimSDR
from detector.sim.truth import scene_truth


def quiet_scene(**rx) -> Scene:
    """A parked vehicle, no fading, no shadowing: levels follow the link budget exactly."""
    base = scene_from_spec("sim:default")
    return base.model_copy(update={
        "emitters": [],
        "receiver": Receiver(**{"center_hz": 446e6, "sample_rate_hz": 1.024e6, "gain_db": 30.0, **rx}),
        "propagation": base.propagation.model_copy(update={"shadow_sigma_db": 0.0, "fast_fading": "none"}),
        "route": base.route.model_copy(update={"antenna_ripple_db": 0.0}),
        "timeline": base.timeline.model_copy(update={"survey": (0.0, 10.0), "exam": [(20.0, 30.0)]}),
    })


def read(sdr, seconds):
    n = int(seconds * sdr.sample_rate_hz)
    return sdr.read(n).samples


def test_default_scene_loads_and_validates(tmp_path):
    s = scene_from_spec("sim:default")
    assert s.timeline.survey == (0.0, 120.0) and s.timeline.exam == [(150.0, 390.0)]
    target = next(e for e in s.emitters if e.kind == "target")
    assert target.f_c_hz == 446.08125e6 and target.position == (8.0, -6.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[receiver]\ngain_db = "loud"\n')
    with pytest.raises(InputError, match="receiver.gain_db"):
        load_scene(bad)
    with pytest.raises(InputError, match="not found"):
        scene_from_spec("sim:/nonexistent.toml")


def test_clean_receiver_noise_gives_configured_false_alarm_rate():
    sdr = SimSDR(quiet_scene(), window="survey", clean=True)
    x = read(sdr, 2.0)
    plan = make_plan(sdr.sample_rate_hz, nfft=1024, overlap=0.0)
    L = 8  # 8 non-overlapping segments per decision: Gamma(8, 1)/8 per bin
    n_seg = x.size // 1024 // L * L
    seg = x[: n_seg * 1024].reshape(n_seg, 1024) * plan.window
    p = (np.abs(np.fft.fft(seg, axis=1)) ** 2).reshape(-1, L, 1024).mean(axis=1)
    sigma2 = 10 ** (sdr.noise_dbfs() / 10) * float(np.sum(plan.window ** 2))
    for pfa in (1e-2, 1e-3):
        thr = scipy.stats.gamma.isf(pfa, L) / L * sigma2
        measured = float(np.mean(p > thr))
        assert measured == pytest.approx(pfa, rel=0.2), (pfa, measured)


def test_tone_snr_matches_link_budget():
    sc = quiet_scene()
    sc = sc.model_copy(update={"emitters": [Emitter(id="CW", f_c_hz=446.2e6, modulation="cw", bandwidth_hz=100,
                                                    eirp_dbm=0.0, position=(-20.0, 0.0), schedule=[(0.0, 40.0)])]})
    sdr = SimSDR(sc, window="survey", clean=True)
    x = read(sdr, 0.25)
    plan = make_plan(sdr.sample_rate_hz, nfft=1024)
    p = power_to_db(welch_psd(x, plan))
    k = int(np.argmax(p))
    vx, vy = sdr.world.vehicle.true_xy(0.125)
    measured_tone_dbfs = float(p[k])
    noise_per_bin = float(np.median(p))
    # link budget: EIRP 0 dBm, n = 3 at 446.2 MHz, to where the vehicle is during the block
    d = float(np.hypot(vx + 20.0, vy))
    fspl = 20 * np.log10(4 * np.pi * 446.2e6 / 299_792_458.0)
    rx_dbm = 0.0 - (fspl + 30 * np.log10(d))
    expected_dbfs = rx_dbm - sc.receiver.full_scale_dbm
    assert plan.offsets_hz[k] + 446e6 == pytest.approx(446.2e6, abs=plan.bin_hz)
    assert measured_tone_dbfs == pytest.approx(expected_dbfs, abs=1.0)
    noise_expected = sdr.noise_dbfs() + 10 * np.log10(plan.rbw_hz / sdr.sample_rate_hz)
    assert noise_per_bin == pytest.approx(noise_expected, abs=0.3)
    snr_expected = expected_dbfs - noise_expected
    assert measured_tone_dbfs - noise_per_bin == pytest.approx(snr_expected, abs=1.0)


def test_impairments_are_measurable():
    rx = dict(dc_offset_lsb=(3.0, -2.0), iq_gain_db=1.0, iq_phase_deg=5.0, ppm=-37.0, drift_ppm=0.0,
              drop_probability=0.0)
    sc = quiet_scene(**rx)
    sc = sc.model_copy(update={"emitters": [Emitter(id="CW", f_c_hz=446.3e6, modulation="cw", bandwidth_hz=100,
                                                    eirp_dbm=10.0, position=(-20.0, 0.0), schedule=[(0.0, 40.0)])]})
    sdr = SimSDR(sc, window="survey")
    x = read(sdr, 1.0).astype(np.complex128)
    fs = sdr.sample_rate_hz
    # DC offset: the mean of the samples is the configured offset (full-scale units)
    dc = np.mean(x)
    assert dc.real == pytest.approx(3.0 / 127.5, rel=0.1) and dc.imag == pytest.approx(-2.0 / 127.5, rel=0.1)
    # frequency offset: the tone appears at f_c − ε·f_center
    plan = make_plan(fs, nfft=16384)
    p = welch_psd(x.astype(np.complex64), plan)
    k = int(np.argmax(p))
    seen_offset = plan.offsets_hz[k] + 446e6 - 446.3e6
    expected_offset = 37e-6 * 446e6  # ε = −37 ppm → the dongle sees it 16.5 kHz high
    assert seen_offset == pytest.approx(expected_offset, rel=0.1)
    # image rejection for 1 dB / 5°: IRR = |μ|²/|ν|²
    g, phi = 10 ** (1.0 / 20), np.deg2rad(5.0)
    irr_expected = 10 * np.log10(abs((1 + g * np.exp(-1j * phi)) / 2) ** 2 / abs((1 - g * np.exp(1j * phi)) / 2) ** 2)
    mirror = int(np.argmin(np.abs(plan.offsets_hz + plan.offsets_hz[k])))
    irr = 10 * np.log10(p[k - 2:k + 3].sum() / p[mirror - 2:mirror + 3].sum())
    assert irr == pytest.approx(irr_expected, rel=0.1)


def test_deterministic_iq_and_truth():
    sc = scene_from_spec("sim:default")
    a, b = SimSDR(sc, window="exam"), SimSDR(sc, window="exam")
    for _ in range(3):
        xa, xb = a.read(1 << 16), b.read(1 << 16)
        assert xa.samples.tobytes() == xb.samples.tobytes()
    assert json.dumps(scene_truth(a)) == json.dumps(scene_truth(b))
    c = SimSDR(sc.with_seed(7), window="exam")
    assert c.read(1 << 16).samples.tobytes() != SimSDR(sc, window="exam").read(1 << 16).samples.tobytes()


def test_psd_fast_path_agrees_with_iq_within_half_a_db():
    sc = quiet_scene(drop_probability=0.0, drift_ppm=0.0)
    sc = sc.model_copy(update={"emitters": [
        Emitter(id="V", f_c_hz=446.1e6, modulation="nfm", eirp_dbm=0.0, position=(-20.0, 0.0), schedule=[(0.0, 40.0)]),
        Emitter(id="C", f_c_hz=445.8e6, modulation="cw", bandwidth_hz=100, eirp_dbm=-10.0, position=(-20.0, 0.0), schedule=[(0.0, 40.0)]),
    ]})
    nfft, spf = 1024, 20
    iq = SimSDR(sc, window="survey")
    x = read(iq, 4.0)
    plan = make_plan(iq.sample_rate_hz, nfft=nfft)
    p_iq = power_to_db(welch_psd(x, plan))
    psd = SimPsd(sc, nfft=nfft, segments_per_frame=spf, window="survey")
    frames = list(psd.frames())[:400]  # the same 4 s as the IQ path
    p_fast = power_to_db(np.mean([10 ** (f.power / 10) for f in frames], axis=0))
    for f_hz in (446.1e6, 445.8e6):
        k = int(np.argmin(np.abs(446e6 + plan.offsets_hz - (f_hz - 3e-6 * 446e6))))
        assert p_fast[k] == pytest.approx(p_iq[k], abs=0.5), f_hz
    noise = (np.abs(plan.offsets_hz) > 5e3) & (np.abs(plan.offsets_hz - 100e3) > 20e3) & (np.abs(plan.offsets_hz + 200e3) > 10e3)
    assert np.median(p_fast[noise]) == pytest.approx(np.median(p_iq[noise]), abs=0.5)
