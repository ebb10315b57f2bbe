"""Frequency error: sign convention, carrier / FM / raster estimates on simulated IQ, drift tracking.

Sign: ppm is positive when the dongle tunes high (the value rtl-sdr's ``freq_correction`` takes).
The simulator shifts every emission by −ε·f_center with ε = ``receiver.ppm``, i.e. ε > 0 is an LO
that is high, so **the estimate must equal the scene's ``receiver.ppm``**: with ppm = −37 the
dongle sees a 446.1 MHz carrier 16.5 kHz high, and the estimate is −37 (not +37).
"""

from __future__ import annotations

import numpy as np
import pytest

import calibration as cal
from detector.sim.sdr import SimSDR
from tests.calibration import calibration_scene, far_emitter

FS = 1.024e6


def cw_scene(**kw):
    return calibration_scene([far_emitter("CW", 446.1e6, "cw", 60.0, bandwidth_hz=100.0)], **kw)


def fm_station(eirp_dbm: float = 65.0):
    return far_emitter("FM", 98.5e6, "wfm", eirp_dbm, bandwidth_hz=200e3)


class TestSignConvention:
    def test_dongle_tuning_high_has_positive_ppm_and_sees_signals_low(self):
        # LO-only model: f_meas = f − ε·f_center
        seen = cal.apparent_frequency(446.1e6, +20.0, center_hz=446e6, clock="lo")
        assert seen < 446.1e6
        assert cal.ppm_from_frequency(seen, 446.1e6, center_hz=446e6, clock="lo") == pytest.approx(20.0, abs=1e-9)
        # shared crystal: f_meas = f/(1 + ε)
        seen = cal.apparent_frequency(446.1e6, +20.0)
        assert seen < 446.1e6
        assert cal.ppm_from_frequency(seen, 446.1e6) == pytest.approx(20.0, abs=1e-9)

    @pytest.mark.parametrize("clock", ["shared", "lo"])
    def test_correct_inverts_apparent(self, clock):
        f = np.array([445.5e6, 446.0e6, 446.4e6])
        back = cal.correct_frequency(cal.apparent_frequency(f, -37.0, center_hz=446e6, clock=clock), -37.0,
                                     center_hz=446e6, clock=clock)
        np.testing.assert_allclose(back, f, rtol=0, atol=0.02 if clock == "shared" else 1e-6)

    def test_bad_clock_and_missing_center(self):
        with pytest.raises(ValueError, match="clock"):
            cal.ppm_from_frequency(1e8, 1e8, clock="gps")
        with pytest.raises(ValueError, match="center_hz"):
            cal.ppm_from_frequency(1e8, 1e8, clock="lo")


class TestCarrier:
    @pytest.mark.parametrize("ppm", [-37.0, 25.0])
    def test_estimate_equals_scene_ppm(self, ppm):
        sdr = SimSDR(cw_scene(ppm=ppm), window="all")
        b = sdr.read(1 << 18)
        e = cal.estimate_ppm_carrier(b.samples, sample_rate_hz=b.sample_rate_hz, center_hz=b.center_hz,
                                     reference_hz=446.1e6, clock="lo")
        print(f"scene ppm {ppm:+.1f}: estimate {e.ppm:+.5f} ± {e.uncertainty_ppm:.1e} ppm, SNR {e.snr_db:.1f} dB")
        assert e.ppm == pytest.approx(ppm, abs=0.5)
        assert abs(e.ppm - ppm) < 0.05  # measured: < 0.01
        assert np.sign(e.measured_hz - e.reference_hz) == -np.sign(ppm)  # −37 ppm: the carrier appears high
        assert e.uncertainty_ppm < 0.1
        assert e.method == "carrier" and e.reference_hz == 446.1e6

    def test_shared_crystal_dongle(self):
        """One crystal for LO and ADC: run the simulator at fs·(1 + ε) and read its samples as fs."""
        eps = -37e-6
        sdr = SimSDR(cw_scene(ppm=-37.0, sample_rate_hz=FS * (1 + eps)), window="all")
        b = sdr.read(1 << 18)
        e = cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=b.center_hz, reference_hz=446.1e6)
        assert e.ppm == pytest.approx(-37.0, abs=0.05)

    def test_digital_correction_puts_the_carrier_back(self):
        sdr = SimSDR(cw_scene(ppm=-37.0), window="all")
        b = sdr.read(1 << 18)
        e = cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=b.center_hz, reference_hz=446.1e6,
                                     clock="lo")
        y = cal.correct_iq_frequency(b.samples, ppm=e.ppm, center_hz=b.center_hz, sample_rate_hz=FS, clock="lo")
        assert y.dtype == np.complex64
        m = cal.measure_tone(y, sample_rate_hz=FS, center_hz=b.center_hz, near_hz=446.1e6, search_hz=5e3)
        assert abs(m.freq_hz - 446.1e6) < 5.0

    def test_no_reference_signal(self):
        b = SimSDR(cw_scene(), window="all").read(1 << 17)
        with pytest.raises(cal.CalibrationError, match="no reference signal"):
            cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=446e6, reference_hz=445.8e6, clock="lo")

    def test_carrier_farther_than_200_ppm_is_not_taken(self):
        # the carrier appears at 446.1165 MHz; a reference at 446.22 MHz (232 ppm away) must not lock onto it
        b = SimSDR(cw_scene(), window="all").read(1 << 17)
        with pytest.raises(cal.CalibrationError, match="no reference signal"):
            cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=446e6, reference_hz=446.22e6, clock="lo")
        # ... while 200 ppm around 446.19 MHz (±89 kHz) still holds it
        e = cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=446e6, reference_hz=446.19e6, clock="lo")
        assert e.measured_hz == pytest.approx(446.1165e6, abs=100)

    def test_iq_image_is_not_taken_for_the_reference(self):
        # 0.8 dB / 4° imbalance: the 446.1165 MHz carrier's image at 445.8835 MHz is 25 dB down but
        # 20 dB over the floor, within 200 ppm of a 445.8 MHz reference
        sc = calibration_scene([far_emitter("CW", 446.1e6, "cw", 70.0, bandwidth_hz=100.0)], iq_gain_db=0.8,
                               iq_phase_deg=4.0)
        b = SimSDR(sc, window="all").read(1 << 17)
        with pytest.raises(cal.CalibrationError, match="no reference signal"):
            cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=446e6, reference_hz=445.8e6, clock="lo")

    def test_weak_carrier_below_10_db(self):
        weak = calibration_scene([far_emitter("CW", 446.1e6, "cw", 22.0, bandwidth_hz=100.0)])
        b = SimSDR(weak, window="all").read(1 << 17)
        with pytest.raises(cal.CalibrationError, match=r"dB over the noise floor; need ≥ 10 dB"):
            cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=446e6, reference_hz=446.1e6, clock="lo")

    def test_outside_band_and_too_short(self):
        x = np.zeros(1 << 14, dtype=np.complex64)
        with pytest.raises(cal.CalibrationError, match="outside the captured band"):
            cal.estimate_ppm_carrier(x, sample_rate_hz=FS, center_hz=446e6, reference_hz=460e6)
        with pytest.raises(cal.CalibrationError, match="too few samples"):
            cal.estimate_ppm_carrier(x[:100], sample_rate_hz=FS, center_hz=446e6, reference_hz=446.1e6)


class TestFm:
    def test_fm_carrier_on_the_simulator(self):
        """The simulator shifts the LO only: the station's carrier (center of its deviation) gives ε."""
        sdr = SimSDR(calibration_scene([fm_station()], center_hz=98.2e6, ppm=-37.0), window="all")
        b = sdr.read(int(2 * FS))
        e = cal.estimate_ppm_fm(b.samples, sample_rate_hz=FS, center_hz=b.center_hz, station_hz=98.5e6,
                                reference="carrier", clock="lo")
        d = e.details
        print(f"FM carrier: {e.ppm:+.4f} ± {e.uncertainty_ppm:.4f} ppm; pilot {d['pilot_hz']:.4f} Hz "
              f"({d['pilot_snr_db']:.1f} dB) → {d['pilot_ppm']:+.3f} ppm (no clock error in the simulator); "
              f"discriminator mean {(d['discriminator_mean_hz'] - d['carrier_hz']):+.0f} Hz off the carrier")
        assert e.ppm == pytest.approx(-37.0, abs=0.5)
        assert e.method == "fm-carrier"
        assert d["pilot_snr_db"] >= 10
        assert abs(d["pilot_ppm"]) < 1.0  # the simulator's pilot stays at 19 kHz

    def test_fm_pilot_on_a_shared_crystal_dongle(self):
        """Sample clock off by ε too: run the simulator at fs·(1 + ε) and read the samples as fs."""
        eps = -37e-6
        sc = calibration_scene([fm_station()], center_hz=98.2e6, ppm=-37.0, sample_rate_hz=FS * (1 + eps))
        b = SimSDR(sc, window="all").read(int(4 * FS))
        e = cal.estimate_ppm_fm(b.samples, sample_rate_hz=FS, center_hz=b.center_hz, station_hz=98.5e6)
        d = e.details
        print(f"FM pilot: {e.ppm:+.4f} ± {e.uncertainty_ppm:.4f} ppm (pilot at {e.measured_hz:.4f} Hz); "
              f"carrier {d['carrier_ppm']:+.4f} ppm")
        assert e.method == "fm-pilot" and e.reference_hz == 19000.0
        assert e.measured_hz > 19000.0  # −37 ppm: the clock is slow, so the pilot reads high
        assert e.ppm == pytest.approx(-37.0, abs=0.5)
        assert d["carrier_ppm"] == pytest.approx(-37.0, abs=0.5)
        assert abs(d["difference_ppm"]) < 0.5

    def test_no_pilot_is_not_an_fm_stereo_station(self):
        mono = far_emitter("MONO", 98.5e6, "nfm", 65.0, bandwidth_hz=150e3, deviation_hz=50e3)  # FM, no pilot
        b = SimSDR(calibration_scene([mono], center_hz=98.2e6), window="all").read(int(0.6 * FS))
        with pytest.raises(cal.CalibrationError, match="no 19 kHz pilot"):
            cal.estimate_ppm_fm(b.samples, sample_rate_hz=FS, center_hz=98.2e6, station_hz=98.5e6,
                                reference="carrier", clock="lo")

    def test_no_station(self):
        b = SimSDR(calibration_scene([], center_hz=98.2e6), window="all").read(int(0.6 * FS))
        with pytest.raises(cal.CalibrationError, match="no reference signal"):
            cal.estimate_ppm_fm(b.samples, sample_rate_hz=FS, center_hz=98.2e6, station_hz=98.5e6,
                                reference="carrier", clock="lo")

    def test_bad_arguments(self):
        x = np.zeros(int(0.6 * FS), dtype=np.complex64)
        with pytest.raises(ValueError, match="pilot measures the sample clock"):
            cal.estimate_ppm_fm(x, sample_rate_hz=FS, center_hz=98.2e6, station_hz=98.5e6, clock="lo")
        with pytest.raises(cal.CalibrationError, match="not inside the captured band"):
            cal.estimate_ppm_fm(x, sample_rate_hz=FS, center_hz=98.2e6, station_hz=98.65e6)
        with pytest.raises(cal.CalibrationError, match="too short"):
            cal.estimate_ppm_fm(x[:100_000], sample_rate_hz=FS, center_hz=98.2e6, station_hz=98.5e6)


class TestRaster:
    LMR = far_emitter("LMR", 460.25e6, "nfm", 60.0, bandwidth_hz=11e3)

    @pytest.mark.parametrize(("ppm", "prior", "prior_unc"), [(-8.0, 0.0, 5.0), (-37.0, -36.0, 2.0)])
    def test_nearest_raster_point(self, ppm, prior, prior_unc):
        b = SimSDR(calibration_scene([self.LMR], center_hz=460e6, ppm=ppm), window="all").read(1 << 19)
        e = cal.estimate_ppm_raster(b.samples, sample_rate_hz=FS, center_hz=460e6, near_hz=460.25e6,
                                    raster_step_hz=12.5e3, prior_ppm=prior, prior_uncertainty_ppm=prior_unc,
                                    clock="lo")
        print(f"raster, scene {ppm:+.1f} ppm: {e.ppm:+.4f} ± {e.uncertainty_ppm:.4f} ppm")
        assert e.reference_hz == 460.25e6
        assert e.ppm == pytest.approx(ppm, abs=0.5)

    def test_ambiguous_without_a_coarse_prior(self):
        b = SimSDR(calibration_scene([self.LMR], center_hz=460e6, ppm=-37.0), window="all").read(1 << 19)
        with pytest.raises(cal.CalibrationError, match="ambiguous raster point"):
            cal.estimate_ppm_raster(b.samples, sample_rate_hz=FS, center_hz=460e6, near_hz=460.25e6,
                                    raster_step_hz=12.5e3, prior_uncertainty_ppm=60.0, clock="lo")


class TestDrift:
    def test_warm_up_drift_tracked_under_1_ppm(self):
        """−37 ppm drifting by +5 ppm with τ = 120 s (99 % within the 10 min run): a 32 ms window of IQ
        every 10 s, a carrier estimate per window, a warm-up model fitted over the run."""
        sdr = SimSDR(cw_scene(ppm=-37.0, drift_ppm=5.0, drift_tau_s=120.0), window="all")
        n = 1 << 15
        times, est, unc, truth = [], [], [], []
        for t in np.arange(0.0, 600.1, 10.0):
            sdr.t = float(t)
            b = sdr.read(n)
            e = cal.estimate_ppm_carrier(b.samples, sample_rate_hz=FS, center_hz=b.center_hz,
                                         reference_hz=446.1e6, clock="lo")
            tm = b.offset_s + n / (2 * FS)
            times.append(tm), est.append(e.ppm), unc.append(e.uncertainty_ppm), truth.append(sdr.ppm_at(tm))
        times, est, truth = map(np.asarray, (times, est, truth))
        track = cal.track_drift(times, est, unc)
        fine_t = np.linspace(times[0], times[-1], 2001)
        fine_truth = np.array([sdr.ppm_at(t) for t in fine_t])
        model_resid = np.abs(track.ppm_at(fine_t) - fine_truth).max()
        hold_resid = np.abs(est[np.searchsorted(times, fine_t, side="right") - 1] - fine_truth).max()
        static_resid = np.abs(est[0] - fine_truth).max()
        print(f"drift {truth[0]:+.2f} → {truth[-1]:+.2f} ppm; per-window error max {np.abs(est - truth).max():.4f} ppm; "
              f"model {track.model} τ = {track.params['tau_s']:.1f} s, fit residual rms {track.residual_rms_ppm:.4f} ppm; "
              f"tracked residual vs truth max {model_resid:.4f} ppm; hold-last {hold_resid:.3f} ppm; "
              f"first estimate only {static_resid:.2f} ppm")
        assert track.model == "warmup"
        assert np.abs(est - truth).max() < 0.5
        assert model_resid < 1.0
        assert hold_resid < 1.0
        assert static_resid > 4.0  # without tracking the drift is all there

    def test_models_and_errors(self):
        t = np.array([0.0, 10.0, 20.0, 30.0])
        lin = cal.track_drift(t, 2.0 + 0.01 * t)
        assert lin.model == "linear"
        assert lin.ppm_at(50.0) == pytest.approx(2.5)
        const = cal.track_drift([5.0], [3.0])
        assert const.model == "constant" and const.ppm_at(100.0) == 3.0
        with pytest.raises(cal.CalibrationError, match="no ppm estimates"):
            cal.track_drift([], [])
        with pytest.raises(cal.CalibrationError, match="too few windows"):
            cal.track_drift(t[:2], [1.0, 2.0], model="warmup")
        with pytest.raises(cal.CalibrationError, match="strictly increasing"):
            cal.track_drift([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])
