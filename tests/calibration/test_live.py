"""Calibration during a run (``detector.app.correction``): drift tracked live, spectra and events in dBm."""

from __future__ import annotations

import numpy as np
import pytest

import calibration as cal
from calibration import CalibrationProfile, PowerCalibration
from detector.app.correction import LiveDrift, ProfileCorrection
from detector.dsp import make_plan, power_to_db, welch_psd
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.pipeline import Monitor
from detector.sim.sdr import SimSDR
from detector.sources import SourceInfo
from tests._helpers import survey_blocks
from tests.calibration import calibration_scene, far_emitter

REF_HZ = 446.1e6


def _cw_sdr(**kw):
    return SimSDR(calibration_scene([far_emitter("REF", REF_HZ, "cw", 60.0, bandwidth_hz=100.0)], **kw), window="all")


class TestLiveDrift:
    def test_drift_tracked_during_a_run_keeps_the_carrier_on_its_frequency(self):
        """−37 ppm drifting by +5 ppm (τ = 120 s) over a 10-minute run, a block every 2 s through the
        engine: the correction applied follows the truth within 1 ppm from the first estimate on,
        and the reference carrier's track stays on 446.1 MHz; holding the first estimate drifts
        2 kHz away."""
        sdr = _cw_sdr(ppm=-37.0, drift_ppm=5.0, drift_tau_s=120.0)
        drift = LiveDrift(REF_HZ, interval_s=10.0, clock="lo")
        corr = ProfileCorrection(None, drift=drift)
        engine = DetectionEngine(EngineConfig(), correct=corr)
        applied_err, centers, first = [], [], None
        for t in np.arange(0.0, 600.1, 2.0):
            sdr.t = float(t)
            block = sdr.read(1 << 15)
            engine.time_offset_s = 0.0
            events = engine.process_block(block)
            truth = sdr.ppm_at(block.offset_s + block.duration_s / 2)
            if first is None:
                first = corr.ppm
            applied_err.append(abs(corr.ppm - truth))
            centers += [(t, ev.center_hz) for ev in events if abs(ev.center_hz - REF_HZ) < 10e3]
            engine.finish()
            engine._stream = None  # noqa: SLF001 - blocks 2 s apart: no frame spans two of them
        st = corr.status()["drift"]
        print(f"windows {st['n_windows']}, model {st['model']}, residual rms {st['residual_rms_ppm']} ppm, "
              f"applied error max {max(applied_err):.3f} ppm; truth {sdr.ppm_at(0):.2f} → {sdr.ppm_at(600):.2f}")
        assert st["n_windows"] == 61 and st["failures"] == 0
        assert st["model"] == "warmup" and st["residual_rms_ppm"] < 0.5
        assert max(applied_err) < 1.0
        assert abs(sdr.ppm_at(600.0) - first) > 4.0  # without tracking the drift would all be there
        late = [f for t, f in centers if t > 300]
        assert late and max(abs(f - REF_HZ) for f in late) < 600.0

    def test_a_missing_reference_changes_nothing_and_is_reported(self):
        sdr = SimSDR(calibration_scene([far_emitter("X", 446.2e6, "cw", 60.0, bandwidth_hz=100.0)]), window="all")
        drift = LiveDrift(REF_HZ, interval_s=1.0, clock="lo")
        corr = ProfileCorrection(None, drift=drift)
        for t in (0.0, 2.0, 4.0):
            sdr.t = t
            corr(sdr.read(1 << 15))
        st = corr.status()
        assert st["ppm_applied"] == 0.0
        assert st["drift"]["n_windows"] == 0 and st["drift"]["failures"] == 3
        assert "no reference signal" in st["drift"]["last_error"]

    def test_reference_outside_the_band_is_not_measured(self):
        drift = LiveDrift(450e6, interval_s=1.0)
        sdr = _cw_sdr()
        assert not drift.observe(sdr.read(1 << 14))
        assert drift.failures == 0 and drift.ppm_at(0.0) is None

    @pytest.mark.parametrize("kw", [{"interval_s": 0}, {"window_s": 1e-4}])
    def test_bad_parameters(self, kw):
        with pytest.raises(ValueError):
            LiveDrift(REF_HZ, **kw)


def _power_profile(gain_db: float) -> CalibrationProfile:
    """A table at ``gain_db`` from two simulated generators (their received dBm is the simulator's truth)."""
    readings, truths, freqs = [], [], [445.7e6, 446.3e6]
    for f_c, eirp in zip(freqs, (60.0, 55.0)):
        sdr = SimSDR(calibration_scene([far_emitter("GEN", f_c, "cw", eirp, bandwidth_hz=100.0)], gain_db=gain_db),
                     window="all")
        b = sdr.read(1 << 17)
        plan = make_plan(b.sample_rate_hz, nfft=4096)
        p = welch_psd(b.samples, plan)
        k = int(np.argmin(np.abs(b.center_hz + plan.offsets_hz - f_c - 37e-6 * 446e6)))
        readings.append(float(power_to_db(p[k - 2:k + 3].max())))
        truths.append(float(np.mean([pw for _, _, pw in sdr.truth_power])))
    table = cal.build_power_table(truths, freqs, [gain_db] * 2, readings)
    return CalibrationProfile(serial="00000009", created_utc="2026-06-01T08:00:00Z", updated_utc="2026-06-01T08:00:00Z",
                              power=PowerCalibration(table=table, method="generator", date_utc="2026-06-01T08:00:00Z"))


class TestDbmChain:
    def test_spectra_and_events_in_dbm_when_the_profile_has_a_power_table(self):
        prof = _power_profile(20.0)
        corr = ProfileCorrection(prof)
        sdr = SimSDR(calibration_scene([far_emitter("TX", 446.05e6, "cw", 58.0, bandwidth_hz=100.0)], gain_db=20.0),
                     window="all")
        engine = DetectionEngine(EngineConfig(), correct=corr)
        events = []
        for _ in range(20):
            events += engine.process_block(sdr.read(1 << 15))
        # the open tracks (the API's /tracks) carry peak_dbm like the events
        (open_tx,) = [e.to_json() for e in engine.open_tracks() if abs(e.center_hz - 446.05e6 - 37e-6 * 446e6) < 5e3]
        assert open_tx["peak_dbm"] == pytest.approx(
            open_tx["peak_dbfs"] + cal.power_offset_db(prof.power.table, open_tx["center_hz"], 20.0), abs=0.02)
        events += engine.finish()
        truth_dbm = float(np.mean([pw for _, _, pw in sdr.truth_power]))
        spec = engine.calibrated_spectrum()
        assert spec.unit == "dBm" and engine.last_spectrum.unit == "dBFS"
        off = cal.power_offset_db(prof.power.table, spec.freqs_hz, 20.0)
        np.testing.assert_allclose(spec.power - engine.last_spectrum.power, off, atol=1e-3)
        k = int(np.argmax(spec.power))
        tx = [ev.to_json() for ev in events if abs(ev.center_hz - 446.05e6 - 37e-6 * 446e6) < 5e3]
        assert tx, events
        ev = tx[-1]
        print(f"truth {truth_dbm:.2f} dBm; spectrum peak {spec.power[k]:.2f} dBm; event peak {ev['peak_dbm']} dBm "
              f"({ev['peak_dbfs']} dBFS)")
        # one 1 kHz bin of a Hann FFT holds the carrier within its scalloping loss (≤ 1.42 dB)
        assert truth_dbm - 1.6 <= spec.power[k] <= truth_dbm + 0.5
        assert ev["peak_dbm"] == pytest.approx(ev["peak_dbfs"] + cal.power_offset_db(prof.power.table, ev["center_hz"], 20.0),
                                               abs=0.02)
        assert truth_dbm - 1.6 <= ev["peak_dbm"] <= truth_dbm + 0.5

    def test_unknown_gain_or_uncovered_band_stays_in_dbfs_with_a_warning(self):
        corr = ProfileCorrection(_power_profile(20.0))
        engine = DetectionEngine(EngineConfig(), correct=corr)
        sdr = _cw_sdr(gain_db=20.0)
        block = sdr.read(1 << 15)
        from dataclasses import replace

        engine.process_block(replace(block, gain_db=None))  # AGC: the gain is not known
        assert engine.calibrated_spectrum().unit == "dBFS"
        assert any("gain is unknown" in w for w in corr.warnings)
        engine.process_block(replace(block, gain_db=45.0))  # not calibrated at that gain
        assert engine.calibrated_spectrum().unit == "dBFS"
        assert any("outside the calibrated gains" in w for w in corr.warnings)
        events = engine.finish()
        assert all(ev.peak_dbm is None for ev in events)

    def test_monitor_publishes_dbm_with_the_baseline_converted(self):
        prof = _power_profile(20.0)
        sdr = _cw_sdr(gain_db=20.0)
        blocks = [sdr.read(1 << 15) for _ in range(8)]
        info = SourceInfo(kind="sim", name="rec", center_hz=blocks[0].center_hz, sample_rate_hz=blocks[0].sample_rate_hz,
                          n_samples=None)

        class Rec:
            def __init__(self):
                self.info = info

            def blocks(self, bs):
                yield from blocks

            def close(self):
                pass

        base = survey_blocks(blocks, site="s")
        mon = Monitor(Rec, DetectionEngine(EngineConfig(), baseline=base, correct=ProfileCorrection(prof)))
        mon.start()
        assert mon.finished.wait(30)
        out = mon.latest_spectrum()
        mon.stop()
        assert out["unit"] == "dBm" and out["noise_floor_dbm"] is not None
        off = cal.power_offset_db(prof.power.table, np.asarray(out["freqs_hz"]), 20.0)
        assert out["noise_floor_dbm"] == pytest.approx(out["noise_floor_dbfs"] + float(np.median(off)), abs=0.01)
        med = np.asarray([np.nan if v is None else v for v in out["baseline"]["median_db"]], dtype=float)
        k = int(np.nanargmax(med))
        # the baseline's strongest bin (the carrier) sits where the live dBm spectrum has it
        assert med[k] == pytest.approx(out["power"][k], abs=1.5)
        h = mon.health()["calibration"]
        assert h["power_calibrated"] and h["profile"] == prof.profile_id
