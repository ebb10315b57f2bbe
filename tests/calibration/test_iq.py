"""DC offset and IQ imbalance: blind estimate, correction, image rejection (simulated and real IQ)."""

from __future__ import annotations

import numpy as np
import pytest

import calibration as cal
from detector.sim._synth import iq_imbalance
from detector.sim.sdr import SimSDR
from detector.app.sources import open_source
from tests.calibration import calibration_scene, far_emitter

FS = 1.024e6


class TestModel:
    def test_image_rejection_formula(self):
        # SCENES §3.6: 10 % / 5° → ≈ 24 dB; 1–5 % and 1–3° → 29–40 dB
        assert cal.model_image_rejection_db(20 * np.log10(1.1), 5.0) == pytest.approx(24.0, abs=0.5)
        assert cal.model_image_rejection_db(20 * np.log10(1.05), 3.0) == pytest.approx(29.0, abs=0.2)
        assert cal.model_image_rejection_db(20 * np.log10(1.01), 1.0) == pytest.approx(40.0, abs=0.5)
        assert cal.model_image_rejection_db(0.0, 0.0) == float("inf")

    def test_correction_inverts_the_simulator_model_exactly(self):
        rng = np.random.default_rng(3)
        x = (0.1 * (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16))).astype(np.complex64)
        y = iq_imbalance(x, 1.2, 5.0) + np.complex64(0.01 - 0.02j)
        imb = cal.IqImbalance(dc_i=0.01, dc_q=-0.02, gain_imbalance_db=1.2, phase_imbalance_deg=5.0)
        np.testing.assert_allclose(cal.correct_iq(y, imb), x, atol=2e-6)

    def test_clean_tone_measured_rejection_matches_the_model(self):
        n = 1 << 16
        t = np.arange(n) / FS
        x = (0.3 * np.exp(2j * np.pi * 100e3 * t)).astype(np.complex64)
        ir = cal.image_rejection(iq_imbalance(x, 1.0, 5.0), sample_rate_hz=FS)
        assert ir.tone_offset_hz == pytest.approx(100e3, abs=FS / 16384)
        assert ir.rejection_db == pytest.approx(cal.model_image_rejection_db(1.0, 5.0), abs=0.1)
        assert not ir.image_at_floor

    def test_errors(self):
        with pytest.raises(cal.CalibrationError, match="too few samples"):
            cal.estimate_iq_imbalance(np.zeros(100, dtype=np.complex64))
        dead_q = np.random.default_rng(0).standard_normal(4096).astype(np.complex64)  # Q ≡ 0
        with pytest.raises(cal.CalibrationError, match="no variance"):
            cal.estimate_iq_imbalance(dead_q)
        with pytest.raises(cal.CalibrationError, match="too few samples"):
            cal.image_rejection(np.zeros(10, dtype=np.complex64), sample_rate_hz=FS)


class TestSimulated:
    @pytest.mark.parametrize(("gain_db", "phase_deg"), [(0.8, 4.0), (1.2, 5.0)])
    def test_correction_raises_image_rejection_to_45_db(self, gain_db, phase_deg):
        sc = calibration_scene([far_emitter("CW", 446.1e6, "cw", 70.0, bandwidth_hz=100.0)],
                               iq_gain_db=gain_db, iq_phase_deg=phase_deg, dc_offset_lsb=(1.5, -1.0))
        b = SimSDR(sc, window="all").read(1 << 20)
        imb = cal.estimate_iq_imbalance(b.samples)
        before = cal.image_rejection(b.samples, sample_rate_hz=FS)
        y = cal.correct_iq(b.samples, imb)
        after = cal.image_rejection(y, sample_rate_hz=FS, tone_offset_hz=before.tone_offset_hz)
        print(f"scene {gain_db} dB / {phase_deg}° (model {cal.model_image_rejection_db(gain_db, phase_deg):.1f} dB): "
              f"estimated {imb.gain_imbalance_db:.3f} dB / {imb.phase_imbalance_deg:.3f}°, DC ({imb.dc_i * 127.5:+.2f}, "
              f"{imb.dc_q * 127.5:+.2f}) LSB; image rejection {before.rejection_db:.1f} → {after.rejection_db:.1f} dB"
              f"{' (image at the floor)' if after.image_at_floor else ''}, tone {before.tone_dbfs:.1f} dBFS")
        assert before.tone_offset_hz == pytest.approx(116.5e3, abs=200)
        assert before.rejection_db == pytest.approx(cal.model_image_rejection_db(gain_db, phase_deg), abs=1.0)
        assert after.rejection_db >= 45.0
        assert imb.gain_imbalance_db == pytest.approx(gain_db, abs=0.05)
        assert imb.phase_imbalance_deg == pytest.approx(phase_deg, abs=0.2)
        assert imb.dc_i * 127.5 == pytest.approx(1.5, abs=0.1)
        assert imb.dc_q * 127.5 == pytest.approx(-1.0, abs=0.1)


def test_real_recordings_are_not_worsened(real_dir, manifest):
    """Every real recording: the blind estimate is reported and correction never lowers image
    rejection by more than 0.5 dB (most images are at the noise floor: lower bounds)."""
    rows = []
    for entry in manifest["iq"]:
        src = open_source(str(real_dir / entry["file"]), sample_format=entry["dtype"],
                          sample_rate_hz=entry["sample_rate_hz"], center_hz=entry["center_hz"])
        x = np.concatenate([b.samples for b in src.blocks()])
        imb = cal.estimate_iq_imbalance(x)
        before = cal.image_rejection(x, sample_rate_hz=src.info.sample_rate_hz)
        after = cal.image_rejection(cal.correct_iq(x, imb), sample_rate_hz=src.info.sample_rate_hz,
                                    tone_offset_hz=before.tone_offset_hz)
        assert np.isfinite([imb.dc_i, imb.dc_q, imb.gain_imbalance_db, imb.phase_imbalance_deg]).all()
        rows.append((entry["file"].split("/")[-1][:44], imb, before, after))
    print(f"\n{'file':44s} {'DC I':>8s} {'DC Q':>8s} {'gain dB':>8s} {'phase°':>7s} {'tone kHz':>9s} "
          f"{'before':>7s} {'after':>7s}  (* image at the noise floor)")
    for name, imb, b, a in rows:
        print(f"{name:44s} {imb.dc_i:+8.4f} {imb.dc_q:+8.4f} {imb.gain_imbalance_db:+8.3f} "
              f"{imb.phase_imbalance_deg:+7.2f} {b.tone_offset_hz / 1e3:+9.1f} {b.rejection_db:6.1f}{'*' if b.image_at_floor else ' '}"
              f" {a.rejection_db:6.1f}{'*' if a.image_at_floor else ' '}")
    worst = min(a.rejection_db - b.rejection_db for _, _, b, a in rows)
    print(f"{len(rows)} files; worst change {worst:+.2f} dB")
    assert len(rows) == len(manifest["iq"])
    for name, _, b, a in rows:
        assert a.rejection_db >= b.rejection_db - 0.5, name
