"""Sensitivity by integration (``detection._integration``, issue #18 item 5): the false-alert rate on
hours of noise frames, a −11 dB NFM transmitter through the impaired receiver model alerted within
30 s, a surveyed steady station not alerted at long integration, retune and NaN-frame handling,
and the statistics the thresholds stand on. The Pd/SNR sweep is ``bench/sensitivity.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from detector.core.types import IQBlock, Spectrum
from detector.detection._integration import (
    CROSSINGS,
    IntegrationConfig,
    Integrator,
    channel_looks,
    integration_pfa,
)
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.detection.events import event_from_json
from detector.sim import awgn, nfm, rtl_noise_dbfs, rtl_receiver
from tests._helpers import survey_iq

FS = 250e3
CENTER = 446.0e6
NOISE = rtl_noise_dbfs(FS)  # the simulated RTL-SDR at gain 40 dB: about 0.4 LSB rms
BLOCK = 1 << 16


def nfm_iq(seconds, snr_db, rng, *, f=37.5e3, noise=None):
    """Noise and a continuous NFM transmitter at ``snr_db`` in its 12.5 kHz channel."""
    n = int(seconds * FS)
    x = awgn(n, NOISE, rng) if noise is None else noise
    if snr_db is not None:
        x = x + nfm(n, FS, f, NOISE + 10 * math.log10(12.5e3 / FS) + snr_db, rng)
    return x


def alert_time(engine, x, *, f=None, impaired=True, t0=0.0, stop=True):
    """Seconds to the first alert (near ``f`` offset when given) over ``x`` in blocks, and every alert's event."""
    first, alerts = None, []
    for i in range(0, x.size, BLOCK):
        b = rtl_receiver(x[i:i + BLOCK]) if impaired else x[i:i + BLOCK]
        for e in engine.process_block(IQBlock(b, CENTER, FS, offset_s=t0 + i / FS, retuned=i == 0)):
            if getattr(e, "alert", False):
                alerts.append(e)
                if first is None and (f is None or abs(e.center_hz - CENTER - f) <= 8e3):
                    first = (i + b.size) / FS
        if first is not None and stop:
            break
    return first, alerts


def test_channel_sum_looks_match_welch_frames():
    """The looks of a sum of K Hann-windowed bins (variance factor 1.944) against real frames."""
    eng = DetectionEngine(EngineConfig(integration=None))
    frames = eng.frames_of_block(IQBlock(awgn(int(2.0 * FS), -30.0, np.random.default_rng(1)), CENTER, FS))
    p = np.array([10 ** (f.power.astype(np.float64) / 10) for f in frames])[:, 20:-20]
    k = 13
    sums = np.array([np.convolve(r, np.ones(k), "valid") for r in p])
    rel_var = float(np.var(sums / sums.mean()))
    looks = channel_looks(frames[0].n_looks, k, frames[0].rbw_hz / (frames[0].freqs_hz[1] - frames[0].freqs_hz[0]))
    assert rel_var == pytest.approx(1 / looks, rel=0.1)
    assert channel_looks(12.0, k, 1.0) == 12.0 * k  # independent bins


def test_pfa_grows_with_the_window_and_the_budget_is_shared():
    p1 = integration_pfa(0.2, window_s=1.0, n_positions=200, k_bins=13, n_tests=4)
    p10 = integration_pfa(0.2, window_s=10.0, n_positions=200, k_bins=13, n_tests=4)
    assert p10 == pytest.approx(p1 * math.sqrt(10), rel=1e-6)  # 2-of-2: p ∝ (windows per hour)^(-1/2)
    assert integration_pfa(0.2, window_s=1.0, n_positions=200, k_bins=13, n_tests=8) < p1


def test_noise_frames_for_hours_give_no_false_alert_and_the_window_hits_the_thresholds_allow():
    """(a) 3 h of PSD frames drawn from Gamma(L)/L (1 s frames, independent bins): ≤ 1 false
    alert per hour, and per scale no more single-window hits than the thresholds were set for
    (a threshold 0.1 dB low would give thousands)."""
    m, bin_hz, frame_s, hours = 256, 1000.0, 1.0, 3.0
    looks = 1000.0 * frame_s
    freqs = CENTER + (np.arange(m) - m // 2) * bin_hz
    eng = DetectionEngine(EngineConfig(frequency_error=None, jam_after_s=None, integration=IntegrationConfig()))
    rng = np.random.default_rng(5)
    alerts = set()
    for i in range(int(hours * 3600 / frame_s)):
        p = rng.gamma(looks, 1.0 / looks, size=m) * 1e-5
        spec = Spectrum(freqs_hz=freqs, power=(10 * np.log10(p)).astype(np.float32), rbw_hz=bin_hz, unit="dBFS",
                        offset_s=i * frame_s, duration_s=frame_s, n_looks=looks, center_hz=CENTER)
        alerts |= {e.track_id for e in eng.process_spectrum(spec) if getattr(e, "alert", False)}
    assert len(alerts) <= hours
    cfg = eng.config.integration
    assert eng.integration is not None and cfg is not None
    k = int(round(cfg.widths_hz[0] / bin_hz))
    n_pos = int(m * 0.96) - 2 * k - 4
    total_nominal = 0.0
    for s in cfg.scales_s:
        nominal = integration_pfa(cfg.fa_per_hour, window_s=s, n_positions=n_pos, k_bins=k, n_tests=len(cfg.scales_s)) \
            * n_pos * CROSSINGS / math.sqrt(k) * hours * 3600 / s
        total_nominal += nominal
        assert eng.integration.found.get(s, 0) <= 1.5 * nominal + 3, (s, eng.integration.found, nominal)
    # and not far fewer: the thresholds are where they should be, not just high
    assert sum(eng.integration.found.values()) >= 0.15 * total_nominal


def test_noise_iq_through_the_impaired_receiver_gives_no_alert():
    rng = np.random.default_rng(8)
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()))
    first, alerts = alert_time(eng, awgn(int(60.0 * FS), NOISE, rng), stop=False)
    assert alerts == []
    assert eng.integration is not None and eng.integration.windows == 15 + 5 + 1  # 4, 12 and 36 s windows
    # single-window hits: the thresholds allow ~1.6 here (0–3 seen over 8 seeds); a floor 0.3 % low
    # (the frames' floors on Hann bins, uncorrected) gives ~5, most in the 36 s window
    assert sum(eng.integration.found.values()) <= 4, eng.integration.found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nfm_at_minus_11_db_through_the_impaired_receiver_alerts_within_30_s(seed):
    """(b) issue #18 item 5's target (3 seeds here; 20 in bench/sensitivity.py)."""
    rng = np.random.default_rng(100 + seed)
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()))
    t, alerts = alert_time(eng, nfm_iq(30.0, -11.0, rng), f=37.5e3)
    assert t is not None and t <= 30.0
    e = alerts[0]
    assert e.integration_s is not None and e.center_hz - CENTER == pytest.approx(37.5e3, abs=1.5e3)
    j = e.to_json()
    assert j["integration_s"] == e.integration_s and "integrated over" in j["reasons"][0]
    assert event_from_json(j).integration_s == e.integration_s
    # the frames alone (no integration) do not find it
    t_frames, _ = alert_time(DetectionEngine(EngineConfig(integration=None)), nfm_iq(10.0, -11.0, np.random.default_rng(9)),
                             f=37.5e3)
    assert t_frames is None


@pytest.fixture(scope="module")
def station_baseline():
    """20 s survey with a steady NFM station at −8 dB in its channel (−60 kHz) through the impaired receiver."""
    rng = np.random.default_rng(20)
    x = rtl_receiver(nfm_iq(20.0, -8.0, rng, f=-60e3))
    return survey_iq(x, FS, CENTER, engine=DetectionEngine(EngineConfig(integration=IntegrationConfig())))


def test_a_surveyed_steady_station_does_not_alert_at_long_integration_but_a_newcomer_does(station_baseline):
    """(c) the station, now seen for 30 s (far better than any one survey frame), stays explained
    by the survey; a new −11 dB transmitter elsewhere still alerts by integration."""
    rng = np.random.default_rng(21)
    n = int(30.0 * FS)
    x = nfm_iq(30.0, -8.0, rng, f=-60e3)
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=station_baseline)
    _, alerts = alert_time(eng, x, stop=False)
    assert alerts == [], [(e.center_hz - CENTER, e.integration_s) for e in alerts]
    x = x + nfm(n, FS, 37.5e3, NOISE + 10 * math.log10(12.5e3 / FS) - 11.0, rng)
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=station_baseline)
    t, alerts = alert_time(eng, x, f=37.5e3, stop=False)
    assert t is not None and t <= 30.0
    assert all(abs(e.center_hz - CENTER - 37.5e3) <= 8e3 for e in alerts)
    # without the baseline the station alerts (CFAR only: nothing explains it)
    _, alerts = alert_time(DetectionEngine(EngineConfig(integration=IntegrationConfig())),
                           nfm_iq(12.0, -8.0, np.random.default_rng(22), f=-60e3))
    assert alerts and abs(alerts[0].center_hz - CENTER + 60e3) <= 8e3


def wideband(n, level_dbfs, rng, *, f=-80e3, bw=40e3, swing_db=0.0, period_s=8.0):
    """A wideband station (a plateau of ``bw`` at ``f``): white noise through a 7th-order
    Butterworth low-pass, whose roll-off is its skirt; total power ``level_dbfs``, swinging by
    ±``swing_db`` over ``period_s`` (the level a moving receiver sees change)."""
    sos = scipy.signal.butter(7, bw / 2, fs=FS, output="sos")
    w = scipy.signal.sosfilt(sos, rng.standard_normal(n) + 1j * rng.standard_normal(n))
    w *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(np.abs(w) ** 2))
    if swing_db:
        w *= 10 ** (swing_db * np.sin(2 * np.pi * np.arange(n) / FS / period_s) / 20)
    return (w * np.exp(2j * np.pi * f * np.arange(n) / FS)).astype(np.complex64)


@pytest.fixture(scope="module")
def wideband_baseline():
    """20 s survey of a wideband station (40 kHz at −80 kHz, 20 ± 6 dB over the band's noise power)."""
    rng = np.random.default_rng(30)
    n = int(20.0 * FS)
    x = rtl_receiver(awgn(n, NOISE, rng) + wideband(n, NOISE + 20.0, rng, swing_db=6.0))
    return survey_iq(x, FS, CENTER, engine=DetectionEngine(EngineConfig(integration=IntegrationConfig())))


def test_the_skirt_of_a_surveyed_wideband_station_seen_8_db_stronger_does_not_alert_but_a_newcomer_beside_it_does(
        wideband_baseline):
    """The demo's false alarms (issue #18 item 5): a known station that the receiver sees 8 dB
    over the strongest the survey saw lifts its skirt over the survey's level of the channels
    beside it. The skirt rises toward the station: the flank rule leaves it out, and the station
    itself is within a known station's range (10 dB). A −11 dB newcomer 37.5 kHz beyond the
    station's edge is a separate maximum and alerts."""
    rng = np.random.default_rng(31)
    n = int(30.0 * FS)
    x = awgn(n, NOISE, rng) + wideband(n, NOISE + 20.0 + 6.0 + 8.0, rng)
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=wideband_baseline)
    _, alerts = alert_time(eng, x, stop=False)
    assert alerts == [], [(e.center_hz - CENTER, e.integration_s) for e in alerts]
    # the skirt was over the threshold and the survey's level in every window: left out as a flank
    assert eng.integration is not None and eng.integration.windows == 7 + 2
    assert eng.integration.left_out.get("flank", 0) >= 7, eng.integration.left_out
    newcomer = -60e3 + 37.5e3
    x = x + nfm(n, FS, newcomer, NOISE + 10 * math.log10(12.5e3 / FS) - 11.0, rng)
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=wideband_baseline)
    t, alerts = alert_time(eng, x, f=newcomer, stop=False)
    assert t is not None and t <= 30.0
    assert all(abs(e.center_hz - CENTER - newcomer) <= 8e3 for e in alerts), [e.center_hz - CENTER for e in alerts]


def test_the_survey_levels_are_derived_once_per_cache_that_engines_may_share(station_baseline):
    """No process-wide memo: each engine's stage owns a SurveyLevelCache; engines given the same
    one (a replay per file, a benchmark pass) derive the survey's levels once between them."""
    x = awgn(int(9.0 * FS), NOISE, np.random.default_rng(24))
    first = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=station_baseline)
    alert_time(first, x, stop=False)
    assert first.integration is not None and first.integration.windows == 2
    shared = first.integration.survey_cache
    assert shared.misses == 1
    second = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=station_baseline)
    assert second.integration is not None and second.integration.survey_cache is not shared
    second.integration.survey_cache = shared
    alert_time(second, x, stop=False)
    assert shared.misses == 1 and second.integration.windows == 2
    third = DetectionEngine(EngineConfig(integration=IntegrationConfig()), baseline=station_baseline)
    alert_time(third, x, stop=False)
    assert third.integration is not None and third.integration.survey_cache.misses == 1


def test_a_retune_resets_the_integrator():
    """(d) windows never mix tunings: a retune (another center) starts every scale afresh."""
    eng = DetectionEngine(EngineConfig(integration=IntegrationConfig()))
    assert eng.integration is not None
    rng = np.random.default_rng(3)
    x = awgn(int(9.0 * FS), NOISE, rng)
    for i in range(0, x.size, BLOCK):
        eng.process_block(IQBlock(x[i:i + BLOCK], CENTER, FS, offset_s=i / FS, retuned=i == 0))
    integ = eng.integration.integrator
    assert integ.resets == 0 and eng.integration.windows == 2
    for i in range(0, x.size, BLOCK):
        eng.process_block(IQBlock(x[i:i + BLOCK], CENTER + 1e6, FS, offset_s=9.0 + i / FS, retuned=i == 0))
    # 2 more 4 s windows, and no 12 s window across the retune (18 s of signal in all)
    assert integ.resets == 1 and eng.integration.windows == 4


def test_integrator_windows_count_frames_and_leave_out_flagged_ones():
    integ = Integrator(IntegrationConfig(scales_s=(1.0, 2.0), base_s=1.0))
    key = (4,)
    out = []
    for i in range(8):  # 0.25 s stacks of 5 frames, the third with no usable frame
        n = 0 if i == 2 else 5
        out += integ.push(key, None if n == 0 else np.full(4, float(n)), n, i * 0.25, (i + 1) * 0.25, 10.0)
    assert [(w.scale_s, w.n_frames) for w in out] == [(1.0, 15), (1.0, 20), (2.0, 35)]
    assert out[0].looks == 150.0 and np.allclose(out[2].mean_lin, 1.0)
    # a gap in the timeline longer than a block starts afresh
    assert integ.push(key, np.ones(4), 1, 10.0, 10.25, 10.0) == [] and integ.resets == 1


def test_nonfinite_spectra_are_left_out_of_the_integration():
    m, bin_hz = 64, 1000.0
    freqs = CENTER + (np.arange(m) - m // 2) * bin_hz
    eng = DetectionEngine(EngineConfig(frequency_error=None, jam_after_s=None,
                                       integration=IntegrationConfig(scales_s=(1.0,))))
    assert eng.integration is not None
    rng = np.random.default_rng(4)
    for i in range(4):
        power = (-50.0 + 10 * np.log10(rng.gamma(100.0, 0.01, size=m))).astype(np.float32)
        if i == 1:
            power[20:32] += 10.0  # a frame whose samples held a NaN: whatever it shows is not counted
        eng.process_spectrum(Spectrum(freqs_hz=freqs, power=power, rbw_hz=bin_hz, unit="dBFS", offset_s=i * 0.25,
                                      duration_s=0.25, n_looks=100.0, center_hz=CENTER,
                                      meta={"nonfinite": True} if i == 1 else {}))
    assert eng.integration.windows == 1 and not eng.integration.found and eng.integration.integrator.resets == 0


def test_ideal_energy_detector_reference_matches_theory():
    """THEORY §1.2 item 6's example: B = 12.5 kHz, T = 1 s, Pfa = 1.7e-6, Pd = 0.9 → −12.5 dB."""
    n = 0.95 * 1.0 * 12.5e3
    eta = scipy.stats.gamma.isf(1.7e-6, n)
    g = 10 ** (-12.5 / 10)
    assert scipy.stats.gamma.sf(eta / (1 + g), n) == pytest.approx(0.9, abs=0.02)
