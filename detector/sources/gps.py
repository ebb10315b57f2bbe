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

from datetime import date as Date
from datetime import datetime
from pathlib import Path
from typing import Iterator


from detector.core.errors import InputError

from detector.sources._gps_logs import _opt_float, _read_text, read_gpx, read_nmea  # noqa: F401
from detector.sources._gps_track import (DEFAULT_MAX_AGE_S, GPS_EPOCH, Fix, GpsReadReport, GpsTrack,  # noqa: F401
                                         _check_latlon)

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

NMEA_EXTENSIONS = (".nmea", ".log", ".txt")


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
