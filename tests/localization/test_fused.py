"""Received power fused with a vehicle's bearings (issue #22 item 1): the bearing variance model,
one estimate with the bound of the combination (THEORY §2.5)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from detector.localization import bearing_sigma_deg, locate_enu, rss_crlb, vehicle_bearings
from detector.localization._model import bearing_fisher
from tests._bearing_files import ORIGIN, TARGET, loop_bearings
from tests.localization._scene import Scene


def test_bearing_sigma_from_confidence_and_heading():
    s = bearing_sigma_deg([1.0, 0.25, 1.0, 0.01, np.nan], [True, True, False, True, True],
                          doa_sigma_deg=5.0, heading_sigma_deg=2.0)
    np.testing.assert_allclose(s[:3], [math.sqrt(29.0), math.sqrt(100.0 + 4.0), 5.0])
    assert np.isnan(s[3]) and np.isnan(s[4])  # below MIN_QUALITY, unknown: not used
    with pytest.raises(ValueError, match="heading_sigma_deg"):
        bearing_sigma_deg([1.0], [True], heading_sigma_deg=-1.0)


@functools.lru_cache(maxsize=None)
def _scene() -> Scene:
    return Scene(step_m=4.0)  # 210 readings 4 m apart: the field's Cholesky once (≈ 2 s)


def _fused(seed, heading_err_deg=2.0, heading_sigma_deg=2.0, conf=1.0):
    sc = _scene()
    y = sc.draws(1, seed)[:, 0]
    bx, by, heading, rel = loop_bearings(16.0, 5.0, heading_err_deg, seed=seed)
    lat, lon = ORIGIN.to_geodetic(bx, by)
    b = vehicle_bearings(lat, lon, (heading + rel) % 360.0, np.full(bx.size, conf), np.ones(bx.size, bool),
                         heading_sigma_deg=heading_sigma_deg)
    enu = b.to_enu(ORIGIN)
    return sc, enu, locate_enu(sc.pts[:, 0], sc.pts[:, 1], y, bearings=enu)


def test_fused_estimate_within_metres_of_the_truth():
    """52 bearings 16 m apart round the loop, 5° DoA noise and 2° heading error, with the RSS of
    the THEORY §2 scene: RMSE over 6 seeded draws < 6 m (bound ≈ 3 m), against ≈ 28 m from RSS alone."""
    errs = []
    for seed in range(6):
        sc, enu, sol = _fused(seed)
        assert sol.status == "located" and sol.method == "gls+bearings"
        assert sol.n_bearings == enu.n == 52
        errs.append(math.hypot(sol.x - TARGET[0], sol.y - TARGET[1]))
        assert sol.crlb_rmse_m < 4.5
    assert max(errs) < 10.0
    assert math.sqrt(np.mean(np.square(errs))) < 6.0


def test_fused_crlb_is_the_bound_of_the_combination():
    sc, enu, sol = _fused(1)
    used = enu  # no outliers in these bearings
    assert sol.n_bearing_outliers == 0
    F_b = bearing_fisher(sol.x, sol.y, used.x, used.y, used.sigma_rad)
    # the same bound evaluated with the library's pieces: RSS (model Σ of the cells) + bearings
    from detector.localization import PathLossModel, bin_readings, shadowing_cov

    model = PathLossModel()
    y = sc.draws(1, 1)[:, 0]
    cells = bin_readings(sc.pts[:, 0], sc.pts[:, 1], y, model.cell_size_m)
    cov = shadowing_cov(cells.x, cells.y, model, cells.count)
    fused = rss_crlb((sol.x, sol.y), cells.x, cells.y, cov, sol.exponent, height_m=model.height_m, extra_fisher_xy=F_b)
    rss_only = rss_crlb((sol.x, sol.y), cells.x, cells.y, cov, sol.exponent, height_m=model.height_m)
    assert sol.crlb_rmse_m == pytest.approx(math.sqrt(np.trace(fused)), rel=0.02)
    assert sol.crlb_rmse_m < 0.2 * math.sqrt(np.trace(rss_only))
    # bearings alone: THEORY §2.4 gives 2.8 m for 52 bearings at 5°; here σ = √29 ≈ 5.4° → ≈ 3 m
    assert 2.5 < math.sqrt(np.trace(np.linalg.inv(F_b))) < 3.5


def test_heading_error_and_confidence_widen_the_bound():
    _, _, base = _fused(2)
    _, _, loose = _fused(2, heading_sigma_deg=10.0)
    _, _, weak = _fused(2, conf=0.1)
    assert loose.crlb_rmse_m > 1.5 * base.crlb_rmse_m
    assert weak.crlb_rmse_m > 2.0 * base.crlb_rmse_m
    assert math.hypot(weak.x - TARGET[0], weak.y - TARGET[1]) < 25.0
