"""Calibration profiles: save/load (JSON and TOML), find by serial, refuse another dongle's profile."""

from __future__ import annotations

import json
import logging

import pytest

import calibration as cal
from calibration.profiles import find_profile, load_profile, profile_mismatch, profile_summary, save_profile


def make_profile(serial="00000042", date="2026-05-01T10:00:00Z"):
    table = cal.build_power_table([-60, -60, -70, -70], [430e6, 450e6, 430e6, 450e6], [20, 20, 30, 30],
                                  [-18.0, -18.5, -18.2, -18.9], [-120.0, -120.5, -110.0, -110.2])
    return cal.CalibrationProfile(
        serial=serial, created_utc=date, updated_utc=date,
        ppm=cal.PpmCalibration(ppm=-37.02, uncertainty_ppm=0.03, method="carrier", date_utc=date,
                               reference_hz=446.1e6, measured_hz=446116511.0, source="gen.cu8",
                               drift={"model": "warmup", "params": {"tau_s": 120.0}, "residual_rms_ppm": 0.01}),
        iq=cal.IqCalibration(dc_i=0.0118, dc_q=-0.0078, gain_imbalance_db=0.8, phase_imbalance_deg=4.0,
                             method="blind second-order moments", date_utc=date, image_rejection_before_db=24.8,
                             image_rejection_after_db=62.8),
        power=cal.PowerCalibration(table=table, method="signal-generator substitution", date_utc=date),
    )


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_roundtrip(tmp_path, suffix):
    prof = make_profile()
    path = save_profile(prof, tmp_path / f"dongle{suffix}")
    back = load_profile(path, serial="00000042")
    assert back.serial == prof.serial and back.updated_utc == prof.updated_utc
    assert back.ppm == prof.ppm
    assert back.iq == prof.iq
    assert back.iq.imbalance.gain_imbalance_db == 0.8
    for f, g in ((440e6, 25.0), (430e6, 20.0)):
        assert cal.power_offset_db(back.power.table, f, g) == pytest.approx(cal.power_offset_db(prof.power.table, f, g))
    assert cal.noise_floor_dbm(back.power.table, 20.0) == pytest.approx(cal.noise_floor_dbm(prof.power.table, 20.0))
    if suffix == ".json":
        d = json.loads(path.read_text())
        assert d["format"] == "examwatch-calibration-profile" and d["ppm"]["method"] == "carrier"
        assert d["ppm"]["date_utc"] == "2026-05-01T10:00:00Z"


def test_profile_for_another_serial_is_refused(tmp_path):
    path = save_profile(make_profile(serial="00000042"), tmp_path / "a.json")
    with pytest.raises(cal.ProfileMismatchError, match="for dongle serial '00000042', not '00000007'"):
        load_profile(path, serial="00000007")
    with pytest.raises(cal.ProfileMismatchError, match="no dongle serial"):
        cal.check_profile_serial(load_profile(path), None)
    assert isinstance(cal.ProfileMismatchError("x"), ValueError)  # exit code 2 through InputError


def test_find_profile(tmp_path, caplog):
    save_profile(make_profile(serial="00000042", date="2026-05-01T10:00:00Z"), tmp_path / "old.json")
    save_profile(make_profile(serial="00000042", date="2026-05-03T10:00:00Z"), tmp_path / "new.toml")
    save_profile(make_profile(serial="00000007"), tmp_path / "00000009.json")  # misnamed
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("ignored")
    found = find_profile("00000042", tmp_path)
    assert found is not None and found.updated_utc == "2026-05-03T10:00:00Z"
    assert find_profile("00000007", tmp_path).serial == "00000007"
    with caplog.at_level(logging.WARNING, logger="calibration.profiles"):
        assert find_profile("00000009", tmp_path) is None
    assert "holds the profile of 00000007: not used" in caplog.text
    assert find_profile("00000042", tmp_path / "missing") is None


def test_malformed_profiles(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(cal.CalibrationError, match="not an examwatch calibration profile"):
        load_profile(p)
    p.write_text(json.dumps({"format": "examwatch-calibration-profile", "version": 1, "serial": "1",
                             "created_utc": "t", "updated_utc": "t", "ppm": {"ppm": 1.0}}))
    with pytest.raises(cal.CalibrationError, match="ppm.uncertainty_ppm is missing"):
        load_profile(p)
    with pytest.raises(cal.CalibrationError, match="not found"):
        load_profile(tmp_path / "none.json")
    with pytest.raises(cal.CalibrationError, match="non-empty dongle serial"):
        cal.CalibrationProfile(serial=" ", created_utc="t", updated_utc="t")


def test_survey_and_monitoring_profile_mismatch_is_a_warning():
    a = profile_summary(make_profile(date="2026-05-01T10:00:00Z"))
    assert profile_mismatch(a, a) == []
    b = profile_summary(make_profile(date="2026-05-03T10:00:00Z"))
    assert "changed since the survey" in profile_mismatch(a, b)[0]
    c = profile_summary(make_profile(serial="00000007"))
    assert "differs from monitoring dongle" in profile_mismatch(a, c)[0]
    assert "without one" in profile_mismatch(a, None)[0]
    assert profile_mismatch(None, None) == []
