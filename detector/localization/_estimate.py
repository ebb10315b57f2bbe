"""``LocationEstimate`` (the shape every location takes: CLI JSON, tracks, alerts, API), error
ellipses, CEP, GeoJSON and the nearest site building."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from numpy.typing import NDArray

#: χ²(2 dof) quantile of the 95 % region.
CHI2_2DOF_95 = 5.991464547107979
#: A 95 % circle of radius R of an isotropic Gaussian has CEP50 = R·sqrt(ln 2 / ln 20).
_CEP_OF_R95 = math.sqrt(math.log(2.0) / math.log(20.0))

LOCATED = "located"
NOT_LOCALIZABLE = "not_localizable"


@dataclass(frozen=True)
class ErrorEllipse:
    """The 95 % region: semi-axes in metres, ``angle_deg`` = bearing of the major axis, degrees
    clockwise from north in [0, 180)."""

    semi_major: float
    semi_minor: float
    angle_deg: float

    @property
    def area_m2(self) -> float:
        return math.pi * self.semi_major * self.semi_minor

    def to_dict(self) -> dict:
        return {"semi_major": _r(self.semi_major, 2), "semi_minor": _r(self.semi_minor, 2), "angle_deg": _r(self.angle_deg, 1)}


def ellipse_from_cov(cov: NDArray, chi2: float = CHI2_2DOF_95) -> ErrorEllipse:
    """95 % ellipse of a 2×2 ENU covariance (m²)."""
    cov = np.asarray(cov, float)
    if not np.all(np.isfinite(cov)):
        return ErrorEllipse(math.inf, math.inf, 0.0)
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    w = np.maximum(w, 0.0)
    major = v[:, 1]  # (east, north) of the larger eigenvalue
    angle = math.degrees(math.atan2(major[0], major[1])) % 180.0
    if angle >= 179.95:
        angle = 0.0
    return ErrorEllipse(math.sqrt(chi2 * w[1]), math.sqrt(chi2 * w[0]), angle)


def cep50_from_cov(cov: NDArray) -> float:
    """Radius holding 50 % of a zero-mean 2-D Gaussian with covariance ``cov`` (exact, numerical)."""
    cov = np.asarray(cov, float)
    if not np.all(np.isfinite(cov)):
        return math.inf
    w = np.maximum(np.linalg.eigvalsh(0.5 * (cov + cov.T)), 0.0)
    s1, s2 = math.sqrt(w[1]), math.sqrt(w[0])
    if s1 == 0.0:
        return 0.0
    # Polar form: radius = u·s(φ) with u Rayleigh(1), φ uniform: P(r ≤ R) = mean_φ(1 − exp(−R²/(2 s(φ)²))).
    phi = (np.arange(256) + 0.5) * (math.pi / 2) / 256
    s_phi2 = (s1 * np.cos(phi)) ** 2 + (s2 * np.sin(phi)) ** 2

    def p(r: float) -> float:
        return float(np.mean(1.0 - np.exp(-r * r / (2.0 * s_phi2)))) - 0.5

    lo, hi = 0.0, 1.1774 * s1 + 1e-9  # 1.1774·s1 holds ≥ 50 % (the isotropic case of the larger axis)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if p(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class LocationEstimate:
    """A transmitter position with its uncertainty (``DESIGN.md``, Core types).

    ``status`` is ``"located"`` or ``"not_localizable"``; the latter still gives a coarse position
    (the strongest reading) with ``radius_m`` and says why in ``reason``. ``error_ellipse_m`` is the
    95 % region (for a coarse answer: the circle of ``radius_m``); ``crlb_rmse_m`` is
    sqrt(trace(CRLB)) for the readings actually used (None when the geometry gives no bound).
    """

    lat: float
    lon: float
    error_ellipse_m: ErrorEllipse
    cep50_m: float
    crlb_rmse_m: float | None
    status: str
    method: str
    n_readings: int
    reason: str | None = None
    path_loss_exponent: float | None = None
    p0_db: float | None = None
    area_m2: float | None = None
    radius_m: float | None = None
    #: the offset (s) of the readings' clock from the GPS clock, when it was estimated (``locate --gps``)
    time_offset_s: float | None = None

    @property
    def located(self) -> bool:
        return self.status == LOCATED

    def to_dict(self) -> dict:
        """The JSON shape: {"lat", "lon", "error_ellipse_m": {...}, "cep50_m", "crlb_rmse_m",
        "status", "method", "n_readings", "reason", "path_loss_exponent", "p0_db", "area_m2",
        "radius_m"} (and "time_offset_s" when it was estimated); non-finite numbers become null."""
        out = {
            "lat": _r(self.lat, 7),
            "lon": _r(self.lon, 7),
            "error_ellipse_m": self.error_ellipse_m.to_dict(),
            "cep50_m": _r(self.cep50_m, 2),
            "crlb_rmse_m": _r(self.crlb_rmse_m, 2),
            "status": self.status,
            "method": self.method,
            "n_readings": int(self.n_readings),
            "reason": self.reason,
            "path_loss_exponent": _r(self.path_loss_exponent, 3),
            "p0_db": _r(self.p0_db, 2),
            "area_m2": _r(self.area_m2, 1),
            "radius_m": _r(self.radius_m, 2),
        }
        if self.time_offset_s is not None:
            out["time_offset_s"] = _r(self.time_offset_s, 2)
        return out

    def ellipse_polygon(self, n_points: int = 72) -> list[tuple[float, float]]:
        """The 95 % region as a closed ring of (lat, lon) points."""
        from detector.localization._frame import LocalFrame

        e = self.error_ellipse_m
        a, b = e.semi_major, e.semi_minor
        if not (math.isfinite(a) and math.isfinite(b)):
            return []
        t = np.linspace(0.0, 2.0 * math.pi, n_points, endpoint=False)
        th = math.radians(e.angle_deg)
        ux, uy = math.sin(th), math.cos(th)  # major axis (east, north)
        vx, vy = uy, -ux
        x = a * np.cos(t) * ux + b * np.sin(t) * vx
        y = a * np.cos(t) * uy + b * np.sin(t) * vy
        lat, lon = LocalFrame(self.lat, self.lon).to_geodetic(x, y)
        ring = list(zip(lat.tolist(), lon.tolist()))
        return ring + ring[:1]

    def to_geojson(self, *, ellipse: bool = False) -> dict:
        """A GeoJSON Feature: the Point (lon, lat) with :meth:`to_dict` as properties; with
        ``ellipse=True`` the geometry is a GeometryCollection of the point and the 95 % polygon."""
        point = {"type": "Point", "coordinates": [_r(self.lon, 7), _r(self.lat, 7)]}
        geometry: dict = point
        if ellipse:
            ring = self.ellipse_polygon()
            if ring:
                poly = {"type": "Polygon", "coordinates": [[[_r(lo, 7), _r(la, 7)] for la, lo in ring]]}
                geometry = {"type": "GeometryCollection", "geometries": [point, poly]}
        return {"type": "Feature", "geometry": geometry, "properties": self.to_dict()}


class BuildingMatch(NamedTuple):
    """Index of the nearest footprint, distance (m, 0 inside) and whether the estimate is inside."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index (public name, kept)
    distance_m: float
    inside: bool


def nearest_building(est: LocationEstimate, footprints: Sequence[Sequence[tuple[float, float]]]) -> BuildingMatch | None:
    """The footprint (a polygon of (lat, lon) vertices) nearest to the estimate; None without footprints."""
    from detector.localization._frame import LocalFrame

    frame = LocalFrame(est.lat, est.lon)
    best: BuildingMatch | None = None
    for i, poly in enumerate(footprints):
        pts = np.asarray(poly, float)
        if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] != 2:
            raise ValueError(f"footprint {i} must be a list of ≥ 3 (lat, lon) vertices")
        x, y = frame.to_enu(pts[:, 0], pts[:, 1])
        inside = _point_in_polygon(0.0, 0.0, x, y)
        dist = 0.0 if inside else _distance_to_ring(0.0, 0.0, x, y)
        if best is None or dist < best.distance_m:
            best = BuildingMatch(i, float(dist), bool(inside))
    return best


def _point_in_polygon(px: float, py: float, x: NDArray, y: NDArray) -> bool:
    x1, y1 = x, y
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    cross = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
    return bool(np.count_nonzero(cross & (px < xint)) % 2)


def _distance_to_ring(px: float, py: float, x: NDArray, y: NDArray) -> float:
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    dx, dy = x2 - x, y2 - y
    L2 = dx * dx + dy * dy
    t = np.clip(np.where(L2 > 0, ((px - x) * dx + (py - y) * dy) / np.where(L2 > 0, L2, 1.0), 0.0), 0.0, 1.0)
    return float(np.min(np.hypot(x + t * dx - px, y + t * dy - py)))


def coarse_ellipse(radius_m: float) -> ErrorEllipse:
    return ErrorEllipse(radius_m, radius_m, 0.0)


def coarse_cep50(radius_m: float) -> float:
    return radius_m * _CEP_OF_R95


def _r(v: float | None, nd: int) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, nd) if math.isfinite(v) else None
