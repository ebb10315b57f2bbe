"""Tracking the frequency error over a run: per-window estimates fitted by a drift model.

A dongle warms up after power-on and its crystal drifts towards a steady state, roughly as a
first-order thermal response (``SCENES.md`` §3.6: Δε ≈ ±5 ppm with τ ≈ 10 min). Per-window ppm
estimates ``(t_k, ε_k, σ_k)`` are fitted by

* ``"warmup"``: ``ε(t) = a + b·exp(−(t − t₀)/τ)`` (a = steady state, −b = the drift still to come
  at t₀), weighted least squares in (a, b) for each τ on a log grid from span/20 to 5·span,
  refined by a bounded scalar search on log τ;
* ``"linear"``: ``ε(t) = a + s·(t − t₀)``;
* ``"constant"``: the weighted mean.

``model="auto"`` takes ``warmup`` with ≥ 6 windows, ``linear`` with 3–5, else ``constant``. The
residual (estimates − model) is reported as RMS and maximum: it is what remains after the
tracked correction, plus the estimates' own noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
from numpy.typing import NDArray

from calibration._errors import CalibrationError

__all__ = ["DriftTrack", "track_drift"]


@dataclass(frozen=True, eq=False)
class DriftTrack:
    """A fitted drift model and its residuals.

    Attributes
    ----------
    model : str
        ``"warmup"``, ``"linear"`` or ``"constant"``.
    params : dict
        ``warmup``: ``steady_ppm`` (a), ``amplitude_ppm`` (b), ``tau_s``, ``t0_s``; ``linear``:
        ``ppm_at_t0``, ``slope_ppm_per_s``, ``t0_s``; ``constant``: ``ppm``.
    times_s, ppm, uncertainty_ppm : ndarray of float64, shape (k,)
        The per-window estimates the model was fitted to.
    residuals_ppm : ndarray of float64, shape (k,)
        Estimates minus model (ppm).
    residual_rms_ppm, residual_max_ppm : float
        RMS and largest |residual| (ppm).
    """

    model: str
    params: dict
    times_s: NDArray[np.float64]
    ppm: NDArray[np.float64]
    uncertainty_ppm: NDArray[np.float64]
    residuals_ppm: NDArray[np.float64]
    residual_rms_ppm: float
    residual_max_ppm: float

    def ppm_at(self, t_s):
        """Model frequency error (ppm) at time(s) ``t_s`` (s, same origin as ``times_s``)."""
        t = np.asarray(t_s, dtype=np.float64)
        p = self.params
        if self.model == "warmup":
            out = p["steady_ppm"] + p["amplitude_ppm"] * np.exp(-(t - p["t0_s"]) / p["tau_s"])
        elif self.model == "linear":
            out = p["ppm_at_t0"] + p["slope_ppm_per_s"] * (t - p["t0_s"])
        else:
            out = np.full_like(t, p["ppm"])
        return float(out) if out.ndim == 0 else out

    def to_json(self) -> dict:
        """JSON-ready summary (model, parameters, residuals, number of windows)."""
        return {
            "model": self.model,
            "params": {k: round(float(v), 6) for k, v in self.params.items()},
            "n_windows": int(self.times_s.size),
            "residual_rms_ppm": round(self.residual_rms_ppm, 4),
            "residual_max_ppm": round(self.residual_max_ppm, 4),
            "first_ppm": round(float(self.ppm[0]), 4),
            "last_ppm": round(float(self.ppm[-1]), 4),
        }


def _wls(design: NDArray, y: NDArray, w: NDArray) -> tuple[NDArray, float]:
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
    r = y - design @ coef
    return coef, float(np.sum(w * r * r))


def track_drift(
    times_s,
    ppm,
    uncertainty_ppm=None,
    *,
    model: str = "auto",
    tau_s: float | None = None,
) -> DriftTrack:
    """Fit a drift model to per-window ppm estimates.

    Parameters
    ----------
    times_s : array_like of float, shape (k,)
        Window mid-times (s), any origin, strictly increasing.
    ppm : array_like of float, shape (k,)
        Per-window estimates (ppm).
    uncertainty_ppm : array_like of float, shape (k,), optional
        One-sigma uncertainties (weights 1/σ², floored at 0.01 ppm); equal weights when omitted.
    model : {"auto", "warmup", "linear", "constant"}
        See the module docstring.
    tau_s : float, optional
        Fix the warm-up time constant (s) instead of fitting it.

    Returns
    -------
    DriftTrack

    Raises
    ------
    CalibrationError
        No estimates, mismatched lengths, or too few windows for the model asked (warmup ≥ 4,
        linear ≥ 2).

    Examples
    --------
    >>> t = np.arange(0, 601, 30.0)
    >>> true = -37 + 5 * (1 - np.exp(-t / 120))
    >>> tr = track_drift(t, true + np.random.default_rng(0).normal(0, 0.05, t.size))
    >>> tr.model, bool(abs(tr.ppm_at(300.0) - (-37 + 5 * (1 - np.exp(-300 / 120)))) < 0.1)
    ('warmup', True)
    """
    t = np.asarray(times_s, dtype=np.float64).ravel()
    y = np.asarray(ppm, dtype=np.float64).ravel()
    if t.size == 0:
        raise CalibrationError("no ppm estimates to track")
    if y.size != t.size:
        raise CalibrationError(f"{t.size} times but {y.size} ppm estimates")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise CalibrationError("ppm estimates and times must be finite")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise CalibrationError("window times must be strictly increasing")
    u = np.ones_like(y) if uncertainty_ppm is None else np.maximum(np.asarray(uncertainty_ppm, dtype=np.float64).ravel(), 0.01)
    if u.size != y.size:
        raise CalibrationError(f"{y.size} ppm estimates but {u.size} uncertainties")
    w = 1.0 / u**2
    k = t.size
    if model == "auto":
        model = "warmup" if k >= 6 else "linear" if k >= 3 else "constant"
    need = {"warmup": 4, "linear": 2, "constant": 1}
    if model not in need:
        raise ValueError(f"model must be auto, warmup, linear or constant, got {model!r}")
    if k < need[model]:
        raise CalibrationError(f"too few windows for a {model} drift model: {k} (need ≥ {need[model]})")
    t0 = float(t[0])
    dt = t - t0
    if model == "constant":
        a = float(np.sum(w * y) / np.sum(w))
        params = {"ppm": a}
    elif model == "linear":
        (a, s), _ = _wls(np.column_stack([np.ones(k), dt]), y, w)
        params = {"ppm_at_t0": float(a), "slope_ppm_per_s": float(s), "t0_s": t0}
    else:
        span = max(float(dt[-1]), 1e-9)

        def cost(log_tau: float) -> float:
            e = np.exp(-dt / np.exp(log_tau))
            return _wls(np.column_stack([np.ones(k), e]), y, w)[1]

        if tau_s is not None:
            if not tau_s > 0:
                raise ValueError(f"tau_s must be > 0, got {tau_s}")
            best = float(np.log(tau_s))
        else:
            grid = np.linspace(np.log(span / 20), np.log(span * 5), 41)
            costs = [cost(g) for g in grid]
            i = int(np.argmin(costs))
            lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
            best = grid[i]
            if hi > lo:
                res = scipy.optimize.minimize_scalar(cost, bounds=(lo, hi), method="bounded")
                if res.success and res.fun <= costs[i]:
                    best = float(res.x)
        tau = float(np.exp(best))
        (a, b), _ = _wls(np.column_stack([np.ones(k), np.exp(-dt / tau)]), y, w)
        params = {"steady_ppm": float(a), "amplitude_ppm": float(b), "tau_s": tau, "t0_s": t0}
    tr = DriftTrack(model=model, params=params, times_s=t, ppm=y, uncertainty_ppm=u,
                    residuals_ppm=np.zeros(k), residual_rms_ppm=0.0, residual_max_ppm=0.0)
    r = y - np.asarray(tr.ppm_at(t), dtype=np.float64).reshape(k)
    return DriftTrack(model=model, params=params, times_s=t, ppm=y, uncertainty_ppm=u, residuals_ppm=r,
                      residual_rms_ppm=float(np.sqrt(np.mean(r * r))), residual_max_ppm=float(np.max(np.abs(r))))
