"""The correlated-shadowing benchmark of THEORY §2.2 (SCENES.md §3.1, §3.4, §3.5), shared by
``test_monte_carlo.py``, ``test_gls.py`` and ``bench/localization.py``.

Geometry: the vehicle drives the inner loop (−120,−90) → (120,−90) → (120,90) → (−120,90) → back,
one reading per 2 m of travel (420 readings); the transmitter is at (8, −6) m (exam hall), 0.5 m
below the antenna. Propagation: n = 3, σ = 6 dB shadowing drawn as a Gaussian random field on a 5 m
grid with exponential correlation d_c = 30 m (bilinear between grid nodes, so the same place always
has the same shadowing), plus 1 dB independent residual fast fading per reading. The estimators get
the default model (σ 6 dB, d_c 30 m, n estimated or 3).

The bound is the CRLB with P0 unknown for exactly this generator: Σ = W·C·Wᵀ + 1 dB²·I with C the
grid covariance and W the interpolation weights (THEORY §2.2: "the generator must use the same Σ
that the bound uses"). THEORY's 27.5 m is the same bound for 104 points 8 m apart.
"""

from __future__ import annotations

import numpy as np

from detector.localization import PathLossModel, bin_readings, locate_enu, rss_crlb, rss_fisher
from detector.localization._gls import bayesian_crlb, gls_problem
from detector.localization._estimators import RssProblem

TARGET = np.array([8.0, -6.0])
EXPONENT = 3.0
SIGMA_DB = 6.0
DC_M = 30.0
FAST_DB = 1.0
HEIGHT_M = 0.5
P0_DB = -30.0
SEED = 20240505
#: building footprint + 15 m (SCENES.md §3.1): x ∈ [−45, 45], y ∈ [−30, 30]
BOX = (45.0, 30.0)


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


class Scene:
    """The readings' places, the exact covariance and the draws (seeded) for one transmitter."""

    def __init__(self, target=TARGET, step_m: float = 2.0) -> None:
        self.target = np.asarray(target, float)
        self.pts = inner_loop(step_m)
        self.W, self.L, C = grid_field(self.pts, SIGMA_DB, DC_M)
        self.cov = self.W @ C @ self.W.T + FAST_DB ** 2 * np.eye(len(self.pts))
        d = np.sqrt(np.sum((self.pts - self.target) ** 2, axis=1) + HEIGHT_M ** 2)
        self.mean = P0_DB - 10 * EXPONENT * np.log10(d)

    def crlb(self, unknown_exponent: bool = False) -> np.ndarray:
        return rss_crlb(tuple(self.target), self.pts[:, 0], self.pts[:, 1], self.cov, EXPONENT,
                        height_m=HEIGHT_M, unknown_exponent=unknown_exponent)

    def bcrb(self, method: str, model: PathLossModel | None = None) -> np.ndarray:
        """The Bayesian bound with the position prior ``method`` uses (the exact Σ)."""
        model = model or PathLossModel()
        F = rss_fisher(tuple(self.target), self.pts[:, 0], self.pts[:, 1], self.cov, EXPONENT, height_m=HEIGHT_M)
        cells = bin_readings(self.pts[:, 0], self.pts[:, 1], self.mean, model.cell_size_m)
        prob = gls_problem(cells, model) if method == "gls" else RssProblem(cells, model)
        return bayesian_crlb(F, prob.prior_fisher())

    def draws(self, n_draws: int, seed: int = SEED) -> np.ndarray:
        """Readings (dB), shape (N, n_draws)."""
        rng = np.random.default_rng(seed)
        shadow = (self.W @ self.L) @ rng.standard_normal((self.L.shape[0], n_draws))
        fast = FAST_DB * rng.standard_normal((len(self.pts), n_draws))
        return self.mean[:, None] + shadow + fast


def run(method: str, n_draws: int, seed: int = SEED, target=TARGET, scene: Scene | None = None) -> dict:
    """Locate every draw with ``method`` and score it with what it reports (a coarse answer, status
    not_localizable, counts with its position and its circle)."""
    sc = scene if scene is not None else Scene(target)
    Y = sc.draws(n_draws, seed)
    model = PathLossModel()
    sols = [locate_enu(sc.pts[:, 0], sc.pts[:, 1], Y[:, k], model=model, method=method) for k in range(n_draws)]
    est = np.array([[s.x, s.y] for s in sols])
    err = est - sc.target
    inside = [(e @ np.linalg.solve(s.cov_xy, e) <= 5.991) if s.status == "located" else (np.hypot(*e) <= s.radius_m)
              for e, s in zip(err, sols)]
    crlb_xy = sc.crlb()
    crlb = float(np.sqrt(np.trace(crlb_xy)))
    rmse = float(np.sqrt(np.mean(np.sum(err ** 2, axis=1))))
    return {
        "method": method, "draws": n_draws, "seed": seed, "target": tuple(float(v) for v in sc.target),
        "crlb_rmse": crlb,
        "crlb_xy": crlb_xy,
        "crlb_n_rmse": float(np.sqrt(np.trace(sc.crlb(True)))),
        "bcrb_rmse": float(np.sqrt(np.trace(sc.bcrb(method)))),
        "rmse": rmse,
        "ratio": rmse / crlb,
        "median_error": float(np.median(np.hypot(err[:, 0], err[:, 1]))),
        "p99_error": float(np.percentile(np.hypot(err[:, 0], err[:, 1]), 99)),
        "coverage": float(np.mean(inside)),
        "hit": float(np.mean((np.abs(est[:, 0]) <= BOX[0]) & (np.abs(est[:, 1]) <= BOX[1]))),
        "located": float(np.mean([s.status == "located" for s in sols])),
        "reported_crlb": float(np.median([s.crlb_rmse_m for s in sols if s.status == "located"])),
        "sols": sols,
    }
