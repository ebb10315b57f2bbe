"""Power calibration: dBFS → dBm tables from reference measurements, interpolation, errors."""

from __future__ import annotations

import numpy as np
import pytest

import calibration as cal
from detector.dsp import make_plan, power_to_db, welch_psd
from detector.sim.sdr import SimSDR
from detector.core.types import Spectrum
from tests.calibration import calibration_scene, far_emitter

GAINS = [0.0, 10.0, 20.0, 30.0, 40.0, 49.6]
FREQS = np.arange(400e6, 480e6 + 1, 20e6)


def true_offset_db(f_hz, gain_db):
    """A plausible dongle: full scale at −22 − G dBm (SCENES §3.6) with a frequency ripple and tilt."""
    f = np.asarray(f_hz, dtype=float)
    return -22.0 - gain_db + 1.5 * np.sin(2 * np.pi * (f - 400e6) / 200e6) + 0.5 * (f - 400e6) / 100e6


def synthetic_rows(rng, noise_db=0.1):
    rows = []
    for g in GAINS:
        for f in FREQS:
            for gen in (-50.0 - g, -40.0 - g):  # two generator levels per point, −28 and −18 dBFS
                meas = gen - true_offset_db(f, g) + rng.normal(0, noise_db)
                rows.append((gen, f, g, meas, -170.0 - true_offset_db(f, g) + 5.0 - 0.1 * (49.6 - g)))
    return np.array(rows)


def csv_text(rows, header="gen_dbm,freq_hz,gain_db,measured_dbfs,noise_dbfs_per_hz"):
    return header + "\n" + "\n".join(",".join(f"{v:.6f}" for v in r) for r in rows) + "\n"


@pytest.fixture(scope="module")
def table():
    rows = synthetic_rows(np.random.default_rng(7))
    cols = cal.parse_power_csv(csv_text(rows))
    return cal.build_power_table(cols["gen_dbm"], cols["freq_hz"], cols["gain_db"], cols["measured_dbfs"],
                                 cols["noise_dbfs_per_hz"])


class TestSyntheticTable:
    def test_readings_at_calibration_points_within_half_a_db(self, table):
        rng = np.random.default_rng(11)
        errs = []
        for g in GAINS:
            for f in FREQS:
                gen = -45.0 - g
                reading = gen - true_offset_db(f, g) + rng.normal(0, 0.1)
                errs.append(cal.dbfs_to_dbm(reading, f, g, table) - gen)
        errs = np.abs(errs)
        print(f"at the {errs.size} calibration points: max |error| {errs.max():.3f} dB")
        assert errs.max() <= 0.5

    def test_readings_between_points_within_one_db(self, table):
        rng = np.random.default_rng(12)
        f = rng.uniform(FREQS[0], FREQS[-1], 400)
        g = rng.uniform(GAINS[0], GAINS[-1], 400)
        gen = -45.0 - g
        reading = gen - true_offset_db(f, g) + rng.normal(0, 0.1, 400)
        got = np.array([cal.dbfs_to_dbm(r, fi, gi, table) for r, fi, gi in zip(reading, f, g)])
        errs = np.abs(got - gen)
        fm = FREQS[:-1] + 10e6
        mid = np.abs(cal.dbfs_to_dbm(-70.0 - true_offset_db(fm, 25.0), fm, 25.0, table) + 70.0)
        print(f"between points ({errs.size} random f and G): max |error| {errs.max():.3f} dB; "
              f"midpoints at 25 dB: {mid.max():.3f} dB")
        assert errs.max() <= 1.0
        assert mid.max() <= 1.0

    def test_nearest_gain_mode_and_noise_floor(self, table):
        o = cal.power_offset_db(table, 440e6, 24.0, gain_mode="nearest")
        assert o == pytest.approx(cal.power_offset_db(table, 440e6, 20.0))
        nf = cal.noise_floor_dbm(table, 30.0)
        assert nf == pytest.approx(-170.0 + 5.0 - 0.1 * 19.6, abs=0.3)
        assert cal.noise_floor_dbm(table, 30.0, rbw_hz=1000.0) == pytest.approx(nf + 30.0)

    def test_spectrum_in_dbm(self, table):
        freqs = np.linspace(445e6, 447e6, 64)
        sp = Spectrum(freqs_hz=freqs, power=np.full(64, -50.0, dtype=np.float32), rbw_hz=1500.0)
        out = cal.spectrum_to_dbm(sp, table, gain_db=30.0)
        assert out.unit == "dBm" and out.power.dtype == np.float32
        np.testing.assert_allclose(out.power, -50.0 + cal.power_offset_db(table, freqs, 30.0), atol=1e-4)
        with pytest.raises(cal.CalibrationError, match="not dBFS"):
            cal.spectrum_to_dbm(out, table, gain_db=30.0)

    def test_outside_the_table(self, table):
        with pytest.raises(cal.CalibrationError, match="outside the calibrated gains"):
            cal.power_offset_db(table, 440e6, 55.0)
        with pytest.raises(cal.CalibrationError, match="outside the calibrated range"):
            cal.power_offset_db(table, 900e6, 20.0)
        assert np.isfinite(cal.power_offset_db(table, 481e6, 20.0))  # within the 2.5 MHz edge tolerance

    def test_profile_dict_roundtrip(self, table):
        back = cal.PowerTable.from_dict(table.to_dict())
        np.testing.assert_allclose(back.gains_db, table.gains_db)
        for f in (405e6, 455.5e6):
            assert cal.power_offset_db(back, f, 33.0) == pytest.approx(cal.power_offset_db(table, f, 33.0), abs=1e-3)


class TestBadInput:
    def test_wrong_columns(self):
        with pytest.raises(cal.CalibrationError, match=r"missing column\(s\) measured_dbfs; found gen_dbm, freq_hz, gain_db, level"):
            cal.parse_power_csv("gen_dbm,freq_hz,gain_db,level\n-60,4e8,20,-10\n")

    def test_empty_and_no_rows(self):
        with pytest.raises(cal.CalibrationError, match="empty CSV"):
            cal.parse_power_csv("")
        with pytest.raises(cal.CalibrationError, match="no data rows"):
            cal.parse_power_csv("gen_dbm,freq_hz,gain_db,measured_dbfs\n")

    def test_not_a_number(self):
        with pytest.raises(cal.CalibrationError, match=r"line 3: measured_dbfs = 'n/a' is not a number"):
            cal.parse_power_csv("gen_dbm,freq_hz,gain_db,measured_dbfs\n-60,4e8,20,-10\n-60,4.1e8,20,n/a\n")

    def test_too_few_points(self):
        with pytest.raises(cal.CalibrationError, match="too few points at gain 20 dB: 1 frequency"):
            cal.build_power_table([-60, -70], [433.92e6, 433.92e6], [20, 20], [-10, -20])
        with pytest.raises(cal.CalibrationError, match="too few points"):
            cal.build_power_table([], [], [], [])

    def test_clipped_reading(self):
        with pytest.raises(cal.CalibrationError, match="above full scale"):
            cal.build_power_table([-20, -20], [4e8, 4.1e8], [40, 40], [-3.0, 1.5])


def test_simulated_dongle_end_to_end():
    """Build a table at gain 20 dB from two simulated generators (their received dBm is the
    simulator's truth), then read a third carrier between them in dBm from a Welch spectrum."""
    def measure(f_c, eirp):
        sdr = SimSDR(calibration_scene([far_emitter("GEN", f_c, "cw", eirp, bandwidth_hz=100.0)], gain_db=20.0),
                     window="all")
        b = sdr.read(1 << 17)
        plan = make_plan(b.sample_rate_hz, nfft=4096)
        p = welch_psd(b.samples, plan)
        k = int(np.argmin(np.abs(plan.offsets_hz - (f_c + 37e-6 * 446e6 - 446e6))))
        k = k - 2 + int(np.argmax(p[k - 2:k + 3]))
        truth_dbm = float(np.mean([pw for _, _, pw in sdr.truth_power]))
        spec = Spectrum(freqs_hz=b.center_hz + plan.offsets_hz, power=power_to_db(p), rbw_hz=plan.rbw_hz)
        return float(power_to_db(p[k])), truth_dbm, spec, k

    r1, t1, _, _ = measure(445.7e6, 60.0)
    r2, t2, _, _ = measure(446.3e6, 55.0)
    table = cal.build_power_table([t1, t2], [445.7e6, 446.3e6], [20.0, 20.0], [r1, r2])
    r3, t3, spec, k = measure(446.05e6, 58.0)
    dbm = cal.spectrum_to_dbm(spec, table, gain_db=20.0)
    print(f"offset {table.offsets_db[0]} dB; third carrier {dbm.power[k]:.2f} dBm vs truth {t3:.2f} dBm")
    assert dbm.power[k] == pytest.approx(t3, abs=1.0)
