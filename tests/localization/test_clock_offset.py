"""Readings matched to a GPS track by time (issue #24 item 5): partial overlaps and clock offsets
are reported instead of ``located``, and the time resolution's position uncertainty enters the
95 % region."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timezone

import numpy as np
import pytest
from typer.testing import CliRunner

import detector.cli.locate  # noqa: F401  (registers the command on the app)
from detector.cli import app
from detector.localization import (CHI2_2DOF_95, LocalFrame, PathLossModel, estimate_clock_offset, locate_enu,
                                   position_sigma_m, shadowing_cov, time_resolution_s)

runner = CliRunner()
ORIGIN = LocalFrame(50.0, 10.0)
T0 = 1715000000.0
TX = (15.0, -10.0)
SPEED = 20.0


def meander(speed=SPEED, dt=0.1, n_wp=14, box=200.0, seed=11):
    """A drive through ``n_wp`` random waypoints in a box of ±``box`` m around the transmitter (no
    lap repeats itself: a loop or a lawnmower would make offsets of one lap or leg fit almost as
    well); returns times from 0, ENU x, y."""
    rng = np.random.default_rng(seed)
    wp = rng.uniform(-box, box, (n_wp, 2))
    seg = np.hypot(*np.diff(wp, axis=0).T)
    s_cum = np.r_[0.0, np.cumsum(seg)]
    t = np.arange(0.0, s_cum[-1] / speed, dt)
    s = t * speed
    return t, np.interp(s, s_cum, wp[:, 0]), np.interp(s, s_cum, wp[:, 1])


def powers(x, y, seed):
    rng = np.random.default_rng(seed)
    # shadowing on the cells of the route, fast fading per reading
    cov = shadowing_cov(x[::5], y[::5], PathLossModel(measurement_db=0.5))
    sh = np.repeat(np.linalg.cholesky(cov) @ rng.standard_normal(cov.shape[0]), 5)[: x.size]
    return -30.0 - 30.0 * np.log10(np.hypot(x - TX[0], y - TX[1]) + 1.0) + sh + rng.normal(0, 1.0, x.size)


def write_gpx(path, t0, t1):
    """A 1 Hz GPX track of the meander from drive time ``t0`` to ``t1`` (s; extended by parking before and after)."""
    tt, xx, yy = meander(dt=1.0)
    ts = np.arange(t0, t1 + 0.5, 1.0)
    x = np.interp(ts, tt, xx)
    y = np.interp(ts, tt, yy)
    lat, lon = ORIGIN.to_geodetic(x, y)
    stamp = [f"{datetime.fromtimestamp(T0 + v, tz=timezone.utc):%Y-%m-%dT%H:%M:%SZ}" for v in ts]
    pts = "\n".join(f'<trkpt lat="{a:.8f}" lon="{b:.8f}"><time>{s}</time></trkpt>' for a, b, s in zip(lat, lon, stamp))
    path.write_text(f'<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
                    f"<trk><trkseg>{pts}</trkseg></trk></gpx>")
    return path


def write_readings(path, t, p):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "power_dbm"])
        w.writerows([[f"{T0 + a:.3f}", f"{b:.2f}"] for a, b in zip(t, p)])
    return path


def run_json(args):
    r = runner.invoke(app, ["locate", *args, "--json"])
    assert r.exit_code == 0, (r.output, r.exception)
    return json.loads(r.stdout.strip().splitlines()[-1])


def error_m(out):
    x, y = ORIGIN.to_enu(np.array([out["lat"]]), np.array([out["lon"]]))
    return float(math.hypot(x[0] - TX[0], y[0] - TX[1]))


@pytest.fixture(scope="module")
def drive():
    t, x, y = meander()
    return t, x, y, powers(x, y, seed=5)


def test_no_offset_is_located(tmp_path, drive):
    t, x, y, p = drive
    gpx = write_gpx(tmp_path / "g.gpx", -300.0, t[-1] + 300.0)
    out = run_json([str(write_readings(tmp_path / "r.csv", t, p)), "--gps", str(gpx)])
    assert out["status"] == "located", out["reason"]
    assert abs(out["time_offset_s"]) <= 2.0
    assert out["input"]["gps_fix_share"] == 1.0
    assert out["input"]["time_resolution_s"] == pytest.approx(0.1)
    assert error_m(out) < 40.0


def test_clock_100_s_off_is_refused_with_the_offset(tmp_path, drive):
    """Full overlap (the GPS log runs longer), every reading paired with the wrong position."""
    t, x, y, p = drive
    gpx = write_gpx(tmp_path / "g.gpx", -300.0, t[-1] + 300.0)
    out = run_json([str(write_readings(tmp_path / "r.csv", t + 100.0, p)), "--gps", str(gpx)])
    assert out["status"] == "not_localizable"
    assert out["time_offset_s"] == pytest.approx(100.0, abs=5.0)
    assert "clock" in out["reason"] and "--clock-offset-s" in out["reason"]
    assert out["input"]["clock_offset"]["significant"] is True
    # told the offset, the same readings are located again
    fixed = run_json([str(tmp_path / "r.csv"), "--gps", str(gpx), "--clock-offset-s", f"{out['time_offset_s']:.2f}"])
    assert fixed["status"] == "located", fixed["reason"]
    assert abs(fixed["time_offset_s"] - out["time_offset_s"]) <= 2.0
    assert error_m(fixed) < 40.0
    # a generous tolerance accepts the pairing as it is (the offset is still reported)
    lax = run_json([str(tmp_path / "r.csv"), "--gps", str(gpx), "--max-clock-offset-s", "200"])
    assert lax["time_offset_s"] == pytest.approx(100.0, abs=5.0)


def test_partial_overlap_is_reported(tmp_path, drive):
    """The track covers only the drive: readings 100 s late leave about half without a fix."""
    t, x, y, p = drive
    gpx = write_gpx(tmp_path / "g.gpx", 0.0, t[-1])
    out = run_json([str(write_readings(tmp_path / "r.csv", t + 100.0, p)), "--gps", str(gpx)])
    assert out["status"] == "not_localizable"
    share = out["input"]["gps_fix_share"]
    assert 0.3 < share < 0.8
    assert "partly overlap" in out["reason"] and f"{100 * share:.0f} %" in out["reason"]
    assert out["time_offset_s"] == pytest.approx(100.0, abs=5.0)


def test_time_resolution():
    assert time_resolution_s(T0 + np.arange(10.0)) == 1.0
    assert time_resolution_s(T0 + 0.1 * np.arange(10)) == pytest.approx(0.1)
    assert time_resolution_s(T0 + 0.25 * np.arange(10)) == pytest.approx(0.01)  # stamps to the hundredth
    assert np.allclose(position_sigma_m([20.0, 0.0], 1.0, 3.0), [math.hypot(20, 3), 3.0])


def test_whole_second_times_grow_the_region(tmp_path, drive):
    """Stamps truncated to whole seconds at 20 m/s: each reading may lie up to 20 m from where it is
    placed. The 95 % region must grow at least as a common position error of σ = v·Δt does:
    a² ≥ a₀² + χ²₂(95 %)·((v·1 s)² − (v·0.1 s)²)."""
    t, x, y, p = drive
    gpx = write_gpx(tmp_path / "g.gpx", -300.0, t[-1] + 300.0)
    fine = run_json([str(write_readings(tmp_path / "f.csv", t, p)), "--gps", str(gpx)])
    coarse = run_json([str(write_readings(tmp_path / "c.csv", np.floor(t), p)), "--gps", str(gpx)])
    assert fine["status"] == coarse["status"] == "located"
    assert coarse["input"]["time_resolution_s"] == 1.0
    a0, a1 = fine["error_ellipse_m"]["semi_major"], coarse["error_ellipse_m"]["semi_major"]
    expected = math.sqrt(a0 ** 2 + CHI2_2DOF_95 * ((SPEED * 1.0) ** 2 - (SPEED * 0.1) ** 2)) / a0
    assert a1 / a0 >= expected - 1e-6, (a0, a1, expected)
    assert error_m(coarse) <= a1  # the truth inside the major axis' reach


def test_pos_sigma_inflates_the_region_in_locate_enu(drive):
    t, x, y, p = drive
    base = locate_enu(x, y, p)
    wide = locate_enu(x, y, p, pos_sigma_m=20.0)
    assert base.status == wide.status == "located"
    assert wide.pos_sigma_m == pytest.approx(20.0)
    assert np.trace(wide.cov_xy) >= np.trace(base.cov_xy) + 2 * 20.0 ** 2 - 1e-6
    with pytest.raises(ValueError):
        locate_enu(x, y, p, pos_sigma_m=-1.0)


def test_estimate_clock_offset_direct(drive):
    t, x, y, p = drive
    tt = np.arange(-300.0, t[-1] + 300.0)
    xx, yy = np.interp(tt, t, x), np.interp(tt, t, y)

    def positions(tg):
        inside = (tg >= tt[0]) & (tg <= tt[-1])
        return np.where(inside, np.interp(tg, tt, xx), np.nan), np.where(inside, np.interp(tg, tt, yy), np.nan)

    off = estimate_clock_offset(t - 37.0, p, positions, speed_mps=SPEED)
    assert off is not None and off.offset_s == pytest.approx(-37.0, abs=2.0) and off.significant
    same = estimate_clock_offset(t, p, positions, speed_mps=SPEED)
    assert abs(same.offset_s) <= 2.0
