"""The monitor's locator (``detector.localization.tracks``, issue #24 item 5): the position
uncertainty of each reading (speed × time resolution) enters the error ellipse; readings that only
partly have a position, or whose pairing with the GPS track implies a clock offset, give the
refused estimate with the reason instead of ``located``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from detector.detection import Reading
from detector.localization.tracks import reading_speeds, track_locator
from tests.localization.test_clock_offset import ORIGIN, SPEED, TX, meander, powers


@pytest.fixture(scope="module")
def drive():
    """The 20 m/s meander of ``test_clock_offset`` around the transmitter, one reading every 0.1 s."""
    t, x, y = meander()
    return t, x, y, powers(x, y, seed=5)


def route(t_s):
    """The GPS track: (lat, lon) of the meander at times ``t_s``, parked 300 s before and after the
    drive (as ``test_clock_offset``'s GPX), NaN outside that."""
    tt, xx, yy = meander()
    t_s = np.asarray(t_s, float)
    inside = (t_s >= tt[0] - 300.0) & (t_s <= tt[-1] + 300.0)
    x = np.where(inside, np.interp(t_s, tt, xx), np.nan)
    y = np.where(inside, np.interp(t_s, tt, yy), np.nan)
    return ORIGIN.to_geodetic(x, y)


def track(t, lat, lon, p, **kw):
    return SimpleNamespace(track_id="T00001", readings=[
        Reading(float(a), float(b), None if not np.isfinite(c) else float(c), None if not np.isfinite(d) else float(d), **kw)
        for a, b, c, d in zip(t, p, lat, lon)])


def error_m(out):
    x, y = ORIGIN.to_enu(np.array([out["lat"]]), np.array([out["lon"]]))
    return float(np.hypot(x[0] - TX[0], y[0] - TX[1]))


def test_the_time_resolution_at_speed_grows_the_error_ellipse(drive):
    """The same readings at 20 m/s: positions good to 1 s place a reading anywhere along 20 m;
    to 10 ms, 0.2 m (the GPS error, 3 m, dominates)."""
    t, x, y, p = drive
    lat, lon = ORIGIN.to_geodetic(x, y)
    coarse = track_locator()(track(t, lat, lon, p, speed_mps=SPEED, time_res_s=1.0))
    fine = track_locator()(track(t, lat, lon, p, speed_mps=SPEED, time_res_s=0.01))
    assert coarse["status"] == fine["status"] == "located"
    a1, a0 = coarse["error_ellipse_m"]["semi_major"], fine["error_ellipse_m"]["semi_major"]
    b1, b0 = coarse["error_ellipse_m"]["semi_minor"], fine["error_ellipse_m"]["semi_minor"]
    # a common position error of σ = 20 m adds χ²₂(95 %)·(σ₁² − σ₀²) to each squared semi-axis
    grow = 5.991 * (np.hypot(20.0, 3.0) ** 2 - np.hypot(0.2, 3.0) ** 2)
    assert a1 ** 2 >= a0 ** 2 + grow and b1 ** 2 >= b0 ** 2 + grow
    assert a1 > 1.5 * a0 and b1 > 1.5 * b0
    assert error_m(fine) < 40.0 and error_m(coarse) < 60.0
    # without speed and resolution on the readings, the locator takes them from the readings
    # themselves: 0.1 s stamps and 20 m/s between successive positions
    own = track_locator()(track(t, lat, lon, p))
    assert own["error_ellipse_m"]["semi_major"] == pytest.approx(
        track_locator()(track(t, lat, lon, p, speed_mps=SPEED, time_res_s=0.1))["error_ellipse_m"]["semi_major"], rel=0.02)


def test_reading_speeds_from_piecewise_constant_positions():
    t = np.arange(12) * 0.1
    x = np.repeat([0.0, 5.0, 10.0, 20.0], 3)  # one position per 0.3 s block: 5, 5, then 10 m a block
    y = np.zeros(12)
    v = reading_speeds(t, x, y)
    # between positions 5, 5 and 10 m apart: 5/0.3 at the first (one-sided), the means inside, 10/0.3 at the last
    assert np.allclose(v, np.repeat([5 / 0.3, 5 / 0.3, 7.5 / 0.3, 10 / 0.3], 3))
    assert np.all(reading_speeds(t, np.zeros(12), y) == 0.0)


def test_readings_partly_without_a_position_are_refused_with_the_share(drive):
    t, x, y, p = drive
    lat, lon = ORIGIN.to_geodetic(x, y)
    lat, lon = lat.copy(), lon.copy()
    lat[t > 0.6 * t[-1]] = np.nan  # the last 40 % of the drive without a fix
    n_pos = int(np.isfinite(lat).sum())
    out = track_locator()(track(t, lat, lon, p))
    assert out["status"] == "not_localizable" and out["method"] == "strongest_reading"
    share = n_pos / t.size
    assert 0.55 < share < 0.65
    assert f"only {n_pos} of {t.size} readings ({100 * share:.0f} %, less than 80 %) have a position" in out["reason"]
    # with 90 % of them the same track is located
    lat2, lon2 = ORIGIN.to_geodetic(x, y)
    lat2[t > 0.9 * t[-1]] = np.nan
    assert track_locator()(track(t, lat2, lon2, p))["status"] == "located"


def test_a_100_s_clock_offset_is_refused_and_reported(drive):
    """The receiver's clock 100 s ahead of the GPS clock: each reading was paired with where the
    vehicle was 100 s after it was taken. Given the GPS track, the locator finds the offset."""
    t, x, y, p = drive
    lat, lon = route(t + 100.0)  # paired by the wrong clock: every reading has a (wrong) fix
    assert np.isfinite(lat).all()
    out = track_locator(positions=route)(track(t + 100.0, lat, lon, p))
    assert out["status"] == "not_localizable"
    assert out["time_offset_s"] == pytest.approx(100.0, abs=5.0)
    assert "clock" in out["reason"] and "tolerance ±2 s" in out["reason"]
    # the same readings paired right: located, no offset
    lat0, lon0 = route(t)
    ok = track_locator(positions=route)(track(t, lat0, lon0, p))
    assert ok["status"] == "located", ok["reason"]
    assert abs(ok["time_offset_s"]) <= 2.0 and error_m(ok) < 40.0


def test_the_estimate_is_cached_for_every_s_of_readings(drive):
    t, x, y, p = drive
    lat, lon = ORIGIN.to_geodetic(x, y)
    calls = []

    def positions(ts):
        calls.append(ts.size)
        return route(ts)

    loc = track_locator(positions=positions, every_s=5.0)
    tr = track(t[:400], lat[:400], lon[:400], p[:400])
    first = loc(tr)
    n = len(calls)
    assert n > 0
    assert n == 1  # the GPS track is sampled once per scan
    tr.readings += track(t[400:420], lat[400:420], lon[400:420], p[400:420]).readings  # 2 s more
    assert loc(tr) is first and len(calls) == n  # no new estimate within every_s
    tr.readings += track(t[420:500], lat[420:500], lon[420:500], p[420:500]).readings  # 10 s in all, 25 % more
    again = loc(tr)
    assert again is not first and len(calls) == n  # re-estimated with the last scan's offset
    tr.readings += track(t[500:700], lat[500:700], lon[500:700], p[500:700]).readings  # 75 % more than at the scan
    loc(tr)
    assert len(calls) == n + 1  # scanned again


class _Bearings:
    """``bearings(t0_s, t1_s, f_lo_hz, f_hi_hz)`` over a fixed set, recording the queries."""

    def __init__(self, recs):
        from detector.sources.bearings import bearings_from_records

        self.all = bearings_from_records(recs)
        self.queries = []

    def __call__(self, t0, t1, f_lo, f_hi):
        from detector.localization import select_bearings

        self.queries.append((t0, t1, f_lo, f_hi))
        m = select_bearings(self.all.time_s, self.all.frequency_hz, t0_s=t0, t1_s=t1, f_lo_hz=f_lo, f_hi_hz=f_hi)
        return self.all.select(m) if m.any() else None


def _toward_tx(points, times, freq):
    out = []
    for (px, py), t in zip(points, times):
        lat, lon = ORIGIN.to_geodetic(np.array([px]), np.array([py]))
        out.append({"time": t, "lat": float(lat[0]), "lon": float(lon[0]), "frequency": freq,
                    "bearing_deg": float(np.degrees(np.arctan2(TX[0] - px, TX[1] - py)) % 360.0)})
    return out


def test_bearings_of_the_tracks_band_and_span_are_fused(drive):
    t, x, y, p = drive
    lat, lon = ORIGIN.to_geodetic(x, y)
    tr = track(t, lat, lon, p)
    tr.center_hz, tr.bandwidth_hz = 446.08e6, 10e3
    corners = [(-150.0, -150.0), (150.0, 150.0), (150.0, -150.0)]
    mid = float(t[t.size // 2])
    # at 446.10 MHz (20 kHz off: beyond 5 kHz + the 12.5 kHz tolerance) and an hour after the track: not its own
    other = _Bearings(_toward_tx(corners[:2], [mid, mid], 446.10e6) + _toward_tx(corners[2:], [t[-1] + 3600.0], 446.08e6))
    plain = track_locator(bearings=other)(tr)
    assert plain["method"] == "gls" and plain["n_bearings"] == 0
    t0, t1, f_lo, f_hi = other.queries[-1]
    assert (t0, t1) == pytest.approx((t[0] - 5.0, t[-1] + 5.0)) and (f_lo, f_hi) == pytest.approx((446.0625e6, 446.0975e6))
    # three bearings on the track's frequency during it, pointing at the transmitter
    own = _Bearings(_toward_tx(corners, [mid, mid + 1.0, mid + 2.0], 446.0825e6))
    fused = track_locator(bearings=own)(tr)
    assert fused["status"] == "located" and fused["method"] == "gls+bearings" and fused["n_bearings"] == 3
    assert fused["crlb_rmse_m"] < plain["crlb_rmse_m"] and error_m(fused) < 15.0
    # without a bearings source the result has no n_bearings at all (as before)
    assert "n_bearings" not in track_locator()(tr)


def test_a_new_bearing_re_estimates_the_track_within_every_s(drive):
    t, x, y, p = drive
    lat, lon = ORIGIN.to_geodetic(x, y)
    tr = track(t[:400], lat[:400], lon[:400], p[:400])
    tr.center_hz, tr.bandwidth_hz = 446.08e6, 10e3
    src = _Bearings(_toward_tx([(-150.0, -150.0)], [float(t[100])], 446.08e6))
    loc = track_locator(bearings=src, every_s=60.0)
    first = loc(tr)
    assert first["n_bearings"] == 1 and loc(tr) is first  # cached: nothing new
    src.all = _Bearings(_toward_tx([(-150.0, -150.0), (150.0, 150.0)], [float(t[100]), float(t[200])], 446.08e6)).all
    again = loc(tr)
    assert again is not first and again["n_bearings"] == 2
