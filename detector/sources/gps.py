"""GPS input: NMEA 0183 logs, GPX tracks, a fixed position, live gpsd; time alignment of fixes.

Every position the localization layer sees comes from here. Times are UTC inside (aware
``datetime`` objects, POSIX seconds in arrays); a log that cannot say which day its times belong to
is refused rather than guessed.

* :class:`Fix` — one position at one time.
* :class:`GpsTrack` — fixes as arrays (POSIX seconds, lat, lon) with time interpolation
  (:meth:`GpsTrack.at`, :meth:`GpsTrack.interpolate`); a fix older than ``max_age_s`` is not used.
* :func:`read_nmea` — NMEA 0183 logs (``pynmea2``): RMC gives date and time, GGA time only (its date
  comes from the latest RMC/ZDA, or from ``date=``), ZDA the date. Mixed ``$GP``/``$GN``/``$GL``
  talkers are fine. Bad lines (checksum errors, truncated or garbage lines, sentences without a fix)
  are skipped and counted in a :class:`GpsReadReport`.
* :func:`read_gpx` — GPX tracks, routes and waypoints (``gpxpy``). Times before the GPS epoch
  (1980-01-06), e.g. 1901-12-13 (a wrapped 32-bit time), are invalid: such points are skipped and
  counted, and a file whose times are all invalid is refused.
* :func:`parse_gps_spec` — ``PATH.nmea|.log|.txt`` (NMEA), ``PATH.gpx``, ``fixed:LAT,LON``,
  ``gpsd:[HOST[:PORT]]`` (live; needs the ``gps`` or ``gpsd-py3`` package).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, time as Time, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from detector.core.errors import InputError

__all__ = [
    "Fix",
    "GpsReadReport",
    "GpsTrack",
    "GpsdClient",
    "read_nmea",
    "read_gpx",
    "parse_gps_spec",
    "GPS_EPOCH",
    "NMEA_EXTENSIONS",
    "DEFAULT_MAX_AGE_S",
]

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

def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"GPS file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"GPS path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read GPS file {path}: {exc.strerror or exc}") from None
    return raw.decode("utf-8", errors="replace")


@dataclass
class _Epoch:
    """The sentences of one receiver epoch (same time of day) merged into one fix."""

    tod: Time
    date: Date | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    hdop: float | None = None
    source: str = ""


def _nmea_position(msg) -> tuple[float, float] | None | str:
    """(lat, lon), None when the sentence has no position, "bad" when it is out of range."""
    if not (msg.lat and msg.lon and msg.lat_dir and msg.lon_dir):
        return None
    try:
        lat, lon = float(msg.latitude), float(msg.longitude)
    except (TypeError, ValueError):
        return "bad"
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
        return "bad"
    return lat, lon


def _opt_float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _tod_s(t: Time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def read_nmea(source: str | Path | Iterable[str], *, date: Date | str | None = None,
              name: str | None = None) -> tuple[list[Fix], GpsReadReport]:
    """Parse an NMEA 0183 log into fixes (one per receiver epoch), with a report of what was skipped.

    ``source`` is a path or an iterable of lines. RMC sentences give date and time; GGA sentences
    give time only and take their date from the latest RMC/ZDA date (the first ones in a log take
    the first date seen; midnight rollovers are followed). ``date`` (a ``date`` or ``YYYY-MM-DD``)
    is used while no RMC/ZDA date has been seen, and is required for a log of GGA sentences alone.
    RMC and GGA of the same epoch merge into one fix (GGA adds altitude and HDOP).

    Raises :class:`InputError` when the file has no valid fix at all, or when its fixes have times
    but no date and ``date`` was not given.
    """
    import pynmea2  # runtime dependency; imported here to keep start-up light

    if isinstance(date, str):
        try:
            date = Date.fromisoformat(date)
        except ValueError:
            raise InputError(f"date must be YYYY-MM-DD, got {date!r}") from None
    if isinstance(source, (str, Path)):
        path = Path(source)
        lines = _read_text(path).splitlines()
        label = name or path.name
    else:
        lines = list(source)
        label = name or "NMEA lines"
    report = GpsReadReport(source=label, n_lines=len(lines))

    epochs: list[_Epoch] = []
    cur: _Epoch | None = None
    zda_next: tuple[Time, Date] | None = None  # a ZDA date seen before its epoch's RMC/GGA

    def close(ep: _Epoch | None) -> None:
        if ep is not None and ep.lat is not None:
            epochs.append(ep)

    for raw in lines:
        line = raw.strip()
        if not line:
            report.skip("blank")
            continue
        if line.startswith("#"):
            report.skip("comment")
            continue
        start = line.find("$")
        if start < 0:
            report.skip("garbage")
            continue
        line = line[start:]
        try:
            msg = pynmea2.parse(line, check=True)
        except pynmea2.ChecksumError as exc:
            report.skip("no_checksum" if "missing" in str(exc) else "checksum")
            continue
        except pynmea2.SentenceTypeError:
            report.n_other += 1  # a well-formed sentence of a type pynmea2 does not know (e.g. GLC)
            continue
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError):
            report.skip("garbage")
            continue
        kind = getattr(msg, "sentence_type", "")
        if kind not in ("RMC", "GGA", "ZDA"):
            report.n_other += 1
            continue
        try:
            tod = msg.timestamp
            if kind == "ZDA":
                day = Date(int(msg.year), int(msg.month), int(msg.day)) if msg.year else None
            elif kind == "RMC":
                day = msg.datestamp
            else:
                day = None
        except (ValueError, TypeError, AttributeError):
            report.skip("bad_field")
            continue
        if kind == "ZDA":
            if day is not None and tod is not None:
                if cur is not None and cur.tod == tod.replace(tzinfo=None):
                    cur.date = cur.date or day
                else:
                    zda_next = (tod.replace(tzinfo=None), day)
                report.n_other += 1
            else:
                report.skip("no_fix")
            continue
        valid = (msg.status == "A") if kind == "RMC" else bool(msg.gps_qual)
        pos = _nmea_position(msg) if valid else None
        if tod is None or not valid or pos is None:
            report.skip("no_fix")
            continue
        if pos == "bad":
            report.skip("bad_position")
            continue
        tod = tod.replace(tzinfo=None)
        if cur is None or cur.tod != tod:
            close(cur)
            cur = _Epoch(tod=tod)
            if zda_next is not None and zda_next[0] == tod:
                cur.date = zda_next[1]
            zda_next = None
        if kind == "RMC":
            if day is not None and day < GPS_EPOCH.date():
                report.skip("invalid_time")
                continue
            cur.date = day or cur.date
            cur.lat, cur.lon = pos
            cur.source = f"{msg.talker}RMC" if not cur.source else cur.source + f"+{msg.talker}RMC"
        else:
            if "RMC" not in cur.source:  # RMC's position wins within an epoch
                cur.lat, cur.lon = pos
            cur.alt_m = _opt_float(msg.altitude)
            cur.hdop = _opt_float(msg.horizontal_dil)
            cur.source = f"{msg.talker}GGA" if not cur.source else cur.source + f"+{msg.talker}GGA"
    close(cur)

    # Dates: walk the epochs in order, carrying the latest date across midnight.
    fixes: list[Fix] = []
    pending: list[_Epoch] = []  # epochs before any date was known
    carry_date = date
    carry_tod: float | None = None
    for ep in epochs:
        tod = _tod_s(ep.tod)
        if ep.date is not None:
            if pending and carry_date is None:
                for p in pending:  # before the first date: same day, or the day before if later in the day
                    d = ep.date if _tod_s(p.tod) <= tod + 1.0 else ep.date - timedelta(days=1)
                    fixes.append(_fix(p, d))
                pending = []
            carry_date, carry_tod = ep.date, tod
            fixes.append(_fix(ep, ep.date))
        elif carry_date is not None:
            if carry_tod is not None and tod < carry_tod - _DAY_S / 2:
                carry_date = carry_date + timedelta(days=1)  # rolled over midnight
            carry_tod = tod
            fixes.append(_fix(ep, carry_date))
        else:
            pending.append(ep)
    if pending:
        raise InputError(
            f"{label}: {len(pending)} fixes have a time of day but no date (GGA without RMC/ZDA); "
            "give the date of the log (date=YYYY-MM-DD)")
    fixes.sort(key=lambda f: f.t)
    report.n_fixes = len(fixes)
    if not fixes:
        raise InputError(f"{label}: no valid GPS fix ({report.summary().split(': ', 1)[1]})")
    return fixes, report


def _fix(ep: _Epoch, day: Date) -> Fix:
    t = datetime.combine(day, ep.tod, tzinfo=timezone.utc)
    return Fix(t=t, lat=float(ep.lat), lon=float(ep.lon), alt_m=ep.alt_m, hdop=ep.hdop, source=ep.source)


# ---------------------------------------------------------------------------------------------- GPX

def read_gpx(source: str | Path, *, name: str | None = None) -> tuple[list[Fix], GpsReadReport]:
    """Parse a GPX file's track points, route points and waypoints that carry a time.

    GPX times are UTC by the standard; a time without a zone is taken as UTC and noted in the
    report. Points without a time, and times before 1980-01-06 (the GPS epoch; e.g. 1901-12-13,
    a wrapped 32-bit time) are skipped and counted. Raises :class:`InputError` for unreadable XML,
    a file with no points, or a file whose points all have invalid or missing times.
    """
    import gpxpy
    import gpxpy.gpx

    path = Path(source)
    label = name or path.name
    text = _read_text(path)
    try:
        gpx = gpxpy.parse(text)
    except Exception as exc:  # gpxpy raises GPXException / XML errors of several kinds
        raise InputError(f"{label}: not a readable GPX file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    points = [p for trk in gpx.tracks for seg in trk.segments for p in seg.points]
    points += [p for rte in gpx.routes for p in rte.points]
    points += list(gpx.waypoints)
    report = GpsReadReport(source=label, n_lines=len(points))
    fixes: list[Fix] = []
    invalid: Counter[str] = Counter()
    naive = 0
    for p in points:
        if p.latitude is None or p.longitude is None or not (-90 <= p.latitude <= 90 and -180 <= p.longitude <= 180):
            report.skip("bad_position")
            continue
        if p.time is None:
            report.skip("no_time")
            continue
        t = p.time
        if t.tzinfo is None:
            naive += 1
            t = t.replace(tzinfo=timezone.utc)
        t = t.astimezone(timezone.utc)
        if t < GPS_EPOCH:
            report.skip("invalid_time")
            invalid[t.date().isoformat()] += 1
            continue
        fixes.append(Fix(t=t, lat=float(p.latitude), lon=float(p.longitude),
                         alt_m=None if p.elevation is None else float(p.elevation),
                         hdop=None if getattr(p, "horizontal_dilution", None) is None else float(p.horizontal_dilution),
                         source="gpx"))
    if naive:
        report.notes.append(f"{naive} times without a time zone were taken as UTC (the GPX standard)")
    if not points:
        raise InputError(f"{label}: the GPX file has no track points, route points or waypoints")
    if not fixes:
        if invalid:
            days = ", ".join(f"{d} ({n})" for d, n in invalid.most_common(3))
            raise InputError(
                f"{label}: all {sum(invalid.values())} GPX times are invalid ({days}; before the GPS epoch 1980-01-06, "
                "a receiver with no time or a wrapped 32-bit time), so its positions cannot be matched to readings")
        raise InputError(f"{label}: no GPX point has a usable time and position ({report.summary().split(': ', 1)[1]})")
    if invalid:
        report.notes.append(f"{sum(invalid.values())} points with invalid times (before 1980-01-06) were skipped")
    fixes.sort(key=lambda f: f.t)
    report.n_fixes = len(fixes)
    return fixes, report


# -------------------------------------------------------------------------------------------- gpsd

class GpsdClient:
    """Live fixes from a gpsd daemon (``gpsd:HOST:PORT``), via the ``gps`` package (gpsd's own
    client) or ``gpsd-py3``; both are optional and imported only here."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2947) -> None:
        self.host, self.port = host, int(port)
        try:
            import gps as _gps  # gpsd's client library
            self._lib, self._mod = "gps", _gps
        except ImportError:
            try:
                import gpsd as _gpsd  # gpsd-py3
                self._lib, self._mod = "gpsd-py3", _gpsd
            except ImportError:
                raise InputError("live gpsd needs a gpsd client library: pip install gps (or pip install gpsd-py3)") from None

    def fixes(self, max_fixes: int | None = None) -> Iterator[Fix]:
        """Yield fixes (mode ≥ 2) as gpsd reports them; stops after ``max_fixes`` when given."""
        n = 0
        try:
            if self._lib == "gps":
                session = self._mod.gps(host=self.host, port=str(self.port), mode=self._mod.WATCH_ENABLE)
                for report in session:
                    if report.get("class") != "TPV" or int(report.get("mode", 0)) < 2 or "time" not in report:
                        continue
                    t = datetime.fromisoformat(str(report["time"]).replace("Z", "+00:00"))
                    yield Fix(t=t, lat=float(report["lat"]), lon=float(report["lon"]),
                              alt_m=_opt_float(report.get("alt")), source="gpsd")
                    n += 1
                    if max_fixes is not None and n >= max_fixes:
                        return
            else:
                import time as _time

                self._mod.connect(host=self.host, port=self.port)
                last = None
                while max_fixes is None or n < max_fixes:
                    p = self._mod.get_current()
                    if p.mode >= 2 and p.time and p.time != last:
                        last = p.time
                        t = datetime.fromisoformat(str(p.time).replace("Z", "+00:00"))
                        yield Fix(t=t, lat=float(p.lat), lon=float(p.lon), alt_m=_opt_float(getattr(p, "alt", None)), source="gpsd")
                        n += 1
                    _time.sleep(0.2)
        except (ConnectionError, OSError) as exc:
            from detector.core.errors import DeviceError

            raise DeviceError(f"cannot reach gpsd at {self.host}:{self.port}: {exc}") from None


# ---------------------------------------------------------------------------------------- dispatch

def parse_gps_spec(spec: str, *, date: Date | str | None = None) -> GpsTrack | GpsdClient:
    """Open a GPS spec: a NMEA log (``.nmea``/``.log``/``.txt``), a GPX file (``.gpx``),
    ``fixed:LAT,LON`` (degrees) or ``gpsd:[HOST[:PORT]]``. Files give a :class:`GpsTrack` whose
    ``report`` says what was skipped; ``gpsd:`` gives a :class:`GpsdClient`."""
    spec = spec.strip()
    low = spec.lower()
    if low.startswith("fixed:"):
        body = spec[6:]
        parts = [p.strip() for p in body.split(",")]
        try:
            if len(parts) != 2:
                raise ValueError
            lat, lon = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError(f"fixed GPS position must be fixed:LAT,LON in degrees (e.g. fixed:50.0,10.0), got {spec!r}") from None
        return GpsTrack.fixed_position(lat, lon, name=spec)
    if low.startswith("gpsd:") or low == "gpsd":
        rest = spec[5:] if low.startswith("gpsd:") else ""
        host, port = "127.0.0.1", 2947
        if rest:
            h, _, p = rest.rpartition(":") if ":" in rest else (rest, "", "")
            host = h or host
            if p:
                try:
                    port = int(p)
                except ValueError:
                    raise InputError(f"gpsd spec must be gpsd:HOST:PORT, got {spec!r}") from None
        return GpsdClient(host, port)
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == ".gpx":
        fixes, report = read_gpx(path)
    elif suffix in NMEA_EXTENSIONS:
        fixes, report = read_nmea(path, date=date)
    else:
        raise InputError(f"unknown GPS spec {spec!r}: use a .nmea/.log/.txt NMEA log, a .gpx file, fixed:LAT,LON or gpsd:")
    return GpsTrack.from_fixes(fixes, report=report, name=path.name)
