"""Monte Carlo of RSS localization on the inner loop of SCENES.md (issue 5, "Show").

Geometry (SCENES.md §3.1, §3.5): the vehicle drives the inner loop (−120,−90) → (120,−90) →
(120,90) → (−120,90) → back, one reading per 2 m of travel (420 readings); the transmitter is at
(8, −6) m (exam hall), 0.5 m below the antenna. Propagation (§3.4): n = 3, σ = 6 dB shadowing drawn
as a Gaussian random field on a 5 m grid with exponential correlation d_c = 30 m (bilinear between
grid nodes, so the same place always has the same shadowing), plus 1 dB independent residual fast
fading per reading. The estimator gets the default model (σ 6 dB, d_c 30 m, n estimated or 3).

The bound is the CRLB with P0 unknown for exactly this generator: Σ = W·C·Wᵀ + 1 dB²·I with C the
grid covariance and W the interpolation weights (THEORY §2.2: "the generator must use the same Σ
that the bound uses"). THEORY's 27.5 m is the same bound for 104 points 8 m apart.

Measured with this estimator (the seed below was fixed before any run): 400 draws → RMSE 37.2 m
(1.32 × CRLB 28.2 m), coverage 0.960, building hit 0.815. With 1000 draws at seeds 1 and 2: RMSE
1.26/1.28 × CRLB, coverage 0.954/0.964, building hit 0.799/0.801. The hit-rate target (≥ 0.80)
is at the edge of what RSS alone gives here: even an unbiased Gaussian estimator at the CRLB
would reach only 0.83 in this box, so another seed can fall just below 0.80.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.localization import PathLossModel, locate_enu, rss_crlb

TARGET = np.array([8.0, -6.0])
EXPONENT = 3.0
SIGMA_DB = 6.0
DC_M = 30.0
FAST_DB = 1.0
HEIGHT_M = 0.5
P0_DB = -30.0
N_DRAWS = 400
SEED = 20240505


def inner_loop(step_m: float = 2.0) -> np.ndarray:
    wp = np.array([(-120, -90), (120, -90), (120, 90), (-120, 90), (-120, -90)], float)
    parts = []
    for a, b in zip(wp[:-1], wp[1:]):
        k = int(round(np.linalg.norm(b - a) / step_m))
        parts.append(a + (b - a) * (np.arange(k) / k)[:, None])
    return np.concatenate(parts)


def grid_field(points: np.ndarray, sigma_db: float, dc_m: float, h: float = 5.0):
    """(W, L, C): bilinear weights of ``points`` on a 5 m grid covering them, the Cholesky factor and
    covariance of the field at the grid nodes (exponential correlation in distance)."""
    xs = np.arange(points[:, 0].min() - h, points[:, 0].max() + h + 0.1, h)
    ys = np.arange(points[:, 1].min() - h, points[:, 1].max() + h + 0.1, h)
    gx, gy = np.meshgrid(xs, ys)
    nodes = np.c_[gx.ravel(), gy.ravel()]
    dist = np.hypot(nodes[:, None, 0] - nodes[None, :, 0], nodes[:, None, 1] - nodes[None, :, 1])
    C = sigma_db ** 2 * np.exp(-dist / dc_m)
    L = np.linalg.cholesky(C + 1e-9 * np.eye(len(C)))
    fx = (points[:, 0] - xs[0]) / h
    fy = (points[:, 1] - ys[0]) / h
    i0 = np.minimum(np.floor(fx).astype(int), xs.size - 2)
    j0 = np.minimum(np.floor(fy).astype(int), ys.size - 2)
    tx, ty = fx - i0, fy - j0
    W = np.zeros((len(points), len(nodes)))
    rows = np.arange(len(points))
    for di, dj, w in ((0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)), (0, 1, (1 - tx) * ty), (1, 1, tx * ty)):
        np.add.at(W, (rows, (j0 + dj) * xs.size + (i0 + di)), w)
    return W, L, C


def run_monte_carlo(n_draws: int = N_DRAWS, seed: int = SEED) -> dict:
    """Draw ``n_draws`` shadowing fields, locate, and score every draw with what it reports (a coarse
    answer, status not_localizable, counts with its position and its circle)."""
    pts = inner_loop(2.0)
    W, L, C = grid_field(pts, SIGMA_DB, DC_M)
    cov_exact = W @ C @ W.T + FAST_DB ** 2 * np.eye(len(pts))
    crlb = rss_crlb(TARGET, pts[:, 0], pts[:, 1], cov_exact, EXPONENT, height_m=HEIGHT_M)
    crlb_n = rss_crlb(TARGET, pts[:, 0], pts[:, 1], cov_exact, EXPONENT, height_m=HEIGHT_M, unknown_exponent=True)
    rng = np.random.default_rng(seed)
    shadow = (W @ L) @ rng.standard_normal((L.shape[0], n_draws))
    fast = FAST_DB * rng.standard_normal((len(pts), n_draws))
    d = np.sqrt(np.sum((pts - TARGET) ** 2, axis=1) + HEIGHT_M ** 2)
    mean = P0_DB - 10 * EXPONENT * np.log10(d)
    model = PathLossModel()
    sols = [locate_enu(pts[:, 0], pts[:, 1], mean + shadow[:, k] + fast[:, k], model=model) for k in range(n_draws)]
    located = np.array([s.status == "located" for s in sols])
    est = np.array([[s.x, s.y] for s in sols])
    err = est - TARGET
    inside = [(e @ np.linalg.solve(s.cov_xy, e) <= 5.991) if s.status == "located" else (np.hypot(*e) <= s.radius_m)
              for e, s in zip(err, sols)]
    return {
        "crlb_rmse": float(np.sqrt(np.trace(crlb))),
        "crlb_n_rmse": float(np.sqrt(np.trace(crlb_n))),
        "rmse": float(np.sqrt(np.mean(np.sum(err ** 2, axis=1)))),
        "median_error": float(np.median(np.hypot(err[:, 0], err[:, 1]))),
        "coverage": float(np.mean(inside)),
        "hit": float(np.mean((np.abs(est[:, 0]) <= 45.0) & (np.abs(est[:, 1]) <= 30.0))),
        "located": float(located.mean()),
        "reported_crlb": float(np.median([s.crlb_rmse_m for s in sols if s.status == "located"])),
        "sols": sols,
    }


@pytest.fixture(scope="module")
def monte_carlo():
    return run_monte_carlo()


def test_crlb_matches_theory(monte_carlo):
    """THEORY §2.2: ≈ 27.5 m for this scene (P0 unknown, n known); n unknown adds 1–3 %."""
    assert 26.0 < monte_carlo["crlb_rmse"] < 30.0
    assert 1.0 < monte_carlo["crlb_n_rmse"] / monte_carlo["crlb_rmse"] < 1.05


def test_monte_carlo_targets(monte_carlo):
    """Issue 5 targets: RMSE ≤ 1.5 × CRLB, 95 % region coverage in [0.90, 0.98], estimate inside
    the building footprint + 15 m (x ∈ [−45, 45], y ∈ [−30, 30]) in ≥ 80 % of draws."""
    mc = monte_carlo
    print(f"\nMC {N_DRAWS} draws: RMSE {mc['rmse']:.1f} m (median {mc['median_error']:.1f} m), CRLB {mc['crlb_rmse']:.1f} m "
          f"(ratio {mc['rmse'] / mc['crlb_rmse']:.2f}), coverage {mc['coverage']:.3f}, building hit {mc['hit']:.3f}, "
          f"located {mc['located']:.3f}")
    assert mc["located"] >= 0.95
    assert mc["rmse"] <= 1.5 * mc["crlb_rmse"]
    assert 0.90 <= mc["coverage"] <= 0.98
    assert mc["hit"] >= 0.80
    # The bound reported with each estimate (model Σ, at the estimate) is close to the exact one.
    assert 0.8 * mc["crlb_rmse"] < mc["reported_crlb"] < 1.25 * mc["crlb_rmse"]
