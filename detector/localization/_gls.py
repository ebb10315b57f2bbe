"""The ``"gls"`` estimator: Gaussian GLS under correlated shadowing with a route-spread prior (MAP).

Model (THEORY §2.1–2.2): cell-averaged readings y = P0 − 10·n·log10(d) + X, X ~ N(0, Σ),
Σ_ij = σ²·exp(−|r_i − r_j|/d_c) + δ_ij·σ_m²/m_i (Gudmundson 1991, :func:`shadowing_cov`). The cost
is the exact Gaussian one, |L⁻¹(y − μ)|² with Σ = L·Lᵀ (generalised least squares, plain
``loss="linear"`` in ``scipy.optimize.least_squares``), P0 (and n) profiled out on the start grid
and refined jointly, plus a Gaussian prior on the position:

    p ~ N(c, S),   c = mean of the cell positions,   S = their covariance (eigenvalues ≥ 50² m²).

Why the prior and not the likelihood alone. With σ = 6 dB correlated over 30 m the likelihood of a
loop of readings has, besides the peak at the transmitter, a plateau toward distant positions (a
distant transmitter is a plane of power, which correlated shadowing fits almost as well as the
bowl of a near one). On the benchmark of THEORY §2 (n = 3, σ = 6 dB, d_c = 30 m, inner loop) the
global maximum of the likelihood alone (exact Σ, no prior, ±400 m) lies on that plateau, ≥ 400 m
off, in more than 10 % of draws (RMSE ≈ 7.5 × CRLB); the ``"nls"`` estimator's weak prior
(σ = the route's RMS radius, isotropic) leaves a 2 % tail 120–220 m off (RMSE ≈ 1.3 × CRLB; 1.01 ×
without the tail). For a route that encloses its centre (:func:`encloses`) the route's covariance
says what the loop says: the transmitter is in the area the vehicle drives around (for a loop,
1.5–2 × the variance of a uniform position inside it). It adds ≈ 5 % of the readings' information
(:func:`bayesian_crlb`) and removes the tail: RMSE 0.99–1.04 × CRLB, coverage 0.95–0.96 over 400
draws (``bench/localization.py``). The price: a transmitter near the edge of, or outside, the
route's spread is pulled toward its centre (the bench's ``--off-centre`` rows).

The 95 % region is the profile-likelihood region of the posterior (likelihood × prior, threshold
χ²₂(0.95) = 5.99), summarised as an ellipse by :func:`~detector.localization._estimators.likelihood_region`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detector.localization._estimators import BearingsEnu, RssProblem
from detector.localization._model import Cells, PathLossModel, crlb_from_fisher

#: Least prior standard deviation (m) along any axis.
PRIOR_FLOOR_M = 50.0
#: A route encloses its centre when, seen from there, no gap between the directions of its places
#: is wider than this (degrees): a loop leaves gaps of a few degrees, a U 90–180°, a street 180°.
ENCLOSING_GAP_DEG = 90.0


def encloses(x: NDArray, y: NDArray, max_gap_deg: float = ENCLOSING_GAP_DEG) -> bool:
    """Whether the places ``(x, y)`` (m) surround their centre (mean): the widest gap between their
    directions from it is at most ``max_gap_deg``. Places within 1 m of the centre are ignored."""
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    dx, dy = x - x.mean(), y - y.mean()
    keep = np.hypot(dx, dy) > 1.0
    if keep.sum() < 3:
        return False
    a = np.sort(np.arctan2(dy[keep], dx[keep]))
    gaps = np.diff(np.concatenate([a, a[:1] + 2.0 * np.pi]))
    return bool(np.degrees(gaps.max()) <= max_gap_deg)


def route_prior_cov(x: NDArray, y: NDArray, floor_m: float = PRIOR_FLOOR_M) -> NDArray[np.float64]:
    """Covariance (2×2, m², east/north) of the route-spread prior: the covariance of the reading
    places ``(x, y)`` (m, shape (N,)), its eigenvalues raised to at least ``floor_m``².

    Raises ValueError for fewer than two places or a non-positive ``floor_m``.
    """
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    if x.size < 2 or x.size != y.size:
        raise ValueError("route_prior_cov needs at least two places with x and y of the same length")
    if not floor_m > 0:
        raise ValueError(f"floor_m must be > 0, got {floor_m}")
    w, v = np.linalg.eigh(np.cov(np.stack([x, y])))
    w = np.maximum(w, floor_m ** 2)
    return (v * w) @ v.T


def gls_problem(cells: Cells, model: PathLossModel, bearings: BearingsEnu | None = None,
                extra_var_db2: NDArray | None = None) -> RssProblem:
    """The whitened problem of the ``"gls"`` estimator.

    The prior is :func:`route_prior_cov` of the cells when the route :func:`encloses` its centre
    (THEORY §2.2's well-conditioned regime, where the transmitter is inside the loop the vehicle
    drives) and ``model.position_prior_m`` is None; otherwise the isotropic prior of
    :class:`PathLossModel` (a number: that σ; None: the route's RMS radius, ≥ 50 m; 0: none), as
    for ``"nls"``: a route along one side of a site says little about how far from it the
    transmitter is. Without bearings the loss is plain least squares
    (the Gaussian likelihood); with bearings it stays robust (``soft_l1``), since direction
    finders give outliers (reflections) that the 3σ rejection of ``locate_enu`` removes only after
    a first fit.
    """
    loss = "linear" if bearings is None or bearings.n == 0 else "soft_l1"
    prior = None
    if model.position_prior_m is None and cells.n >= 3 and encloses(cells.x, cells.y):
        prior = route_prior_cov(cells.x, cells.y)
    return RssProblem(cells, model, bearings, extra_var_db2, prior_cov_m2=prior, loss=loss)


def bayesian_crlb(fisher: NDArray, prior_fisher_xy: NDArray) -> NDArray[np.float64]:
    """Bayesian (Van Trees) bound on the position (2×2, m²): [(F + J_prior)⁻¹]_xy with ``fisher``
    the information of θ = [x, y, P0(, n)] (k×k) and ``prior_fisher_xy`` the prior's (2×2, the
    inverse of its covariance for a Gaussian prior). An estimator that uses the prior is compared
    with this bound, the plain CRLB being the one without the prior (H. L. Van Trees, *Detection,
    Estimation, and Modulation Theory*, Part I, 1968, §2.4.3; recalled)."""
    F = np.array(fisher, float, copy=True)
    F[:2, :2] += np.asarray(prior_fisher_xy, float)
    return crlb_from_fisher(F)


__all__ = ["route_prior_cov", "encloses", "gls_problem", "bayesian_crlb", "PRIOR_FLOOR_M", "ENCLOSING_GAP_DEG"]
