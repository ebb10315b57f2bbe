"""Lines of bearing from a direction finder, in geodetic form (:class:`Bearings`), their
conversion to the local frame the estimators work in, and the variance of a vehicle's bearing from
its confidence and the heading's error (THEORY §2.4–2.5).

Fused with received power in :func:`~detector.localization.locate`: the bearings' Fisher
information Σ u⊥u⊥ᵀ/(σ²d²) adds to the RSS information (after P0 and n are profiled out), so the
CRLB reported is the bound of the combination (THEORY §2.5)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detector.localization._estimators import BearingsEnu
from detector.localization._frame import LocalFrame


@dataclass(frozen=True)
class Bearings:
    """Lines of bearing (a direction finder): where they were taken (lat, lon, degrees), the bearing
    (degrees clockwise from true north) and its standard deviation (degrees)."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    bearing_deg: NDArray[np.float64]
    sigma_deg: NDArray[np.float64] | float = 5.0

    def to_enu(self, frame: LocalFrame) -> BearingsEnu:
        lat = np.atleast_1d(np.asarray(self.lat, float))
        x, y = frame.to_enu(lat, np.atleast_1d(np.asarray(self.lon, float)))
        b = np.radians(np.atleast_1d(np.asarray(self.bearing_deg, float)))
        s = np.radians(np.broadcast_to(np.asarray(self.sigma_deg, float), lat.shape).astype(float))
        ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(b) & (s > 0)
        return BearingsEnu(x[ok], y[ok], b[ok], s[ok])


#: A KrakenSDR-class direction finder's bearing error at full confidence (degrees, 1σ): "several
#: degrees" (KrakenSDR wiki, THEORY §2.4).
DEFAULT_DOA_SIGMA_DEG = 5.0
#: The vehicle heading's error (degrees, 1σ): GPS course over ground while driving (≈ 1° at
#: 10 m/s) plus the array's mounting alignment.
DEFAULT_HEADING_SIGMA_DEG = 2.0
#: Bearings of lower quality are dropped: their σ would exceed doa_sigma / √0.05 ≈ 4.5×.
MIN_QUALITY = 0.05


def bearing_sigma_deg(quality: ArrayLike, relative: ArrayLike, *, doa_sigma_deg: float = DEFAULT_DOA_SIGMA_DEG,
                      heading_sigma_deg: float = DEFAULT_HEADING_SIGMA_DEG,
                      min_quality: float = MIN_QUALITY) -> NDArray[np.float64]:
    """Standard deviation (degrees, shape of ``quality``) of each bearing from true north.

    σ² = σ_doa² / q + [relative]·σ_heading²: the direction finder's error grows as its confidence
    q ∈ (0, 1] falls (variance ∝ 1/q, as a bearing's variance ∝ 1/SNR for an array's DoA estimate,
    Stoica & Nehorai, IEEE TASSP 37(5), 1989, recalled), and a bearing measured relative to the
    vehicle (``relative`` True) carries the heading's error as well; the two are independent. NaN
    where q < ``min_quality`` (the bearing is not used). Raises ValueError for negative or
    non-finite σ parameters.
    """
    if not (math.isfinite(doa_sigma_deg) and doa_sigma_deg > 0):
        raise ValueError(f"doa_sigma_deg must be > 0, got {doa_sigma_deg}")
    if not (math.isfinite(heading_sigma_deg) and heading_sigma_deg >= 0):
        raise ValueError(f"heading_sigma_deg must be ≥ 0, got {heading_sigma_deg}")
    q = np.asarray(quality, float)
    rel = np.broadcast_to(np.asarray(relative, bool), q.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = doa_sigma_deg ** 2 / q + np.where(rel, heading_sigma_deg ** 2, 0.0)
    return np.where(np.isfinite(q) & (q >= min_quality), np.sqrt(var), np.nan)


def vehicle_bearings(lat: ArrayLike, lon: ArrayLike, true_bearing_deg: ArrayLike, quality: ArrayLike,
                     relative: ArrayLike, *, doa_sigma_deg: float = DEFAULT_DOA_SIGMA_DEG,
                     heading_sigma_deg: float = DEFAULT_HEADING_SIGMA_DEG) -> Bearings:
    """:class:`Bearings` of a direction finder on a vehicle: positions (degrees), bearings from
    true north (degrees, the heading already added where ``relative``), each σ from its quality and
    the heading's error (:func:`bearing_sigma_deg`; bearings below :data:`MIN_QUALITY` get NaN and
    are dropped by :meth:`Bearings.to_enu`). All arrays of one shape (N,)."""
    sigma = bearing_sigma_deg(quality, relative, doa_sigma_deg=doa_sigma_deg, heading_sigma_deg=heading_sigma_deg)
    return Bearings(np.asarray(lat, float), np.asarray(lon, float), np.asarray(true_bearing_deg, float), sigma)


def select_bearings(time_s: ArrayLike, frequency_hz: ArrayLike, *, t0_s: float, t1_s: float, f_lo_hz: float,
                    f_hi_hz: float) -> NDArray[np.bool_]:
    """Which bearings (arrays of shape (N,): times in s on any one timeline, frequencies in Hz,
    NaN unknown) were taken in [``t0_s``, ``t1_s``] at a frequency in [``f_lo_hz``, ``f_hi_hz``]:
    a boolean mask of shape (N,). A bearing of unknown frequency is never selected (it cannot be
    told which transmitter it points at). Raises ValueError for NaN bounds or t1 < t0, f_hi < f_lo,
    or arrays of different shapes."""
    t = np.asarray(time_s, float)
    f = np.asarray(frequency_hz, float)
    if t.shape != f.shape:
        raise ValueError(f"time_s and frequency_hz must have one shape, got {t.shape} and {f.shape}")
    for name, lo, hi in (("t", t0_s, t1_s), ("f", f_lo_hz, f_hi_hz)):
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
            raise ValueError(f"{name} bounds must be finite with lo ≤ hi, got {lo}, {hi}")
    with np.errstate(invalid="ignore"):
        return (t >= t0_s) & (t <= t1_s) & np.isfinite(f) & (f >= f_lo_hz) & (f <= f_hi_hz)
