"""Readings matched to a GPS track by time: the time resolution of their stamps, the position
uncertainty it gives at the vehicle's speed, and the clock offset between readings and track.

A reading taken at time t (the readings' clock) is placed where the track was at t − τ, τ being
the offset of the readings' clock from the GPS clock (``time_offset_s``). :func:`estimate_clock_offset`
scans τ over a bounded range and keeps the one whose readings fit the log-distance model best
(the least residual variance of the grid ML, P0 and n free), refined by a bounded scalar
minimisation; :func:`offset_significance` says whether that fit is better than at the applied
offset by more than chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detector.localization._model import PathLossModel

__all__ = ["ClockOffset", "time_resolution_s", "position_sigma_m", "estimate_clock_offset", "MIN_GPS_OVERLAP",
           "DEFAULT_GPS_ERROR_M", "DEFAULT_MAX_CLOCK_OFFSET_S"]

#: The least share of readings with a GPS fix for a location (``examwatch locate --min-gps-overlap``,
#: the monitor's :func:`~detector.localization.tracks.track_locator`).
MIN_GPS_OVERLAP = 0.8
#: GPS position error (m, 1 σ per axis) combined with speed × time resolution (``--gps-error-m``).
DEFAULT_GPS_ERROR_M = 3.0
#: A clock offset (s) beyond which readings paired with a GPS track by time are refused (``--max-clock-offset-s``).
DEFAULT_MAX_CLOCK_OFFSET_S = 2.0

#: Likelihood-ratio threshold (χ², 1 dof, p = 0.001) for a clock offset to count as shown by the data.
OFFSET_LR_THRESHOLD = 10.83

Positions = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]]


def time_resolution_s(t: ArrayLike) -> float:
    """The quantisation step of the time stamps ``t`` (s): the coarsest of 1, 0.5, 0.1, 0.01 and
    0.001 s of which every stamp is a multiple (whole-second stamps: 1 s); else the smallest
    positive step between stamps (at least 1 ms)."""
    t = np.asarray(t, float).ravel()
    t = t[np.isfinite(t)]
    if t.size == 0:
        return 1.0
    frac = t - np.floor(t)  # the integer part (POSIX seconds) is a multiple of every step
    for q in (1.0, 0.5, 0.1, 0.01, 0.001):
        r = frac / q
        if np.all(np.abs(r - np.round(r)) < 1e-4):
            return q
    d = np.diff(np.unique(t))
    d = d[d > 0]
    return float(max(d.min(), 1e-3)) if d.size else 1e-3


def position_sigma_m(speed_mps: ArrayLike, resolution_s: float, gps_sigma_m: float) -> NDArray[np.float64]:
    """Each reading's position uncertainty (m, per axis): speed × time resolution (where the
    vehicle may have been within one step of the stamp) combined with the GPS error in quadrature."""
    v = np.nan_to_num(np.asarray(speed_mps, float), nan=0.0)
    return np.sqrt((v * float(resolution_s)) ** 2 + float(gps_sigma_m) ** 2)


@dataclass(frozen=True)
class ClockOffset:
    """The estimated offset τ (s) of the readings' clock from the GPS clock, and its evidence.

    ``lr``: n_places·ln(s²(applied)/s²(τ)), the likelihood ratio of the fit at τ against the fit
    at the applied offset (≈ χ² with 1 dof under "no offset"); ``significant``: lr > 10.83;
    ``share``: the share of readings with a fix at τ; ``n_candidates``: offsets scanned;
    ``runner_up_s``: the best offset away from τ (beyond 3 scan steps and 4·d_c/speed), and ``ambiguous`` when it
    fits almost as well (likelihood ratio against τ ≤ 10.83): a route that repeats itself (a loop,
    a lawnmower) cannot tell offsets of one lap or leg apart.
    """

    offset_s: float
    lr: float
    significant: bool
    share: float
    resid_db: float
    resid_applied_db: float
    n_candidates: int
    runner_up_s: float | None = None
    ambiguous: bool = False


def _fit_var(x: NDArray, y: NDArray, p: NDArray, model: PathLossModel, n_side: int = 31,
             max_readings: int = 600) -> tuple[float, int]:
    """Least residual variance (dB² per reading) of μ = P0 − 10·n·log10(d) over a grid of
    positions, P0 and n free (n within the model's bounds), over the readings themselves (evenly
    thinned to ``max_readings``; not cell means, which would hide the scatter of readings piled on
    one spot); and the number of distinct places (cells of max(d_c, 10 m)) they cover."""
    place = max(model.decorrelation_m, 10.0)
    n_places = int(np.unique(np.stack([np.floor(x / place), np.floor(y / place)], 1), axis=0).shape[0])
    if x.size < 5 or n_places < 3:
        return math.inf, n_places
    if x.size > max_readings:
        k = np.linspace(0, x.size - 1, max_readings).round().astype(int)
        x, y, p = x[k], y[k], p[k]
    x0, x1, y0, y1 = x.min(), x.max(), y.min(), y.max()
    span = max(x1 - x0, y1 - y0, 1.0)
    half = 0.5 * span + max(50.0, 0.5 * span)
    g = np.linspace(-half, half, n_side)
    gx, gy = np.meshgrid(0.5 * (x0 + x1) + g, 0.5 * (y0 + y1) + g)
    gx, gy = gx.ravel(), gy.ravel()
    G = -5.0 * np.log10((gx[:, None] - x) ** 2 + (gy[:, None] - y) ** 2 + model.height_m ** 2)  # (K, N)
    yc = p - p.mean()
    Gc = G - G.mean(1, keepdims=True)
    gg = (Gc * Gc).sum(1)
    yg = Gc @ yc
    lo, hi = model.exponent_bounds
    n = np.clip(yg / np.maximum(gg, 1e-12), lo, hi) if model.exponent is None else np.full(gg.shape, model.exponent)
    rss = float(yc @ yc) - 2 * n * yg + n * n * gg
    return float(rss.min() / max(x.size - 4.0, 1.0)), n_places


def estimate_clock_offset(t: ArrayLike, power_db: ArrayLike, positions: Positions, *, model: PathLossModel | None = None,
                          search_s: float = 300.0, applied_s: float = 0.0, step_s: float | None = None,
                          speed_mps: float | None = None, min_share: float = 0.5) -> ClockOffset | None:
    """Scan clock offsets τ in ``applied_s ± search_s`` for the one whose readings fit best.

    ``positions(t_gps)`` gives ENU (x, y) (m, NaN without a fix) at GPS times; a reading stamped t
    is placed at ``positions(t − τ)``. Offsets at which fewer than ``min_share`` of the readings
    have a fix are skipped. The scan step is half the shadowing decorrelation distance at the
    vehicle's median ``speed_mps`` (0.25–5 s) unless ``step_s`` is given. The scan uses a cheap
    cost (250 readings, a 21 × 21 position grid); its three best minima (at least 3 steps and 4·d_c/speed apart) are
    refined with the full cost by ``scipy.optimize.minimize_scalar`` (bounded to ± one step). None
    when no offset has enough readings with a fix.
    """
    from scipy.optimize import minimize_scalar

    model = model or PathLossModel()
    t = np.asarray(t, float).ravel()
    p = np.asarray(power_db, float).ravel()
    v = speed_mps if speed_mps and math.isfinite(speed_mps) and speed_mps > 0 else 5.0
    if step_s is None:
        step_s = float(np.clip(0.5 * max(model.decorrelation_m, 10.0) / v, 0.25, 5.0))
    sep = max(3.0 * step_s, 4.0 * max(model.decorrelation_m, 10.0) / v)  # minima this far apart are distinct

    def cost(tau: float, fine: bool = True) -> tuple[float, float, int]:
        x, y = positions(t - tau)
        ok = np.isfinite(x) & np.isfinite(y)
        share = float(ok.mean()) if ok.size else 0.0
        if share < min_share:
            return math.inf, share, 0
        kw = {} if fine else {"n_side": 21, "max_readings": 250}
        v, n_places = _fit_var(x[ok], y[ok], p[ok], model, **kw)
        return v, share, n_places

    # a cheap scan (fewer readings, a coarser position grid), then the three best separated minima
    # refined with the full cost
    taus = applied_s + np.arange(-search_s, search_s + 0.5 * step_s, step_s)
    vals = np.array([cost(float(tau), fine=False)[0] for tau in taus])
    if not np.any(np.isfinite(vals)):
        return None
    order = [int(i) for i in np.argsort(vals) if np.isfinite(vals[i])]
    picks: list[int] = []
    for i in order:
        if all(abs(taus[i] - taus[j]) > sep for j in picks):
            picks.append(i)
        if len(picks) == 3:
            break
    refined: list[tuple[float, float]] = []
    for i in picks:
        tau0 = float(taus[i])
        v0 = cost(tau0)[0]
        if not math.isfinite(v0):
            refined.append((tau0, v0))
            continue
        # offsets with too few fixes cost a finite penalty (an infinite one makes Brent's parabola NaN)
        penalty = 4.0 * abs(v0) + 1.0

        def objective(tau: float, penalty: float = penalty) -> float:
            c = cost(float(tau))[0]
            return c if math.isfinite(c) else penalty

        res = minimize_scalar(objective, bounds=(tau0 - step_s, tau0 + step_s), method="bounded", options={"xatol": 0.05})
        if res.success and math.isfinite(res.fun) and res.fun < v0:
            refined.append((float(res.x), float(res.fun)))
        else:
            refined.append((tau0, v0))
    refined.sort(key=lambda r: r[1])
    best_tau, best_v = refined[0]
    v_best, share, n_places = cost(best_tau)
    v_applied, _, n_applied = cost(applied_s)
    if math.isfinite(v_applied) and v_best > 0:
        lr = max(min(n_places, n_applied), 1) * math.log(v_applied / v_best)
    else:
        lr = math.inf
    runner_up, ambiguous = None, False
    if len(refined) > 1 and math.isfinite(refined[1][1]):
        runner_up = refined[1][0]
        ambiguous = bool(v_best > 0 and max(n_places, 1) * math.log(refined[1][1] / v_best) <= OFFSET_LR_THRESHOLD)
    return ClockOffset(offset_s=best_tau, lr=float(max(lr, 0.0)), significant=bool(lr > OFFSET_LR_THRESHOLD),
                       share=share, resid_db=math.sqrt(v_best),
                       resid_applied_db=math.sqrt(v_applied) if math.isfinite(v_applied) else math.inf,
                       n_candidates=int(taus.size), runner_up_s=runner_up, ambiguous=ambiguous)
