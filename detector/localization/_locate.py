"""``locate`` / ``locate_enu``: readings → position with honest uncertainty, or a plain
``not_localizable`` with the reason and a coarse answer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detector.localization._estimate import (
    CHI2_2DOF_95,
    LOCATED,
    NOT_LOCALIZABLE,
    LocationEstimate,
    cep50_from_cov,
    coarse_cep50,
    coarse_ellipse,
    ellipse_from_cov,
)
from detector.localization._estimators import (
    BearingsEnu,
    FitResult,
    RssProblem,
    bearings_outliers,
    distant_fit_margin,
    exponent_sd,
    grid_minima,
    likelihood_region,
    position_var_db2,
    search_grid,
    weighted_centroid,
)
from detector.localization._bearings import Bearings
from detector.localization._frame import LocalFrame
from detector.localization._gls import gls_problem
from detector.localization._model import Cells, PathLossModel, bin_readings, crlb_from_fisher

METHODS = ("nls", "gls", "grid", "centroid")
#: The estimator of :func:`locate` and :func:`locate_enu` unless told otherwise (issue #22 item 3).
DEFAULT_METHOD = "gls"


@dataclass(frozen=True)
class Limits:
    """When a geometry is called ``not_localizable``, and how big the coarse answer is.

    ``min_places``: fewest distinct places (cells of max(d_c, 10 m)) the readings must cover;
    ``parked_m``: readings all within this extent are one spot; ``collinear_ratio`` /
    ``collinear_min_m``: the route is one line when the spread across its main axis is below
    max(ratio × spread along it, min_m); ``max_crlb_m``: a CRLB RMSE above this is too weak to
    call a position; ``coarse_radius_m``: the least radius of a coarse answer.
    """

    min_places: int = 5
    parked_m: float = 20.0
    collinear_ratio: float = 0.1
    collinear_min_m: float = 5.0
    max_crlb_m: float = 150.0
    coarse_radius_m: float = 100.0
    max_radius_m: float = 3000.0


@dataclass(frozen=True)
class EnuSolution:
    """The result in local metres (see :class:`LocationEstimate` for the meaning of the fields).

    ``cov_xy`` is the covariance behind the 95 % region, ``crlb_xy`` the Cramér–Rao bound at the
    estimate for the readings used (model Σ); ``residual_scale`` = sqrt(χ²/dof) of the whitened
    residuals (≈ 1 when the model's σ fits the data).
    """

    x: float
    y: float
    cov_xy: NDArray[np.float64]
    crlb_xy: NDArray[np.float64]
    status: str
    method: str
    n_readings: int
    n_cells: int
    n_places: int
    reason: str | None = None
    exponent: float | None = None
    exponent_source: str = ""
    p0_db: float | None = None
    radius_m: float | None = None
    residual_scale: float | None = None
    n_bearings: int = 0
    n_bearing_outliers: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    pos_sigma_m: float | None = None

    @property
    def crlb_rmse_m(self) -> float | None:
        v = float(np.trace(self.crlb_xy))
        return math.sqrt(v) if math.isfinite(v) and v >= 0 else None


def _coarse(cells: Cells | None, x: NDArray, y: NDArray, p: NDArray, *, reason: str, radius: float,
            n_readings: int, n_cells: int, n_places: int, limits: Limits, **kw) -> EnuSolution:
    if cells is not None and cells.n:
        k = int(np.argmax(cells.power_db))
        sx, sy = float(cells.x[k]), float(cells.y[k])
    else:
        k = int(np.argmax(p))
        sx, sy = float(x[k]), float(y[k])
    radius = float(min(max(radius, limits.coarse_radius_m), limits.max_radius_m))
    r95 = radius / math.sqrt(5.991464547107979)
    cov = np.eye(2) * r95 * r95
    crlb = kw.pop("crlb_xy", np.full((2, 2), np.inf))
    return EnuSolution(sx, sy, cov, crlb, NOT_LOCALIZABLE, "strongest_reading", n_readings, n_cells, n_places,
                       reason=reason, radius_m=radius, **kw)


def locate_enu(x: ArrayLike, y: ArrayLike, power_db: ArrayLike, *, model: PathLossModel | None = None,
               method: str = DEFAULT_METHOD, bearings: BearingsEnu | None = None, limits: Limits | None = None,
               pos_sigma_m: ArrayLike | float | None = None) -> EnuSolution:
    """Locate a transmitter from readings at ENU positions ``(x, y)`` (m) with powers ``power_db``.

    ``pos_sigma_m``: the standard deviation (m, per axis) of each reading's position (GPS error,
    and speed × time resolution when positions come from matching times to a track; one value or
    one per reading). It enters the fit as extra power noise |∇μ|²·σ_pos² per cell (evaluated at
    a first fit, then refitted), and the 95 % region as a common shift of the readings: the
    readings' mean position variance is added to the region's covariance.

    Readings with a non-finite value are dropped, the rest averaged per cell (``model.cell_m``).
    ``method``: ``"gls"`` (the default, :data:`DEFAULT_METHOD`: GLS with plain least squares and the
    route-spread prior, see ``_gls.py``), ``"nls"`` (robust multi-start NLS started from the grid
    ML, the weak route-radius prior), ``"grid"`` (the best
    point of the grid ML) or ``"centroid"`` (weighted centroid; a baseline, biased toward the
    route). The 95 % region of every method is the profile-likelihood region {Δ(−2 log L) ≤ 5.99},
    summarised as an ellipse; the CRLB is evaluated at the estimate for the readings used.

    Checks, in order: fewer than ``limits.min_places`` readings; all readings within
    ``limits.parked_m`` (parked); fewer than ``min_places`` distinct places d_c apart; one straight
    line (mirror ambiguity, stated with the distance from the line); best point outside the driven
    area with a region open to the search edge (near/far ambiguity); CRLB above
    ``limits.max_crlb_m``. Each gives ``not_localizable`` with the reason and the coarse answer.
    A located estimate whose readings alone would also fit a distant transmitter (likelihood-ratio
    margin < 5.99 against rings 2, 5 and 15 route spans away) carries that caveat in ``reason``:
    it rests on the position prior (the transmitter is near the route).
    """
    model = model or PathLossModel()
    limits = limits or Limits()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    p = np.asarray(power_db, float).ravel()
    if not (x.size == y.size == p.size):
        raise ValueError("x, y and power_db must have the same length")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(p)
    s2: NDArray | None = None
    if pos_sigma_m is not None:
        sg = np.broadcast_to(np.asarray(pos_sigma_m, float), ok.shape).ravel()
        if np.any(~np.isfinite(sg[ok])) or np.any(sg[ok] < 0):
            raise ValueError("pos_sigma_m must be finite and ≥ 0")
        s2 = sg[ok] ** 2
        if not np.any(s2 > 0):
            s2 = None
    x, y, p = x[ok], y[ok], p[ok]
    n = int(x.size)
    if n == 0:
        raise ValueError("no finite readings to locate from")
    if bearings is not None and bearings.n == 0:
        bearings = None
    dc = model.decorrelation_m
    cell = model.cell_size_m
    cells = bin_readings(x, y, p, cell)
    while cells.n > max(model.max_cells, 10):
        cell *= 1.5
        cells = bin_readings(x, y, p, cell)
    place = max(dc, 10.0)
    n_places = int(np.unique(np.stack([np.floor(x / place), np.floor(y / place)], 1), axis=0).shape[0])
    base: dict[str, Any] = dict(n_readings=n, n_cells=cells.n, n_places=n_places, limits=limits)
    extent = float(math.hypot(np.ptp(x), np.ptp(y)))
    if n < limits.min_places and bearings is None:
        return _coarse(cells, x, y, p, radius=limits.coarse_radius_m, **base,
                       reason=f"too few readings: {n} (need at least {limits.min_places} from different places)")
    if extent < limits.parked_m:
        return _coarse(cells, x, y, p, radius=limits.coarse_radius_m, **base,
                       reason=f"parked: all {n} readings lie within {extent:.0f} m of each other; "
                              "one spot gives neither distance nor direction")
    if n_places < limits.min_places and bearings is None:
        return _coarse(cells, x, y, p, radius=limits.coarse_radius_m, **base,
                       reason=f"too few independent readings: {n} readings cover {n_places} places "
                              f"{place:.0f} m apart (need at least {limits.min_places})")
    # Geometry of the route: principal spreads of the cell positions.
    cxy = np.stack([cells.x, cells.y], 1)
    centre = cxy.mean(0)
    w, v = np.linalg.eigh(np.cov((cxy - centre).T) if cells.n > 1 else np.zeros((2, 2)))
    along, across = math.sqrt(max(w[1], 0.0)), math.sqrt(max(w[0], 0.0))
    collinear = across < max(limits.collinear_ratio * along, limits.collinear_min_m) and bearings is None

    cell_pos_var = None if s2 is None else bin_readings(x, y, s2, cell).power_db  # mean σ_pos² per cell
    if s2 is not None:
        base["pos_sigma_m"] = float(math.sqrt(np.mean(s2)))
    prob = _problem(method, cells, model, bearings)
    fit, grid_info = _fit(prob, cells, model, method)
    extra = None
    if fit is not None and cell_pos_var is not None:
        extra = position_var_db2(fit.x, fit.y, cells.x, cells.y, cell_pos_var, fit.exponent, model.height_m)
        prob = _problem(method, cells, model, bearings, extra)
        fit2, grid_info2 = _fit(prob, cells, model, method, starts=[(fit.x, fit.y)])
        if fit2 is not None:
            fit, grid_info = fit2, grid_info2
    if fit is None:
        return _coarse(cells, x, y, p, radius=limits.coarse_radius_m, **base, reason="the model fit did not converge")
    n_out = 0
    if bearings is not None:
        out = bearings_outliers(fit.x, fit.y, bearings)
        n_out = int(out.sum())
        if n_out and (~out).sum() >= 1:
            prob = _problem(method, cells, model, bearings.subset(~out), extra)
            fit2, grid_info2 = _fit(prob, cells, model, method, starts=[(fit.x, fit.y)])
            if fit2 is not None:
                fit, grid_info = fit2, grid_info2
    exponent_source = "given" if model.exponent is not None else ("estimated" if fit.exponent_free else "default")
    crlb = crlb_from_fisher(fit.fisher)
    # The 95 % region: the profile-likelihood region, its threshold scaled up when the residuals
    # scatter more than the model's σ says (never down).
    scale2 = max(1.0, fit.chi2 / fit.dof) if fit.dof > 0 else 1.0
    n_arg = None if fit.exponent_free else fit.exponent
    fisher_cov = crlb_from_fisher(fit.fisher + _prior_block(prob, fit.fisher.shape[0]))
    cov, gx_best, gy_best, open_region = likelihood_region(
        prob, fit.x, fit.y, n_arg, model.exponent_bounds, fisher_cov, grid_info, CHI2_2DOF_95 * scale2)
    notes: list[str] = []
    if open_region:
        notes.append("the 95 % region reaches the edge of the search area (a distant transmitter fits almost as well)")
    if method in ("nls", "gls"):
        px, py = fit.x, fit.y
    elif method == "grid":
        px, py = gx_best, gy_best
        crlb = crlb_from_fisher(prob.fisher(px, py, fit.exponent, fit.exponent_free))
    else:
        px, py = weighted_centroid(cells)
        crlb = crlb_from_fisher(prob.fisher(px, py, fit.exponent, fit.exponent_free))
        d = np.array([px - fit.x, py - fit.y])
        cov = cov + np.outer(d, d)  # the centroid's bias toward the route, added to the region
    if s2 is not None:
        cov = cov + np.eye(2) * float(np.mean(s2))  # the readings' positions may all be off together
    if bearings is not None and method in ("nls", "gls"):
        method_name = f"{method}+bearings"
    else:
        method_name = method
    info: dict[str, Any] = dict(exponent=fit.exponent, exponent_source=exponent_source, p0_db=fit.p0_db,
                residual_scale=math.sqrt(fit.chi2 / fit.dof) if fit.dof > 0 else None,
                n_bearings=0 if bearings is None else bearings.n, n_bearing_outliers=n_out, notes=tuple(notes))
    crlb_rmse = math.sqrt(np.trace(crlb)) if np.all(np.isfinite(crlb)) else math.inf
    strong = int(np.argmax(cells.power_db))
    sx, sy = float(cells.x[strong]), float(cells.y[strong])
    if collinear:
        u = v[:, 1]
        nrm = np.array([-u[1], u[0]])
        off = float((np.array([px, py]) - centre) @ nrm)
        mx, my = px - 2 * off * nrm[0], py - 2 * off * nrm[1]
        radius = 1.25 * max(math.hypot(px - sx, py - sy), math.hypot(mx - sx, my - sy))
        return _coarse(cells, x, y, p, radius=radius, **base, crlb_xy=crlb, **info,
                       reason=f"collinear route: the readings lie along one line ({2 * along:.0f} m × {2 * across:.0f} m); "
                              f"the transmitter is about {abs(off):.0f} m from it, on either side (mirror ambiguity)")
    outside = not (cells.x.min() <= px <= cells.x.max() and cells.y.min() <= py <= cells.y.max())
    if open_region and outside:
        # The best point lies outside the driven area and the likelihood stays high out to the edge
        # of the search area: the readings cannot tell a nearby transmitter from a distant one.
        radius = 1.25 * math.hypot(px - sx, py - sy)
        return _coarse(cells, x, y, p, radius=radius, **base, crlb_xy=crlb, **info,
                       reason="ambiguous: a distant transmitter fits the readings almost as well as a near one "
                              "(the 95 % likelihood region reaches the edge of the search area)")
    if not crlb_rmse <= limits.max_crlb_m:
        radius = 1.25 * math.hypot(px - sx, py - sy) if math.isfinite(px) else limits.coarse_radius_m
        what = f"{crlb_rmse:.0f} m" if math.isfinite(crlb_rmse) else "unbounded"
        return _coarse(cells, x, y, p, radius=radius, **base, crlb_xy=crlb, **info,
                       reason=f"weak geometry: the Cramér–Rao bound is {what} (limit {limits.max_crlb_m:.0f} m)")
    margin = distant_fit_margin(prob, px, py, n_arg, model.exponent_bounds)
    reason = None
    if margin < CHI2_2DOF_95:
        reason = ("assumes the transmitter is near the route: the readings alone also fit a distant transmitter "
                  f"(likelihood-ratio margin {max(margin, 0.0):.1f} < {CHI2_2DOF_95:.1f})")
    return EnuSolution(px, py, cov, crlb, LOCATED, method_name, n, cells.n, n_places, reason=reason,
                       pos_sigma_m=base.get("pos_sigma_m"), **info)


def _fit(prob: RssProblem, cells: Cells, model: PathLossModel, method: str,
         starts: list[tuple[float, float]] | None = None) -> tuple[FitResult | None, tuple]:
    """Grid ML → multi-start robust NLS with n fixed; then n free when the data determine it.
    Returns the fit and the search grid ``(gx, gy, step)``."""
    bounds = model.exponent_bounds
    n_fix = model.exponent if model.exponent is not None else model.default_exponent
    gx, gy, step = search_grid(cells, n_side=81)
    cost, _, _ = prob.profile(gx, gy, n_fix, bounds)
    st = [(float(gx[i]), float(gy[i])) for i in grid_minima(cost, k=3)]
    k = int(np.argmax(cells.power_db))
    st.append((float(cells.x[k]), float(cells.y[k])))
    st.append(weighted_centroid(cells))
    if starts:
        st = list(starts) + st
    fit = prob.fit(st, n_fix, bounds)
    if fit is None:
        return None, ()
    if model.exponent is None:
        sd = exponent_sd(prob.fisher(fit.x, fit.y, fit.exponent, True))
        if sd <= model.max_exponent_sd:
            free = prob.fit([(fit.x, fit.y)], None, bounds)
            if free is not None and bounds[0] + 1e-3 < free.exponent < bounds[1] - 1e-3:
                fit = free
    return fit, (gx, gy, step)


def _problem(method: str, cells: Cells, model: PathLossModel, bearings: BearingsEnu | None,
             extra: NDArray | None = None) -> RssProblem:
    if method == "gls":
        return gls_problem(cells, model, bearings, extra)
    return RssProblem(cells, model, bearings, extra)


def _prior_block(prob: RssProblem, k: int) -> NDArray:
    out = np.zeros((k, k))
    out[:2, :2] = prob.prior_fisher()
    return out


def _to_estimate(sol: EnuSolution, frame: LocalFrame) -> LocationEstimate:
    lat, lon = frame.to_geodetic(np.array([sol.x]), np.array([sol.y]))
    if sol.status == LOCATED:
        ell = ellipse_from_cov(sol.cov_xy)
        cep = cep50_from_cov(sol.cov_xy)
        area = ell.area_m2
    else:
        radius = cast(float, sol.radius_m)  # _coarse sets it on every solution not located
        ell = coarse_ellipse(radius)
        cep = coarse_cep50(radius)
        area = math.pi * radius ** 2
    return LocationEstimate(
        lat=float(lat[0]), lon=float(lon[0]), error_ellipse_m=ell, cep50_m=cep, crlb_rmse_m=sol.crlb_rmse_m,
        status=sol.status, method=sol.method, n_readings=sol.n_readings, reason=sol.reason,
        path_loss_exponent=sol.exponent, p0_db=sol.p0_db, area_m2=area, radius_m=sol.radius_m)


def locate(lat: ArrayLike, lon: ArrayLike, power_db: ArrayLike, *, model: PathLossModel | None = None,
           method: str = DEFAULT_METHOD, bearings: Bearings | None = None, frame: LocalFrame | None = None,
           limits: Limits | None = None, pos_sigma_m: ArrayLike | float | None = None) -> LocationEstimate:
    """Locate a transmitter from readings (``lat``, ``lon`` in degrees, ``power_db`` in dBm or dBFS).

    The readings are converted to ENU metres around ``frame`` (default: their centre) and passed to
    :func:`locate_enu` (with ``pos_sigma_m``, each reading's position uncertainty in m); the answer
    is a :class:`LocationEstimate`.
    """
    lat = np.asarray(lat, float).ravel()
    lon = np.asarray(lon, float).ravel()
    p = np.asarray(power_db, float).ravel()
    if not (lat.size == lon.size == p.size):
        raise ValueError("lat, lon and power_db must have the same length")
    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(p)
    if not ok.any():
        raise ValueError("no finite readings to locate from")
    frame = frame or LocalFrame.around(lat[ok], lon[ok])
    x, y = frame.to_enu(lat[ok], lon[ok])
    b = bearings.to_enu(frame) if bearings is not None else None
    ps = None if pos_sigma_m is None else np.broadcast_to(np.asarray(pos_sigma_m, float), ok.shape)[ok]
    sol = locate_enu(x, y, p[ok], model=model, method=method, bearings=b, limits=limits, pos_sigma_m=ps)
    return _to_estimate(sol, frame)


def refuse(sol: EnuSolution, x: ArrayLike, y: ArrayLike, power_db: ArrayLike, reason: str,
           limits: Limits | None = None) -> EnuSolution:
    """``sol`` turned into ``not_localizable`` for ``reason`` (found outside the estimator, e.g. a
    clock offset between the readings and the GPS track): the strongest reading's position, with
    a radius that holds the estimate (1.25 × its distance, at least ``limits.coarse_radius_m``)."""
    limits = limits or Limits()
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    p = np.asarray(power_db, float).ravel()
    k = int(np.nanargmax(p))
    sx, sy = float(x[k]), float(y[k])
    far = math.hypot(sol.x - sx, sol.y - sy) if math.isfinite(sol.x) and math.isfinite(sol.y) else 0.0
    radius = float(min(max(1.25 * far, sol.radius_m or 0.0, limits.coarse_radius_m), limits.max_radius_m))
    r95 = radius / math.sqrt(CHI2_2DOF_95)
    return replace(sol, x=sx, y=sy, cov_xy=np.eye(2) * r95 * r95, status=NOT_LOCALIZABLE, method="strongest_reading",
                   reason=reason if sol.reason is None or sol.status == LOCATED else f"{reason}; {sol.reason}",
                   radius_m=radius)


def estimate_from_enu(sol: EnuSolution, frame: LocalFrame) -> LocationEstimate:
    """The :class:`LocationEstimate` of an ENU solution in ``frame``."""
    return _to_estimate(sol, frame)
