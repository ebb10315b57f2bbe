"""Localization: degenerate geometries, output shape, ellipse conventions, bearings, exponent."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detector.localization import (
    Bearings,
    BearingsEnu,
    LocalFrame,
    LocationEstimate,
    PathLossModel,
    cep50_from_cov,
    ellipse_from_cov,
    estimate_from_enu,
    locate,
    locate_enu,
    nearest_building,
    rss_crlb,
    shadowing_cov,
)

TARGET = np.array([8.0, -6.0])
ORIGIN = LocalFrame(50.0, 10.0)  # SCENES.md §3.1
# Exam building (SCENES.md §3.1): SW 49.999865 N 9.999580 E, NE 50.000135 N 10.000420 E.
BUILDING = [(49.999865, 9.999580), (49.999865, 10.000420), (50.000135, 10.000420), (50.000135, 9.999580)]


def power(x, y, rng, sigma=6.0, n=3.0, p0=-30.0, target=TARGET, dc=30.0):
    """Readings with shadowing correlated along the given points (exponential, d_c)."""
    d = np.sqrt((x - target[0]) ** 2 + (y - target[1]) ** 2 + 0.25)
    model = PathLossModel(shadowing_db=sigma, decorrelation_m=dc, measurement_db=1.0)
    cov = shadowing_cov(x, y, model)
    return p0 - 10 * n * np.log10(d) + np.linalg.cholesky(cov + 1e-9 * np.eye(x.size)) @ rng.standard_normal(x.size)


def loop(step=2.0):
    wp = np.array([(-120, -90), (120, -90), (120, 90), (-120, 90), (-120, -90)], float)
    parts = []
    for a, b in zip(wp[:-1], wp[1:]):
        k = int(round(np.linalg.norm(b - a) / step))
        parts.append(a + (b - a) * (np.arange(k) / k)[:, None])
    p = np.concatenate(parts)
    return p[:, 0], p[:, 1]


# ------------------------------------------------------------------------------------ degenerate

def test_parked_vehicle_is_not_localizable():
    rng = np.random.default_rng(1)
    x = -120 + rng.normal(0, 1.5, 600)  # P_park = (−120, 0), GPS noise
    y = rng.normal(0, 1.5, 600)
    p = -80 + rng.normal(0, 2, 600)
    sol = locate_enu(x, y, p)
    assert sol.status == "not_localizable"
    assert "parked" in sol.reason
    assert sol.method == "strongest_reading"
    assert sol.radius_m >= 100
    assert math.hypot(sol.x + 120, sol.y) < 10  # the coarse answer is where the vehicle is
    est = estimate_from_enu(sol, ORIGIN)
    d = est.to_dict()
    assert d["status"] == "not_localizable" and d["radius_m"] >= 100
    assert d["error_ellipse_m"]["semi_major"] == d["error_ellipse_m"]["semi_minor"] == d["radius_m"]
    assert d["crlb_rmse_m"] is None  # one spot: no bound
    json.dumps(d)


def test_three_readings_are_not_localizable():
    sol = locate_enu([-100.0, 0.0, 100.0], [-90.0, 90.0, -90.0], [-90.0, -80.0, -95.0])
    assert sol.status == "not_localizable"
    assert "too few readings" in sol.reason and "3" in sol.reason
    assert (sol.x, sol.y) == (0.0, 90.0)  # the strongest reading


def test_short_route_with_few_independent_places():
    x = np.linspace(0, 70, 200)  # 70 m of road: 3 places 30 m apart
    y = np.zeros_like(x)
    sol = locate_enu(x, y, power(x, y, np.random.default_rng(2)))
    assert sol.status == "not_localizable"
    assert "too few independent" in sol.reason


@pytest.mark.parametrize("seed", range(5))
def test_single_straight_street_states_mirror_ambiguity(seed):
    x = np.arange(-200.0, 200.0, 2.0)
    y = np.full_like(x, -90.0) + np.random.default_rng(seed).normal(0, 1.5, x.size)
    sol = locate_enu(x, y, power(x, y, np.random.default_rng(100 + seed)))
    assert sol.status == "not_localizable"
    assert "collinear" in sol.reason and "either side" in sol.reason
    # The coarse circle (strongest reading + radius) holds the transmitter.
    assert math.hypot(sol.x - TARGET[0], sol.y - TARGET[1]) <= sol.radius_m


@pytest.mark.parametrize("seed", range(6))
def test_distant_transmitter_is_never_a_confident_near_point(seed):
    """The transmitter 2.5 km from the loop: with σ 6 dB correlated over 30 m a plane fits the loop
    nearly as well as a bowl, so a distant transmitter cannot be told from a near one by RSS alone.
    The answer must say so: not localizable, or located under the stated near-the-route assumption."""
    x, y = loop()
    p = power(x, y, np.random.default_rng(seed), target=np.array([2000.0, 1500.0]))
    sol = locate_enu(x, y, p)
    assert sol.status == "not_localizable" or "distant transmitter" in sol.reason


def test_weak_geometry_bound():
    """A short arc far from the transmitter's side: the bound at the estimate exceeds the limit."""
    from detector.localization import Limits

    x, y = loop()
    p = power(x, y, np.random.default_rng(3))
    sol = locate_enu(x, y, p, limits=Limits(max_crlb_m=5.0))
    assert sol.status == "not_localizable" and sol.reason.startswith("weak geometry")
    assert sol.crlb_rmse_m > 5.0 and sol.radius_m >= 100


def test_nan_readings_dropped_and_all_nan_refused():
    x, y = loop()
    p = power(x, y, np.random.default_rng(4))
    p[::7] = np.nan
    sol = locate_enu(x, y, p)
    assert sol.n_readings == np.isfinite(p).sum()
    with pytest.raises(ValueError, match="no finite readings"):
        locate_enu(x, y, np.full_like(x, np.nan))


# ------------------------------------------------------------------------------- good geometry

@pytest.mark.parametrize("method", ["nls", "grid", "centroid"])
def test_methods_on_the_loop(method):
    x, y = loop()
    rng = np.random.default_rng(11)
    p = power(x, y, rng, sigma=2.0)  # mild shadowing: every method lands near the truth
    sol = locate_enu(x, y, p, method=method)
    assert sol.status == "located"
    assert sol.method == method
    err = math.hypot(sol.x - TARGET[0], sol.y - TARGET[1])
    assert err < (40 if method == "centroid" else 15)
    e = np.array([sol.x, sol.y]) - TARGET
    if method != "centroid":
        assert e @ np.linalg.solve(sol.cov_xy, e) <= 13.8  # inside the 99.9 % region


def test_geodetic_entry_point_and_shape():
    x, y = loop()
    p = power(x, y, np.random.default_rng(5))
    lat, lon = ORIGIN.to_geodetic(x, y)
    est = locate(lat, lon, p)
    assert isinstance(est, LocationEstimate)
    d = est.to_dict()
    assert set(d) == {"lat", "lon", "error_ellipse_m", "cep50_m", "crlb_rmse_m", "status", "method", "n_readings",
                      "reason", "path_loss_exponent", "p0_db", "area_m2", "radius_m"}
    assert set(d["error_ellipse_m"]) == {"semi_major", "semi_minor", "angle_deg"}
    assert d["status"] == "located" and d["radius_m"] is None
    assert d["reason"] is None or "distant transmitter" in d["reason"]  # the near-the-route caveat
    assert d["n_readings"] == x.size
    assert 0 <= d["error_ellipse_m"]["angle_deg"] < 180
    assert d["error_ellipse_m"]["semi_major"] >= d["error_ellipse_m"]["semi_minor"] > 0
    assert d["area_m2"] == pytest.approx(math.pi * d["error_ellipse_m"]["semi_major"] * d["error_ellipse_m"]["semi_minor"], rel=1e-3)
    assert 20 < d["crlb_rmse_m"] < 40
    json.dumps(d)
    gj = est.to_geojson()
    assert gj["type"] == "Feature" and gj["geometry"]["type"] == "Point"
    assert gj["geometry"]["coordinates"] == [d["lon"], d["lat"]]
    assert gj["properties"]["status"] == "located"
    gj2 = est.to_geojson(ellipse=True)
    poly = gj2["geometry"]["geometries"][1]
    assert poly["type"] == "Polygon" and poly["coordinates"][0][0] == poly["coordinates"][0][-1]
    # The estimate sits in the exam building (+ its 95 % region) for this draw.
    match = nearest_building(est, [BUILDING])
    assert match.index == 0 and match.distance_m < 40


# --------------------------------------------------------------------------------- conventions

def test_ellipse_angle_is_bearing_of_major_axis():
    e = ellipse_from_cov(np.diag([400.0, 100.0]))  # long east–west
    assert e.angle_deg == pytest.approx(90.0)
    assert e.semi_major == pytest.approx(math.sqrt(5.991 * 400), rel=1e-3)
    assert e.semi_minor == pytest.approx(math.sqrt(5.991 * 100), rel=1e-3)
    assert ellipse_from_cov(np.diag([100.0, 400.0])).angle_deg == pytest.approx(0.0)
    # major axis along NE–SW: bearing 45°
    c = np.array([[250.0, 150.0], [150.0, 250.0]])
    assert ellipse_from_cov(c).angle_deg == pytest.approx(45.0)
    c = np.array([[250.0, -150.0], [-150.0, 250.0]])
    assert ellipse_from_cov(c).angle_deg == pytest.approx(135.0)


def test_cep50():
    assert cep50_from_cov(np.eye(2) * 100.0) == pytest.approx(1.17741 * 10, rel=1e-3)
    # very elongated: CEP50 → 0.6745·σ1 (a 1-D Gaussian's median |x|)
    assert cep50_from_cov(np.diag([100.0, 1e-6])) == pytest.approx(0.6745 * 10, rel=1e-2)


def test_local_frame_matches_scene_coordinates():
    """SCENES.md §3.5 inner-loop corners (spherical formulas there, < 1 m from WGS84 within 2 km)."""
    corners = {(-120.0, -90.0): (49.999191, 9.998321), (120.0, -90.0): (49.999191, 10.001679),
               (120.0, 90.0): (50.000809, 10.001679), (-120.0, 90.0): (50.000809, 9.998321)}
    lat = np.array([v[0] for v in corners.values()])
    lon = np.array([v[1] for v in corners.values()])
    x, y = ORIGIN.to_enu(lat, lon)
    want = np.array(list(corners))
    assert np.all(np.hypot(x - want[:, 0], y - want[:, 1]) < 1.0)
    la, lo = ORIGIN.to_geodetic(x, y)
    assert np.allclose(la, lat, atol=1e-9) and np.allclose(lo, lon, atol=1e-9)


def test_nearest_building_inside_and_outside():
    inside = LocationEstimate(49.999946, 10.000112, ellipse_from_cov(np.eye(2)), 1.0, 1.0, "located", "nls", 10)
    m = nearest_building(inside, [BUILDING])
    assert m.inside and m.distance_m == 0.0
    lat, lon = ORIGIN.to_geodetic(np.array([0.0]), np.array([100.0]))  # 85 m north of the north wall
    north = LocationEstimate(float(lat[0]), float(lon[0]), ellipse_from_cov(np.eye(2)), 1.0, 1.0, "located", "nls", 10)
    other = [(50.0012, 10.0), (50.0012, 10.0002), (50.0014, 10.0002), (50.0014, 10.0)]
    m = nearest_building(north, [BUILDING, other])
    assert not m.inside and m.index == 1
    m = nearest_building(north, [BUILDING])
    assert m.distance_m == pytest.approx(85.0, abs=1.0)
    assert nearest_building(north, []) is None


def test_crlb_theory_table_iid_and_correlated():
    """THEORY §2.2 (inner loop, 104 points 8 m apart, σ_total = √37 dB): 10.6 m i.i.d., ≈ 27.5 m at d_c 30 m."""
    x, y = loop(8.0)
    iid = rss_crlb(TARGET, x, y, np.eye(x.size) * 37.0, 3.0, height_m=0.0)
    assert math.sqrt(np.trace(iid)) == pytest.approx(10.6, abs=0.1)
    corr = rss_crlb(TARGET, x, y, shadowing_cov(x, y, PathLossModel(shadowing_db=math.sqrt(37.0), measurement_db=0.0)), 3.0,
                    height_m=0.0)
    assert 27.0 < math.sqrt(np.trace(corr)) < 29.0
    one_spot = rss_crlb(TARGET, np.zeros(5), np.zeros(5), np.eye(5), 3.0)
    assert np.all(np.isinf(one_spot))


# ---------------------------------------------------------------------------- exponent, bearings

def test_exponent_estimated_when_the_readings_determine_it():
    """Readings from 5 m to 400 m (a spiral): n = 3.5 is recovered, and the model says so."""
    t = np.linspace(0, 6 * np.pi, 600)
    r = 5 + 395 * t / t.max()
    x, y = TARGET[0] + r * np.cos(t), TARGET[1] + r * np.sin(t)
    p = power(x, y, np.random.default_rng(6), sigma=3.0, n=3.5)
    sol = locate_enu(x, y, p)
    assert sol.status == "located"
    assert sol.exponent_source == "estimated"
    assert sol.exponent == pytest.approx(3.5, abs=0.3)
    fixed = locate_enu(x, y, p, model=PathLossModel(exponent=2.5))
    assert fixed.exponent == 2.5 and fixed.exponent_source == "given"


def test_exponent_falls_back_to_default_on_the_loop():
    x, y = loop()
    sol = locate_enu(x, y, power(x, y, np.random.default_rng(7)))
    assert sol.exponent_source == "default" and sol.exponent == 3.0


def _bearings(x, y, rng, sigma_deg=5.0, outlier_p=0.07):
    true = np.arctan2(TARGET[0] - x, TARGET[1] - y)
    b = true + np.radians(sigma_deg) * rng.standard_normal(x.size)
    out = rng.random(x.size) < outlier_p
    b[out] = rng.uniform(-np.pi, np.pi, out.sum())
    return BearingsEnu(x, y, b, np.full(x.size, np.radians(sigma_deg))), out


@pytest.mark.parametrize("method", ["gls", "nls"])
def test_bearings_fused_with_outliers(method):
    """52 bearings around the loop, 5° noise, 7 % outliers: fused error well under 15 m."""
    x, y = loop()
    errs = []
    for seed in range(8):
        rng = np.random.default_rng(50 + seed)
        p = power(x, y, rng)
        bx, by = loop(16.0)
        b, out = _bearings(bx, by, rng)
        sol = locate_enu(x, y, p, bearings=b, method=method)
        assert sol.status == "located" and sol.method == f"{method}+bearings"
        assert sol.n_bearing_outliers >= out.sum() - 1
        errs.append(math.hypot(sol.x - TARGET[0], sol.y - TARGET[1]))
    assert math.sqrt(np.mean(np.square(errs))) < 15.0


def test_bearings_resolve_a_single_street():
    x = np.arange(-200.0, 200.0, 2.0)
    y = np.full_like(x, -90.0)
    rng = np.random.default_rng(9)
    b, _ = _bearings(x[::10], y[::10], rng, outlier_p=0.0)
    sol = locate_enu(x, y, power(x, y, rng), bearings=b)
    assert sol.status == "located"
    assert math.hypot(sol.x - TARGET[0], sol.y - TARGET[1]) < 30


def test_bearings_in_geodetic_form():
    x, y = loop()
    rng = np.random.default_rng(10)
    p = power(x, y, rng)
    bx, by = loop(16.0)
    b, _ = _bearings(bx, by, rng, outlier_p=0.0)
    lat, lon = ORIGIN.to_geodetic(x, y)
    blat, blon = ORIGIN.to_geodetic(bx, by)
    est = locate(lat, lon, p, bearings=Bearings(blat, blon, np.degrees(b.bearing_rad), 5.0))
    assert est.method == "gls+bearings" and est.status == "located"  # gls: the default
    ex, ey = ORIGIN.to_enu(np.array([est.lat]), np.array([est.lon]))
    assert math.hypot(ex[0] - TARGET[0], ey[0] - TARGET[1]) < 15
