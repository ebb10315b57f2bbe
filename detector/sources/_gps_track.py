"""GPS fixes as a track: :class:`Fix`, :class:`GpsReadReport` and :class:`GpsTrack` (time interpolation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

import numpy as np
from numpy.typing import NDArray

from detector.core.errors import InputError


#: Earliest time a GPS receiver can report (GPS epoch); anything before it is an invalid time.
GPS_EPOCH = datetime(1980, 1, 6, tzinfo=timezone.utc)
NMEA_EXTENSIONS = (".nmea", ".log", ".txt")
DEFAULT_MAX_AGE_S = 5.0
_DAY_S = 86400.0


@dataclass(frozen=True)
class Fix:
    """One GPS position: ``t`` (aware UTC datetime), ``lat``/``lon`` (degrees WGS84), optional
    altitude (m above mean sea level), HDOP, and ``source`` (e.g. ``"GNRMC"``, ``"gpx"``, ``"fixed"``)."""

    t: datetime
    lat: float
    lon: float
    alt_m: float | None = None
    hdop: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.t.tzinfo is None:
            raise ValueError("Fix.t must be timezone-aware (UTC)")
        if self.t.utcoffset() != timedelta(0):
            object.__setattr__(self, "t", self.t.astimezone(timezone.utc))

    @property
    def posix_s(self) -> float:
        return self.t.timestamp()


@dataclass
class GpsReadReport:
    """What a reader did with a file: lines seen, fixes made, and why the rest was skipped.

    ``skipped`` counts bad parts by reason: ``comment``, ``blank``, ``checksum`` (checksum mismatch),
    ``no_checksum`` (missing checksum: a truncated or hand-made line), ``garbage`` (not NMEA),
    ``bad_field`` (unparseable time or number), ``no_fix`` (RMC status V, GGA quality 0 or empty,
    empty position), ``bad_position`` (outside ±90/±180 or exactly 0,0), ``invalid_time`` (before
    1980, e.g. 1901-12-13), ``no_time`` (a GPX point without a time). ``n_other`` counts valid
    sentences that carry no position (GSV, VTG, HDG, ...), which are not errors.
    """

    source: str = ""
    n_lines: int = 0
    n_fixes: int = 0
    n_other: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"{self.source}: {self.n_lines} lines, {self.n_fixes} fixes, skipped: {parts}"

    def to_dict(self) -> dict:
        return {"source": self.source, "n_lines": self.n_lines, "n_fixes": self.n_fixes,
                "n_other": self.n_other, "skipped": dict(sorted(self.skipped.items())), "notes": list(self.notes)}


class GpsTrack:
    """Positions over time: sorted, unique POSIX seconds ``t_s`` with ``lat``/``lon`` (degrees).

    A fixed track (:meth:`fixed`) has one position valid at every time. ``report`` is the reader's
    :class:`GpsReadReport` when the track came from a file.
    """

    def __init__(self, t_s: NDArray[np.float64], lat: NDArray[np.float64], lon: NDArray[np.float64], *,
                 alt_m: NDArray[np.float64] | None = None, report: GpsReadReport | None = None,
                 fixed: bool = False, name: str = "") -> None:
        t_s = np.asarray(t_s, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        if not (t_s.ndim == lat.ndim == lon.ndim == 1 and t_s.size == lat.size == lon.size):
            raise ValueError("GpsTrack: t_s, lat and lon must be 1-D arrays of equal length")
        if t_s.size == 0:
            raise InputError(f"GPS track {name} has no fixes" if name else "GPS track has no fixes")
        if not fixed and np.any(np.diff(t_s) <= 0):
            order = np.argsort(t_s, kind="stable")
            t_s, lat, lon = t_s[order], lat[order], lon[order]
            alt_m = None if alt_m is None else np.asarray(alt_m, dtype=np.float64)[order]
            keep = np.r_[True, np.diff(t_s) > 0]  # first fix of each repeated time
            t_s, lat, lon = t_s[keep], lat[keep], lon[keep]
            alt_m = None if alt_m is None else alt_m[keep]
        self.t_s, self.lat, self.lon = t_s, lat, lon
        self.alt_m = None if alt_m is None else np.asarray(alt_m, dtype=np.float64)
        self.report = report
        self.is_fixed = fixed
        self.name = name

    @classmethod
    def from_fixes(cls, fixes: Iterable[Fix], *, report: GpsReadReport | None = None, name: str = "") -> "GpsTrack":
        fixes = list(fixes)
        if not fixes:
            raise InputError(f"GPS track {name} has no fixes" if name else "GPS track has no fixes")
        alt = np.array([np.nan if f.alt_m is None else f.alt_m for f in fixes])
        return cls(np.array([f.posix_s for f in fixes]), np.array([f.lat for f in fixes]),
                   np.array([f.lon for f in fixes]), alt_m=alt, report=report, name=name)

    @classmethod
    def fixed_position(cls, lat: float, lon: float, *, name: str = "fixed") -> "GpsTrack":
        """A position valid at every time (a parked vehicle or a fixed sensor)."""
        _check_latlon(lat, lon, name)
        return cls(np.array([0.0]), np.array([float(lat)]), np.array([float(lon)]), fixed=True, name=name)

    def __len__(self) -> int:
        return int(self.t_s.size)

    @property
    def start(self) -> datetime | None:
        return None if self.is_fixed else datetime.fromtimestamp(self.t_s[0], tz=timezone.utc)

    @property
    def end(self) -> datetime | None:
        return None if self.is_fixed else datetime.fromtimestamp(self.t_s[-1], tz=timezone.utc)

    def interpolate(self, t_s: NDArray[np.float64] | Iterable[float], max_age_s: float = DEFAULT_MAX_AGE_S
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions at times ``t_s`` (POSIX seconds): linear interpolation between the two fixes
        around each time; NaN where the nearest fix is more than ``max_age_s`` away or the time is
        outside the track (no extrapolation)."""
        t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        if self.is_fixed:
            return np.full(t.shape, self.lat[0]), np.full(t.shape, self.lon[0])
        lat = np.full(t.shape, np.nan)
        lon = np.full(t.shape, np.nan)
        tt = self.t_s
        inside = (t >= tt[0]) & (t <= tt[-1]) & np.isfinite(t)
        if not inside.any():
            return lat, lon
        ti = t[inside]
        k = np.clip(np.searchsorted(tt, ti, side="right") - 1, 0, tt.size - 1)
        k1 = np.minimum(k + 1, tt.size - 1)
        t0, t1 = tt[k], tt[k1]
        nearest = np.minimum(np.abs(ti - t0), np.abs(t1 - ti))
        span = t1 - t0
        w = np.where(span > 0, (ti - t0) / np.where(span > 0, span, 1.0), 0.0)
        # Longitude across the antimeridian: interpolate the shortest way round.
        dlon = (self.lon[k1] - self.lon[k] + 180.0) % 360.0 - 180.0
        la = self.lat[k] + w * (self.lat[k1] - self.lat[k])
        lo = (self.lon[k] + w * dlon + 180.0) % 360.0 - 180.0
        ok = nearest <= max_age_s
        idx = np.flatnonzero(inside)
        lat[idx[ok]] = la[ok]
        lon[idx[ok]] = lo[ok]
        return lat, lon

    def speed_mps(self, t_s: NDArray[np.float64] | Iterable[float], max_age_s: float = DEFAULT_MAX_AGE_S
                  ) -> NDArray[np.float64]:
        """Ground speed (m/s) at times ``t_s``: the distance between the two fixes around each time
        over their time difference (the speed the interpolation assumes); 0 for a fixed track, NaN
        where :meth:`interpolate` gives no position."""
        t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        if self.is_fixed:
            return np.zeros(t.shape)
        out = np.full(t.shape, np.nan)
        tt = self.t_s
        if tt.size < 2:
            return np.where((t == tt[0]), 0.0, np.nan)
        lat, _ = self.interpolate(t, max_age_s)
        ok = np.isfinite(lat)
        if not ok.any():
            return out
        k = np.clip(np.searchsorted(tt, t[ok], side="right") - 1, 0, tt.size - 2)
        a, e2 = 6378137.0, 6.69437999014e-3  # WGS84: meridian (M) and prime-vertical (N) radii
        la0, la1 = np.radians(self.lat[k]), np.radians(self.lat[k + 1])
        phi = 0.5 * (la0 + la1)
        w = 1.0 - e2 * np.sin(phi) ** 2
        dlo = np.radians((self.lon[k + 1] - self.lon[k] + 180.0) % 360.0 - 180.0)
        dx = a / np.sqrt(w) * np.cos(phi) * dlo
        dy = a * (1.0 - e2) / w ** 1.5 * (la1 - la0)
        out[ok] = np.hypot(dx, dy) / (tt[k + 1] - tt[k])
        return out

    def fix_share(self, t_s: NDArray[np.float64] | Iterable[float], max_age_s: float = DEFAULT_MAX_AGE_S) -> float:
        """The share (0–1) of the times ``t_s`` that :meth:`interpolate` gives a position for."""
        t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        if t.size == 0:
            return 0.0
        return float(np.isfinite(self.interpolate(t, max_age_s)[0]).mean())

    def at(self, t_s: float | datetime, max_age_s: float = DEFAULT_MAX_AGE_S) -> tuple[float, float] | None:
        """Interpolated ``(lat, lon)`` at one time, or None (no fix within ``max_age_s``, or outside)."""
        if isinstance(t_s, datetime):
            if t_s.tzinfo is None:
                raise InputError("GpsTrack.at: a datetime without a time zone is ambiguous (use UTC)")
            t_s = t_s.timestamp()
        lat, lon = self.interpolate(np.array([float(t_s)]), max_age_s)
        if not np.isfinite(lat[0]):
            return None
        return float(lat[0]), float(lon[0])

    def __repr__(self) -> str:
        if self.is_fixed:
            return f"GpsTrack(fixed {self.lat[0]:.6f}, {self.lon[0]:.6f})"
        return f"GpsTrack({len(self)} fixes, {self.start:%Y-%m-%dT%H:%M:%SZ} to {self.end:%Y-%m-%dT%H:%M:%SZ})"


def _check_latlon(lat: float, lon: float, what: str) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise InputError(f"{what}: position {lat}, {lon} is outside -90..90, -180..180 degrees")


# --------------------------------------------------------------------------------------------- NMEA
