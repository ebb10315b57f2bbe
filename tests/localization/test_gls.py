"""The ``"gls"`` estimator (issue #22 item 3): GLS under correlated shadowing with the route-spread
prior, its bounds, and its figures on a seeded slice of the THEORY §2 benchmark."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector.localization import PathLossModel, bin_readings, locate_enu, shadowing_cov
from detector.localization._gls import bayesian_crlb, encloses, gls_problem, route_prior_cov
from tests.localization._scene import SEED, inner_loop, run

#: Draws of the fast slice (the full table: ``python bench/localization.py``, 400 draws).
N_FAST = 40


def test_route_prior_cov_of_the_inner_loop():
    """The loop (−120…120) × (−90…90) m, one place per 2 m: per axis the variance of the perimeter,
    x: (2·240·240²/12 + 2·180·120²)/840 = 8914 m², y: (2·180·180²/12 + 2·240·90²)/840 = 5786 m²."""
    p = inner_loop(2.0)
    c = route_prior_cov(p[:, 0], p[:, 1])
    assert c[0, 0] == pytest.approx(8914.3, rel=0.01)
    assert c[1, 1] == pytest.approx(5785.7, rel=0.01)
    assert abs(c[0, 1]) < 1.0


def test_route_prior_cov_floor_on_a_straight_street():
    x = np.linspace(0.0, 300.0, 50)
    c = route_prior_cov(x, np.zeros_like(x))
    w = np.linalg.eigvalsh(c)
    assert w[0] == pytest.approx(50.0 ** 2)
    assert w[1] == pytest.approx(np.var(x, ddof=1))
    with pytest.raises(ValueError, match="two places"):
        route_prior_cov([1.0], [2.0])


def test_bayesian_crlb_adds_the_prior_information():
    F = np.diag([1 / 400.0, 1 / 100.0, 2.0])
    prior = np.diag([1 / 400.0, 0.0])
    B = bayesian_crlb(F, prior)
    assert B[0, 0] == pytest.approx(200.0)
    assert B[1, 1] == pytest.approx(100.0)


def test_gls_problem_uses_plain_least_squares_and_the_route_prior():
    p = inner_loop(2.0)
    cells = bin_readings(p[:, 0], p[:, 1], np.zeros(len(p)), 10.0)
    prob = gls_problem(cells, PathLossModel())
    assert prob.loss == "linear"
    np.testing.assert_allclose(np.linalg.inv(prob.prior_fisher()), route_prior_cov(cells.x, cells.y), rtol=1e-9)
    iso = gls_problem(cells, PathLossModel(position_prior_m=80.0))
    np.testing.assert_allclose(iso.prior_fisher(), np.eye(2) / 80.0 ** 2)
    assert gls_problem(cells, PathLossModel(position_prior_m=0.0)).prior_fisher().sum() == 0.0


@pytest.fixture(scope="module")
def fast_slice():
    return run("gls", N_FAST, SEED)


def test_gls_figures_on_the_benchmark(fast_slice):
    """Issue #22 item 3 target on a seeded slice: RMSE ≤ 1.15 × CRLB (28.2 m, P0 unknown, n known),
    the 95 % region holding the truth in 90–98 % of draws; none refused."""
    r = fast_slice
    print(f"\ngls {N_FAST} draws seed {SEED}: RMSE {r['rmse']:.1f} m = {r['ratio']:.2f} × CRLB {r['crlb_rmse']:.1f} m "
          f"({r['rmse'] / r['bcrb_rmse']:.2f} × Bayesian bound {r['bcrb_rmse']:.1f} m), coverage {r['coverage']:.3f}")
    assert 27.0 < r["crlb_rmse"] < 29.5
    assert r["ratio"] <= 1.15
    assert 0.90 <= r["coverage"] <= 0.98
    assert r["located"] == 1.0
    assert r["p99_error"] < 80.0  # no far-field (plane-for-bowl) estimate left
    # the prior adds a few % of information: the Bayesian bound is just below the CRLB
    assert 0.93 * r["crlb_rmse"] < r["bcrb_rmse"] < r["crlb_rmse"]
    # the reported bound (model Σ, at the estimate) is near the exact one
    assert 0.8 * r["crlb_rmse"] < r["reported_crlb"] < 1.25 * r["crlb_rmse"]


def test_gls_region_is_consistent_with_its_bound(fast_slice):
    """The 95 % regions are about as large as the bound says: the median area is within a factor
    1.6 of the CRLB ellipse's (a region that ignored the correlation would be ≈ 7 × smaller)."""
    sols = fast_slice["sols"]
    crlb_area = math.pi * 5.991 * math.sqrt(np.linalg.det(fast_slice["crlb_xy"]))
    areas = [math.pi * 5.991 * math.sqrt(np.linalg.det(s.cov_xy)) for s in sols]
    assert 1 / 1.6 < np.median(areas) / crlb_area < 1.6
    assert {s.method for s in sols} == {"gls"}


def test_gls_is_selectable_and_validated():
    p = inner_loop(4.0)
    cov = shadowing_cov(p[:, 0], p[:, 1], PathLossModel(measurement_db=1.0))
    d = np.hypot(p[:, 0] - 8.0, p[:, 1] + 6.0)
    y = -30.0 - 30.0 * np.log10(d) + np.linalg.cholesky(cov) @ np.random.default_rng(3).standard_normal(len(p))
    sol = locate_enu(p[:, 0], p[:, 1], y, method="gls")
    assert sol.status == "located" and sol.method == "gls"
    assert math.hypot(sol.x - 8.0, sol.y + 6.0) < 80.0
    with pytest.raises(ValueError, match="method must be one of"):
        locate_enu(p[:, 0], p[:, 1], y, method="ols")


def test_encloses_a_loop_not_a_street_or_an_l():
    p = inner_loop(8.0)
    assert encloses(p[:, 0], p[:, 1])
    x = np.arange(-200.0, 200.0, 2.0)
    assert not encloses(x, np.full_like(x, -90.0))
    ell = np.concatenate([np.c_[np.arange(0.0, 200.0, 4.0), np.zeros(50)], np.c_[np.zeros(50), np.arange(4.0, 204.0, 4.0)]])
    assert not encloses(ell[:, 0], ell[:, 1])
    u = p[p[:, 1] < 80.0]  # the loop without its north side: a U
    assert not encloses(u[:, 0], u[:, 1])


def test_gls_problem_falls_back_to_the_radius_prior_off_a_loop():
    x = np.arange(-200.0, 200.0, 2.0)
    cells = bin_readings(x, np.full_like(x, -90.0), np.zeros_like(x), 10.0)
    prob = gls_problem(cells, PathLossModel())
    rms = math.sqrt(np.mean((cells.x - cells.x.mean()) ** 2 + (cells.y - cells.y.mean()) ** 2))
    np.testing.assert_allclose(prob.prior_fisher(), np.eye(2) / rms ** 2)
