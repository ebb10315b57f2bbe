"""GPS logs: NMEA 0183 (``pynmea2``) and GPX (``gpxpy``) into :class:`~detector.sources.gps.Fix` lists."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, time as Time, timedelta, timezone
from pathlib import Path
from typing import Iterable


from detector.core.errors import InputError

from detector.sources._gps_track import GPS_EPOCH, Fix, GpsReadReport, GpsTrack, _check_latlon, _DAY_S  # noqa: F401


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
