"""Log-distance path-loss model, shadowing covariance, reading thinning, and the Cramér–Rao bound.

Model (THEORY.md §2.1–2.2), in dB, for a transmitter at p and readings at r_i:

    y_i = P0 − 10·n·log10(d_i) + X_i,   d_i = sqrt(|p − r_i|² + h²),

with X ~ N(0, Σ), Σ_ij = σ²·exp(−|r_i − r_j|/d_c) (Gudmundson) plus independent measurement noise
on the diagonal. P0 (received power at 1 m) is always unknown; n may be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LN10 = np.log(10.0)


@dataclass(frozen=True)
class PathLossModel:
    """Parameters of the propagation model the estimators assume.

    Attributes
    ----------
    exponent : float or None
        Path-loss exponent n; None estimates it (falling back to ``default_exponent`` when the
        readings cannot determine it to ``max_exponent_sd``).
    shadowing_db : float
        Shadowing standard deviation σ (dB).
    decorrelation_m : float
        Shadowing decorrelation distance d_c (m); 0 treats readings as independent.
    measurement_db : float
        Per-reading noise on top of shadowing (residual fast fading, quantisation), independent.
    default_exponent : float
        n used when it is not given and cannot be estimated.
    exponent_bounds : (float, float)
        Range allowed for an estimated n.
    max_exponent_sd : float
        An estimated n is used only if its standard error is at most this.
    height_m : float
        Height difference between transmitter and antenna, added in quadrature to the horizontal
        distance (keeps the model finite when the route passes over the transmitter).
    cell_m : float or None
        Size of the square cells readings are averaged in (dB) before fitting; None → d_c/3 (≥ 2 m).
    max_cells : int
        When the readings fill more cells than this (long drives, GPS scatter), the cells are made
        1.5× larger until they fit: the fit's cost grows with the cube of the cell count, and
        cells well inside d_c carry nearly the same shadowing anyway.
    position_prior_m : float or None
        Standard deviation (per axis, m) of a Gaussian prior on the transmitter position centred on
        the readings' centre; None → the readings' RMS distance from their centre (≥ 50 m); 0 → no
        prior. The vehicle drives around the place it monitors, so the transmitter is near the
        route: the prior removes the "distant transmitter" solutions that fit correlated shadowing
        almost as well as the true one (a plane instead of a bowl), and costs ≈ nothing near the
        route (it adds ~1/σ_p² of information against ~1/CRLB²).
    """

    exponent: float | None = None
    shadowing_db: float = 6.0
    decorrelation_m: float = 30.0
    measurement_db: float = 2.0
    default_exponent: float = 3.0
    exponent_bounds: tuple[float, float] = (1.5, 6.0)
    max_exponent_sd: float = 0.5
    height_m: float = 1.0
    cell_m: float | None = None
    max_cells: int = 300
    position_prior_m: float | None = None

    def __post_init__(self) -> None:
        if self.exponent is not None and not (0 < self.exponent <= 10):
            raise ValueError(f"path-loss exponent must be in (0, 10], got {self.exponent}")
        if not self.shadowing_db > 0:
            raise ValueError(f"shadowing must be > 0 dB, got {self.shadowing_db}")
        if not self.decorrelation_m >= 0:
            raise ValueError(f"decorrelation distance must be ≥ 0 m, got {self.decorrelation_m}")
        if not self.measurement_db >= 0:
            raise ValueError(f"measurement noise must be ≥ 0 dB, got {self.measurement_db}")

    @property
    def cell_size_m(self) -> float:
        if self.cell_m is not None:
            return float(self.cell_m)
        return max(self.decorrelation_m / 3.0, 2.0) if self.decorrelation_m > 0 else 1.0


@dataclass(frozen=True)
class Cells:
    """Readings averaged per square cell: mean position, mean power (dB), count, strongest raw reading."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    power_db: NDArray[np.float64]
    count: NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.x.size)


def bin_readings(x: NDArray, y: NDArray, power_db: NDArray, cell_m: float) -> Cells:
    """Average readings (in dB) in square cells of ``cell_m`` metres.

    Readings metres apart share nearly the same shadowing (THEORY §2.1): averaging them per cell
    removes the fast fading and the duplicates of a parked or slow vehicle, and leaves one value per
    place; the remaining correlation between cells is modelled by :func:`shadowing_cov`.
    """
    ix = np.floor(np.asarray(x) / cell_m).astype(np.int64)
    iy = np.floor(np.asarray(y) / cell_m).astype(np.int64)
    keys = np.stack([ix, iy], axis=1)
    _, inv, count = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    k = count.size

    def mean(v):
        return np.bincount(inv, weights=v, minlength=k) / count

    return Cells(mean(np.asarray(x, float)), mean(np.asarray(y, float)), mean(np.asarray(power_db, float)), count.astype(np.int64))


def shadowing_cov(x: NDArray, y: NDArray, model: PathLossModel, counts: NDArray | None = None) -> NDArray[np.float64]:
    """Covariance (dB²) of (cell-averaged) readings at ``(x, y)`` under ``model``.

    Σ_ij = σ²·exp(−|r_i − r_j|/d_c) + δ_ij·σ_m²/m_i, with m_i readings averaged at place i. With
    d_c = 0 all readings are independent: Σ_ii = (σ² + σ_m²)/m_i.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    m = np.ones(x.size) if counts is None else np.asarray(counts, float)
    s2, w2 = model.shadowing_db ** 2, model.measurement_db ** 2
    if model.decorrelation_m <= 0:
        return np.diag((s2 + w2) / m)
    dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    cov = s2 * np.exp(-dist / model.decorrelation_m)
    cov[np.diag_indices_from(cov)] += w2 / m
    return cov


def distances(px: NDArray | float, py: NDArray | float, rx: NDArray, ry: NDArray, height_m: float) -> NDArray:
    return np.sqrt((np.asarray(px)[..., None] - rx) ** 2 + (np.asarray(py)[..., None] - ry) ** 2 + height_m ** 2)


def rss_jacobian(px: float, py: float, rx: NDArray, ry: NDArray, exponent: float, height_m: float,
                 unknown_exponent: bool) -> NDArray[np.float64]:
    """∂μ/∂θ for θ = [x, y, P0(, n)] with μ_i = P0 − 10·n·log10(d_i); shape (N, 3 or 4)."""
    dx, dy = px - rx, py - ry
    d2 = dx * dx + dy * dy + height_m ** 2
    k = -10.0 * exponent / LN10
    cols = [k * dx / d2, k * dy / d2, np.ones_like(dx)]
    if unknown_exponent:
        cols.append(-5.0 * np.log10(d2))
    return np.stack(cols, axis=1)


def bearing_fisher(px: float, py: float, bx: NDArray, by: NDArray, sigma_rad: NDArray) -> NDArray[np.float64]:
    """Fisher information (2×2, position) of bearings taken at ``(bx, by)`` (THEORY §2.4)."""
    dx, dy = px - bx, py - by
    r2 = np.maximum(dx * dx + dy * dy, 1e-6)
    # bearing β = atan2(dx, dy) (clockwise from north): ∂β/∂x = dy/r², ∂β/∂y = −dx/r²
    g = np.stack([dy / r2, -dx / r2], axis=1) / np.asarray(sigma_rad)[:, None]
    return g.T @ g


def rss_fisher(target_xy: tuple[float, float], rx: NDArray, ry: NDArray, cov: NDArray, exponent: float = 3.0, *,
               unknown_exponent: bool = False, height_m: float = 1.0) -> NDArray[np.float64]:
    """Fisher information F = Jᵀ Σ⁻¹ J for θ = [x, y, P0(, n)] (THEORY §2.2)."""
    J = rss_jacobian(float(target_xy[0]), float(target_xy[1]), np.asarray(rx, float), np.asarray(ry, float),
                     exponent, height_m, unknown_exponent)
    c = np.linalg.cholesky(np.asarray(cov, float))
    Jw = _solve_lower(c, J)
    return Jw.T @ Jw


def rss_crlb(target_xy: tuple[float, float], rx: NDArray, ry: NDArray, cov: NDArray, exponent: float = 3.0, *,
             unknown_exponent: bool = False, height_m: float = 1.0,
             extra_fisher_xy: NDArray | None = None) -> NDArray[np.float64]:
    """Cramér–Rao bound (2×2 covariance of x, y in m²) with P0 (and optionally n) unknown.

    ``cov`` is the readings' covariance (e.g. :func:`shadowing_cov`, or the exact covariance a
    simulator used); ``extra_fisher_xy`` adds independent position information (bearings). Returns
    an all-inf matrix when the information is singular (e.g. every reading at one spot).
    """
    F = rss_fisher(target_xy, rx, ry, cov, exponent, unknown_exponent=unknown_exponent, height_m=height_m)
    if extra_fisher_xy is not None:
        F = F.copy()
        F[:2, :2] += extra_fisher_xy
    return crlb_from_fisher(F)


def crlb_from_fisher(F: NDArray) -> NDArray[np.float64]:
    """[F⁻¹]_{xy} (the Schur complement over the nuisance parameters), inf when F is singular."""
    try:
        w = np.linalg.eigvalsh(F)
        if w[0] <= w[-1] * 1e-12 or w[0] <= 0:
            raise np.linalg.LinAlgError
        C = np.linalg.inv(F)[:2, :2]
    except np.linalg.LinAlgError:
        return np.full((2, 2), np.inf)
    return 0.5 * (C + C.T)


def _solve_lower(c: NDArray, b: NDArray) -> NDArray:
    from scipy.linalg import solve_triangular

    return solve_triangular(c, b, lower=True, check_finite=False)
