"""Estimators in local ENU metres: grid maximum likelihood (P0 and n profiled out), robust NLS
(``scipy.optimize.least_squares``, multi-start), weighted centroid; optional bearings.

All of them work on cell-averaged readings (:func:`~detector.localization._model.bin_readings`)
with the correlated-shadowing covariance Σ, whitened by its Cholesky factor (GLS, THEORY §2.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from detector.localization._model import LN10, Cells, PathLossModel, bearing_fisher, rss_jacobian, shadowing_cov

CHI2_95 = 5.991464547107979
#: Robust loss scale in whitened units (σ = 1): residuals beyond ~3σ are down-weighted.
RSS_F_SCALE = 3.0
#: Bearing residuals (in σ_θ units) beyond this are outliers.
BEARING_OUTLIER_SIGMAS = 3.0
BEARING_F_SCALE = 2.0


@dataclass(frozen=True)
class BearingsEnu:
    """Lines of bearing taken at ``(x, y)``: ``bearing_rad`` clockwise from north, ``sigma_rad`` each."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    bearing_rad: NDArray[np.float64]
    sigma_rad: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.x.size)

    def subset(self, mask: NDArray[np.bool_]) -> "BearingsEnu":
        return BearingsEnu(self.x[mask], self.y[mask], self.bearing_rad[mask], self.sigma_rad[mask])


def _wrap(a: NDArray) -> NDArray:
    return (a + np.pi) % (2.0 * np.pi) - np.pi


@dataclass
class FitResult:
    x: float
    y: float
    p0_db: float
    exponent: float
    exponent_free: bool
    chi2: float  # Σ whitened RSS residual² at the solution
    dof: int
    fisher: NDArray[np.float64]  # of θ = [x, y, P0(, n)], bearings included
    cost: float
    success: bool


class RssProblem:
    """Whitened log-distance problem over cells (and optional bearings)."""

    def __init__(self, cells: Cells, model: PathLossModel, bearings: BearingsEnu | None = None,
                 extra_var_db2: NDArray | None = None, prior_cov_m2: NDArray | None = None,
                 loss: str = "soft_l1") -> None:
        """``extra_var_db2``: per-cell variance (dB²) added to the diagonal of the shadowing
        covariance (the power error of the readings' position uncertainty, see :func:`position_var_db2`).
        ``prior_cov_m2``: a 2×2 covariance (m²) of the Gaussian position prior centred on the
        readings' centre, replacing the isotropic one of ``model.position_prior_m``. ``loss``: the
        ``scipy.optimize.least_squares`` loss of :meth:`fit` ("soft_l1": robust; "linear": plain GLS)."""
        from scipy.linalg import cholesky, solve_triangular

        self.cells, self.model, self.loss = cells, model, loss
        self.rx, self.ry, self.y = cells.x, cells.y, cells.power_db
        self.h = model.height_m
        cov = shadowing_cov(cells.x, cells.y, model, cells.count)
        if extra_var_db2 is not None:
            cov[np.diag_indices_from(cov)] += np.asarray(extra_var_db2, float)
        self.L = cholesky(cov, lower=True, check_finite=False)
        # L⁻¹ once: whitening is then a plain matrix product (a triangular solve per residual call
        # is slower, and OpenBLAS' threaded small solves stall badly on a busy machine).
        self.Linv = solve_triangular(self.L, np.eye(self.L.shape[0]), lower=True, check_finite=False)
        self._solve = self.Linv.__matmul__
        self.yw = self._solve(self.y)
        self.uw = self._solve(np.ones_like(self.y))
        self.bearings = bearings if bearings is not None and bearings.n else None
        # Gaussian position prior (see PathLossModel.position_prior_m), as two pseudo-residuals.
        self.centre = (float(cells.x.mean()), float(cells.y.mean()))
        sp = model.position_prior_m
        if sp is None:
            rms = float(np.sqrt(np.mean((cells.x - self.centre[0]) ** 2 + (cells.y - self.centre[1]) ** 2)))
            sp = max(rms, 50.0)
        self.prior_sd = float(sp) if sp and sp > 0 and math.isfinite(sp) else None
        # prior_w: the prior's whitening matrix (cost = |prior_w·(p − centre)|²), None without a prior
        self.prior_w: NDArray | None = None if self.prior_sd is None else np.eye(2) / self.prior_sd
        if prior_cov_m2 is not None:
            self.prior_w = np.linalg.inv(np.linalg.cholesky(np.asarray(prior_cov_m2, float)))

    # ---------------------------------------------------------------- grid (profile likelihood)
    def profile(self, px: NDArray, py: NDArray, exponent: float | None,
                bounds: tuple[float, float], with_prior: bool = True) -> tuple[NDArray, NDArray, NDArray]:
        """−2·log-likelihood (up to a constant) at positions ``px, py`` (any shape) with P0 — and n
        when ``exponent`` is None — set to their best values, plus the position prior unless
        ``with_prior`` is False; returns (cost, p0, n)."""
        shape = np.shape(px)
        px = np.ravel(px)
        py = np.ravel(py)
        out_c = np.empty(px.size)
        out_p0 = np.empty(px.size)
        out_n = np.empty(px.size)
        uu = float(self.uw @ self.uw)
        yh = self.yw - self.uw * (self.uw @ self.yw) / uu
        step = max(1, int(4e6 // max(self.y.size ** 2, 1)))
        for s in range(0, px.size, step):
            sl = slice(s, s + step)
            d2 = (px[sl, None] - self.rx) ** 2 + (py[sl, None] - self.ry) ** 2 + self.h ** 2
            G = (-5.0 * np.log10(d2)).T  # (N, K): μ = P0 + n·G
            Gw = np.einsum("ij,jk->ik", self.Linv, G)  # no BLAS threads: steady on a busy machine
            ug = self.uw @ Gw
            Gh = Gw - np.outer(self.uw, ug / uu)
            gg = np.einsum("ij,ij->j", Gh, Gh)
            yg = yh @ Gh
            if exponent is None:
                n = np.clip(yg / np.maximum(gg, 1e-12), bounds[0], bounds[1])
            else:
                n = np.full(gg.shape, float(exponent))
            cost = float(yh @ yh) - 2.0 * n * yg + n * n * gg
            out_c[sl] = cost
            out_n[sl] = n
            out_p0[sl] = (self.uw @ self.yw - n * ug) / uu
        if self.bearings is not None:
            out_c += self._bearing_rho(px, py)
        if self.prior_w is not None and with_prior:
            wp = self.prior_w
            ex, ey = px - self.centre[0], py - self.centre[1]
            out_c += (wp[0, 0] * ex + wp[0, 1] * ey) ** 2 + (wp[1, 0] * ex + wp[1, 1] * ey) ** 2
        return out_c.reshape(shape), out_p0.reshape(shape), out_n.reshape(shape)

    def _bearing_rho(self, px: NDArray, py: NDArray) -> NDArray:
        b = cast(BearingsEnu, self.bearings)  # called only when there are bearings
        pred = np.arctan2(px[:, None] - b.x, py[:, None] - b.y)
        r = _wrap(pred - b.bearing_rad) / b.sigma_rad
        c = BEARING_F_SCALE
        return np.sum(c * c * np.log1p((r / c) ** 2), axis=1)

    # ----------------------------------------------------------------------------------- NLS
    def residuals(self, theta: NDArray, exponent: float | None) -> NDArray:
        x, y, p0 = theta[0], theta[1], theta[2]
        n = theta[3] if exponent is None else exponent
        d2 = (x - self.rx) ** 2 + (y - self.ry) ** 2 + self.h ** 2
        mu = p0 - 5.0 * n * np.log10(d2)
        r = self._solve(self.y - mu)
        if self.bearings is not None:
            r = np.concatenate([r, self._bearing_res(x, y)])
        if self.prior_w is not None:
            r = np.concatenate([r, self.prior_w @ np.array([x - self.centre[0], y - self.centre[1]])])
        return r

    def _bearing_res(self, x: float, y: float) -> NDArray:
        b = cast(BearingsEnu, self.bearings)  # called only when there are bearings
        return _wrap(np.arctan2(x - b.x, y - b.y) - b.bearing_rad) / b.sigma_rad

    def jacobian(self, theta: NDArray, exponent: float | None) -> NDArray:
        x, y = theta[0], theta[1]
        n = theta[3] if exponent is None else exponent
        J = -self._solve(rss_jacobian(x, y, self.rx, self.ry, n, self.h, exponent is None))
        if self.bearings is not None:
            b = self.bearings
            dx, dy = x - b.x, y - b.y
            r2 = np.maximum(dx * dx + dy * dy, 1e-6)
            Jb = np.zeros((b.n, J.shape[1]))
            Jb[:, 0] = dy / r2 / b.sigma_rad
            Jb[:, 1] = -dx / r2 / b.sigma_rad
            J = np.vstack([J, Jb])
        if self.prior_w is not None:
            Jp = np.zeros((2, J.shape[1]))
            Jp[:, :2] = self.prior_w
            J = np.vstack([J, Jp])
        return J

    def fisher(self, x: float, y: float, exponent: float, unknown_exponent: bool) -> NDArray:
        Jw = self._solve(rss_jacobian(x, y, self.rx, self.ry, exponent, self.h, unknown_exponent))
        F = Jw.T @ Jw
        if self.bearings is not None:
            F[:2, :2] += bearing_fisher(x, y, self.bearings.x, self.bearings.y, self.bearings.sigma_rad)
        return F

    def prior_fisher(self) -> NDArray:
        """Information the position prior adds (2×2); zero without a prior."""
        return self.prior_w.T @ self.prior_w if self.prior_w is not None else np.zeros((2, 2))

    def fit(self, starts: list[tuple[float, float]], exponent: float | None, bounds: tuple[float, float],
            loss: str | None = None) -> FitResult | None:
        """NLS (``loss``, default the problem's) from each start (P0, n from the profile there); the
        lowest cost wins."""
        from scipy.optimize import least_squares

        loss = loss or self.loss

        best = None
        for sx, sy in starts:
            _, p0, n = self.profile(np.array([sx]), np.array([sy]), exponent, bounds)
            theta0 = [sx, sy, float(p0[0])]
            lo = [-np.inf, -np.inf, -np.inf]
            hi = [np.inf, np.inf, np.inf]
            if exponent is None:
                theta0.append(float(np.clip(n[0], bounds[0] + 1e-3, bounds[1] - 1e-3)))
                lo.append(bounds[0])
                hi.append(bounds[1])
            f_scale = RSS_F_SCALE if self.bearings is None else BEARING_F_SCALE
            try:
                res = least_squares(self.residuals, np.array(theta0), jac=self.jacobian, args=(exponent,),
                                    bounds=(lo, hi), loss=loss, f_scale=f_scale, x_scale="jac", max_nfev=200)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if not np.all(np.isfinite(res.x)):
                continue
            if best is None or res.cost < best.cost:
                best = res
        if best is None:
            return None
        th = best.x
        n = float(th[3]) if exponent is None else float(exponent)
        r = self.residuals(th, exponent)[: self.y.size]
        F = self.fisher(float(th[0]), float(th[1]), n, exponent is None)
        return FitResult(float(th[0]), float(th[1]), float(th[2]), n, exponent is None, float(r @ r),
                         int(self.y.size - th.size), F, float(best.cost), bool(best.success))


def search_grid(cells: Cells, n_side: int = 81) -> tuple[NDArray, NDArray, float]:
    """A square grid over the readings' extent plus a margin (half the extent, ≥ 50 m)."""
    x0, x1 = float(cells.x.min()), float(cells.x.max())
    y0, y1 = float(cells.y.min()), float(cells.y.max())
    span = max(x1 - x0, y1 - y0)
    margin = max(50.0, 0.5 * span)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    half = 0.5 * span + margin
    step = 2.0 * half / (n_side - 1)
    g = np.linspace(-half, half, n_side)
    gx, gy = np.meshgrid(cx + g, cy + g)
    return gx, gy, step


def grid_minima(cost: NDArray, k: int = 3, window: int = 5) -> list[tuple[int, int]]:
    """Indices of up to ``k`` local minima of a 2-D cost, lowest first."""
    from scipy.ndimage import minimum_filter

    is_min = cost == minimum_filter(cost, size=window, mode="nearest")
    idx = np.argwhere(is_min)
    order = np.argsort(cost[is_min])
    return [cast(tuple[int, int], tuple(int(v) for v in idx[i])) for i in order[:k]]


def weighted_centroid(cells: Cells) -> tuple[float, float]:
    """Σ w·r / Σ w with w = 10^((y − y_max)/10) (THEORY §2.3 item 3): a floor baseline, biased toward
    the route (it never leaves the readings' convex hull)."""
    w = 10.0 ** ((cells.power_db - cells.power_db.max()) / 10.0)
    return float(np.sum(w * cells.x) / w.sum()), float(np.sum(w * cells.y) / w.sum())


def likelihood_region(prob: "RssProblem", x: float, y: float, exponent: float | None, bounds: tuple[float, float],
                      fisher_cov: NDArray, search: tuple[NDArray, NDArray, float], threshold: float,
                      n_side: int = 45) -> tuple[NDArray, float, float, bool]:
    """Covariance equivalent of the profile-likelihood region {p : cost(p) − min ≤ threshold}.

    The region (χ²₂ 95 % threshold: a likelihood-ratio confidence region) follows the real,
    non-elliptic shape of the likelihood, which the local Fisher information misses when the
    geometry or σ/n make the problem nonlinear. It is evaluated on a grid around the estimate (three
    Fisher ellipses wide), widened to the whole search area when it reaches the window's edge, and
    summarised by the covariance whose 95 % ellipse has the region's second moments (for a uniform
    elliptic disk of semi-axis a the variance is a²/4). Returns (cov, best_x, best_y, open) where
    (best_x, best_y) is the lowest grid point and ``open`` says the region reached the search edge.
    """
    gx_s, gy_s, step_s = search
    half_s = 0.5 * (gx_s.max() - gx_s.min())
    c_hat = float(prob.profile(np.array([x]), np.array([y]), exponent, bounds)[0][0])
    w = np.linalg.eigvalsh(fisher_cov) if np.all(np.isfinite(fisher_cov)) else np.array([np.inf, np.inf])
    half = 3.0 * math.sqrt(threshold * max(w[-1], 0.0)) if math.isfinite(w[-1]) else half_s
    half = float(np.clip(half, 5.0, half_s))
    for attempt in range(2):
        g = np.linspace(-half, half, n_side)
        gx, gy = np.meshgrid(x + g, y + g)
        if attempt == 1:
            gx, gy = gx_s, gy_s
        cost, _, _ = prob.profile(gx, gy, exponent, bounds)
        cmin = min(c_hat, float(cost.min()))
        reg = (cost - cmin) <= threshold
        step = 2.0 * half / (n_side - 1) if attempt == 0 else step_s
        edge = reg[0, :].any() or reg[-1, :].any() or reg[:, 0].any() or reg[:, -1].any()
        if not edge or attempt == 1:
            break
    i = np.unravel_index(np.argmin(cost), cost.shape)
    bx, by = float(gx[i]), float(gy[i])
    if reg.sum() < 6:  # a region a few grid steps wide: the grid cannot resolve it
        return np.asarray(fisher_cov, float), bx, by, False
    pts = np.stack([gx[reg], gy[reg]])
    cov = np.cov(pts) * (4.0 / CHI2_95) + np.eye(2) * step * step / 12.0
    return cov, bx, by, bool(edge and attempt == 1)


def distant_fit_margin(prob: "RssProblem", x: float, y: float, exponent: float | None,
                       bounds: tuple[float, float]) -> float:
    """How much worse (−2·log-likelihood, data only, no position prior) the best distant position
    fits than (x, y): the minimum over rings of 72 directions at 2, 5 and 15 route spans (at least
    300 m, 1 km, 3 km) from the readings' centre. Below χ²₂(95 %) = 5.99 the readings alone do not
    exclude a distant transmitter (with correlated shadowing a plane fits nearly as well as a bowl)."""
    cells = prob.cells
    span = max(float(np.ptp(cells.x)), float(np.ptp(cells.y)), 1.0)
    a = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    radii = (max(300.0, 2 * span), max(1000.0, 5 * span), max(3000.0, 15 * span))
    px = np.concatenate([prob.centre[0] + r * np.sin(a) for r in radii])
    py = np.concatenate([prob.centre[1] + r * np.cos(a) for r in radii])
    far, _, _ = prob.profile(px, py, exponent, bounds, with_prior=False)
    here, _, _ = prob.profile(np.array([x]), np.array([y]), exponent, bounds, with_prior=False)
    return float(far.min() - here[0])


def bearings_outliers(x: float, y: float, b: BearingsEnu, k: float = BEARING_OUTLIER_SIGMAS) -> NDArray[np.bool_]:
    r = _wrap(np.arctan2(x - b.x, y - b.y) - b.bearing_rad) / b.sigma_rad
    return np.abs(r) > k


def exponent_sd(F4: NDArray) -> float:
    try:
        C = np.linalg.inv(F4)
    except np.linalg.LinAlgError:
        return math.inf
    v = C[3, 3]
    return math.sqrt(v) if v > 0 and math.isfinite(v) else math.inf


__all__ = ["RssProblem", "BearingsEnu", "FitResult", "search_grid", "grid_minima", "weighted_centroid",
           "bearings_outliers", "exponent_sd", "likelihood_region", "distant_fit_margin", "LN10"]


def position_var_db2(x: float, y: float, rx: NDArray, ry: NDArray, pos_var_m2: NDArray, exponent: float,
                     height_m: float) -> NDArray[np.float64]:
    """Power variance (dB²) that a position error of variance ``pos_var_m2`` (m², per axis) at each
    reading ``(rx, ry)`` gives for a transmitter at ``(x, y)``: |∇μ|²·σ_pos² with
    |∇μ| = 10·n / (ln 10 · d); d² includes h² and σ_pos² (finite when the route passes over it)."""
    d2 = (x - rx) ** 2 + (y - ry) ** 2 + height_m ** 2 + pos_var_m2
    k = 10.0 * exponent / math.log(10.0)
    return k * k * pos_var_m2 / d2
