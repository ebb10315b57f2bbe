"""Direction-finder bearings from files: KrakenSDR DoA lines and plain CSV / JSON (issue #22 item 1).

Two formats, told apart by content (:func:`read_bearings`, ``fmt="auto"``):

* **KrakenSDR** ("Kraken App" format). The DSP software ``krakensdr_doa`` writes one line per
  VFO and DoA update, to the web server's DoA file and, with data recording on, appended to
  ``mydata.csv``. Source: ``krakenrf/krakensdr_doa``, ``_sdr/_signal_processing/
  kraken_sdr_signal_processor.py``, ``SignalProcessor.run`` (commit 71c319b, 2025-02), which
  writes ``f"{timestamp}, {360 - theta_0}, {confidence}, {max_power_level}, {freq},
  {DOA_ant_alignment}, {latency}, {station_id}, {latitude}, {longitude}, {heading}, {heading},
  GPS, R, R, R, R"`` and then the DoA pseudo-spectrum, one ``, {:.2f}`` per angle. The columns:

  ====  ==========================================================================
   0    time stamp, ms since the Unix epoch (the DAQ frame's ``iq_header.time_stamp``)
   1    bearing, degrees clockwise from the array's 0° direction (360 − θ₀, θ₀ the DoA
        counter-clockwise); the Android app adds the vehicle's heading (KrakenSDR wiki,
        "06. Android App Guide": the app "receives bearing data relative to the antenna array")
   2    confidence: the DoA pseudo-spectrum's peak-to-average power ratio, dB
        (``calculate_doa_papr``)
   3    the channel's peak power, dB (floored at −100)
   4    the VFO frequency, Hz
   5    array type (UCA, ULA, …)      6  latency, ms      7  station id
   8-9  latitude, longitude, degrees (0, 0 without a GPS fix)
   10   heading, degrees clockwise from true north (GPS track, or the fixed heading)
   11   the same heading (reserved for a compass), 12 "GPS", 13–16 reserved ("R")
   17…  the DoA pseudo-spectrum (dB, one value per angle step)
  ====  ==========================================================================

  A line with latitude and longitude both 0 has no fix and is skipped (counted). The
  confidence maps to a quality q = min(1, confidence / :data:`KRAKEN_FULL_CONFIDENCE_DB`), an
  assumption of this module (a sharp single peak over 360 angles has a PAPR near 10–25 dB, a
  flat spectrum near 0 dB); a confidence ≤ 0 gives q = 0 (the localizer drops the bearing).

* **Plain CSV** (a header naming the columns) or **JSON** (an array of objects, or one object
  per line) with ``time`` (ISO 8601 with Z or an offset, or POSIX seconds), ``lat``, ``lon``
  (degrees), ``heading`` (degrees clockwise from true north; empty or null: the bearing is
  already true), ``bearing_deg`` (clockwise from the heading, as a vehicle-mounted array reports
  it; from true north where there is no heading), ``confidence`` (0–1, 1 best; empty or absent:
  1) and ``frequency`` (Hz; ``frequency_hz`` is accepted too; empty: unknown).

Every malformed value is an :class:`~detector.core.errors.InputError` that starts with
``FILE:LINE:``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from detector.core.errors import InputError
from detector.core.textfile import read_text

#: A KrakenSDR confidence (DoA peak-to-average ratio, dB) at or above this is full quality (q = 1).
KRAKEN_FULL_CONFIDENCE_DB = 10.0
KRAKEN_MIN_FIELDS = 17
PLAIN_REQUIRED = ("time", "lat", "lon", "bearing_deg")
_EMPTY = {"", "nan", "na", "n/a", "null", "none", "-"}


@dataclass(frozen=True)
class BearingReadings:
    """Bearings as read, one entry per line kept; arrays of shape (N,), float64 unless stated.

    ``time_s`` POSIX seconds (UTC); ``lat``/``lon`` degrees (WGS84); ``heading_deg`` the vehicle's
    heading, degrees clockwise from true north (NaN: ``bearing_deg`` is already true);
    ``bearing_deg`` as the direction finder reported it, degrees clockwise from the heading (or
    from true north where the heading is NaN), in [0, 360); ``quality`` in [0, 1] (1 best, from the
    confidence); ``confidence`` as written (KrakenSDR: dB); ``frequency_hz`` (NaN: unknown);
    ``line`` (int64) the 1-based line of each entry in ``path``; ``n_skipped``: lines without a
    GPS fix; ``fmt``: "kraken" or "plain".
    """

    time_s: NDArray[np.float64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    heading_deg: NDArray[np.float64]
    bearing_deg: NDArray[np.float64]
    quality: NDArray[np.float64]
    confidence: NDArray[np.float64]
    frequency_hz: NDArray[np.float64]
    line: NDArray[np.int64]
    path: str
    fmt: str
    n_skipped: int = 0

    @property
    def n(self) -> int:
        return int(self.time_s.size)

    @property
    def relative(self) -> NDArray[np.bool_]:
        """Entries whose bearing is relative to the heading (the heading's error applies)."""
        return np.isfinite(self.heading_deg)

    def true_bearing_deg(self) -> NDArray[np.float64]:
        """Bearing from true north, degrees clockwise in [0, 360): heading + bearing where relative."""
        h = np.where(self.relative, self.heading_deg, 0.0)
        return (h + self.bearing_deg) % 360.0

    def select(self, mask: NDArray[np.bool_]) -> "BearingReadings":
        m = np.asarray(mask, bool)
        return BearingReadings(self.time_s[m], self.lat[m], self.lon[m], self.heading_deg[m], self.bearing_deg[m],
                               self.quality[m], self.confidence[m], self.frequency_hz[m], self.line[m], self.path,
                               self.fmt, self.n_skipped)

    def frequencies_hz(self, tolerance_hz: float = 12.5e3) -> list[float]:
        """The distinct known frequencies (Hz), entries within ``tolerance_hz`` of each other merged."""
        f = np.sort(self.frequency_hz[np.isfinite(self.frequency_hz)])
        out: list[float] = []
        for v in f:
            if not out or v - out[-1] > tolerance_hz:
                out.append(float(v))
        return out


def read_bearings(path: str | Path, fmt: str = "auto") -> BearingReadings:
    """Read a bearings file: ``fmt`` "kraken", "plain" (CSV or JSON) or "auto" (JSON when the text
    starts with ``[`` or ``{``; CSV with a header that names ``bearing_deg``: plain; otherwise a
    KrakenSDR line format). Raises InputError for a missing, empty or malformed file
    (``FILE:LINE: what``) and for a file without any usable bearing."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"bearings file not found: {p}")
    text = read_text(p, "bearings file")
    if not text.strip():
        raise InputError(f"bearings file {p} is empty")
    return parse_bearings(text, str(p), fmt)


def parse_bearings(text: str, name: str = "bearings", fmt: str = "auto", *, header: str | None = None,
                   allow_empty: bool = False) -> BearingReadings:
    """Bearings from ``text`` (the content of a bearings file, or lines appended to one; ``name``
    is used in messages as ``NAME:LINE:``). ``fmt`` as :func:`read_bearings`; ``header``: the plain
    CSV header line for ``text`` that holds only data lines (a tailed file). ``allow_empty``: no
    usable bearing (every KrakenSDR line without a fix) gives an empty result instead of the
    error. Raises InputError like :func:`read_bearings`."""
    p = Path(name)
    if header is not None:
        text = header.rstrip("\r\n") + "\n" + text
    head = text.lstrip()
    if not head:
        raise InputError(f"{p.name}: no bearing (empty)")
    if fmt not in ("auto", "kraken", "plain"):
        raise ValueError(f"fmt must be auto, kraken or plain, got {fmt!r}")
    if fmt == "auto":
        fmt = detect_format(text)
    skipped = 0
    if fmt == "kraken":
        rows, skipped = _kraken_rows(text, p)
    else:
        rows = _json_rows(text, p) if head[0] in "[{" else _csv_rows(text, p)
    if not rows:
        if allow_empty:
            return _empty(str(name), fmt, skipped)
        raise InputError(f"{p.name}: no bearing with a GPS fix" + (f" ({skipped} KrakenSDR lines at 0, 0)" if skipped else ""))
    cols = list(zip(*rows))
    return BearingReadings(*(np.asarray(c, float) for c in cols[:8]), line=np.asarray(cols[8], np.int64), path=str(name),
                           fmt=fmt, n_skipped=skipped)


def detect_format(text: str) -> str:
    """"plain" for JSON (text starting with ``[`` or ``{``) or a CSV whose first line names
    ``bearing_deg``; otherwise "kraken"."""
    head = text.lstrip()
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    return "plain" if head[:1] in ("[", "{") or "bearing_deg" in first.lower() else "kraken"


def bearings_from_records(records: list[dict], name: str = "request") -> BearingReadings:
    """Bearings from plain JSON objects (the fields of the plain format; ``frequency_hz`` and
    ``heading_deg`` accepted too). Raises InputError (``NAME:K:`` with K the 1-based item) for a
    malformed one; nothing is kept then."""
    p = Path(name)
    rows = []
    for k, obj in enumerate(records, start=1):
        if not isinstance(obj, dict):
            raise InputError(f"{p.name}:{k}: each bearing is a JSON object with {', '.join(PLAIN_REQUIRED)}")
        missing = [c for c in PLAIN_REQUIRED if obj.get(c) is None]
        if missing:
            raise InputError(f"{p.name}:{k}: the bearing lacks {', '.join(missing)}")
        rec = {str(key).lower(): ("" if v is None else str(v)) for key, v in obj.items()}
        rows.append(_plain_row(rec, p, k))
    if not rows:
        return _empty(name, "plain", 0)
    cols = list(zip(*rows))
    return BearingReadings(*(np.asarray(c, float) for c in cols[:8]), line=np.asarray(cols[8], np.int64), path=name,
                           fmt="plain")


def _empty(name: str, fmt: str, skipped: int) -> BearingReadings:
    z = np.zeros(0)
    return BearingReadings(z, z, z, z, z, z, z, z, np.zeros(0, np.int64), name, fmt, skipped)


#: one entry: (time_s, lat, lon, heading_deg, bearing_deg, quality, confidence, frequency_hz, line)
_Row = tuple


def _kraken_rows(text: str, p: Path) -> tuple[list[_Row], int]:
    rows: list[_Row] = []
    skipped = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        f = [v.strip() for v in raw.split(",")]
        if len(f) < KRAKEN_MIN_FIELDS:
            raise InputError(f"{p.name}:{lineno}: a KrakenSDR DoA line has at least {KRAKEN_MIN_FIELDS} comma-separated "
                             f"fields (time ms, bearing, confidence, power, frequency, …, lat, lon, heading), found {len(f)}")
        t_ms = _num(f[0], p, lineno, "time stamp (ms)")
        bearing = _num(f[1], p, lineno, "bearing")
        conf = _num(f[2], p, lineno, "confidence")
        freq = _num(f[4], p, lineno, "frequency")
        lat = _num(f[8], p, lineno, "latitude")
        lon = _num(f[9], p, lineno, "longitude")
        heading = _num(f[10], p, lineno, "heading")
        _check(p, lineno, t_ms=t_ms, bearing=bearing, conf=conf, lat=lat, lon=lon, heading=heading)
        if t_ms < 1e11:
            raise InputError(f"{p.name}:{lineno}: time stamp {f[0]!r} is not in milliseconds since 1970 "
                             "(KrakenSDR writes e.g. 1717660800123)")
        if lat == 0.0 and lon == 0.0:
            skipped += 1
            continue
        q = min(1.0, max(conf, 0.0) / KRAKEN_FULL_CONFIDENCE_DB)
        rows.append((t_ms / 1000.0, lat, lon, heading % 360.0, bearing % 360.0, q, conf, freq, lineno))
    return rows, skipped


def _csv_rows(text: str, p: Path) -> list[_Row]:
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader([ln for _, ln in lines])
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in PLAIN_REQUIRED if c not in header]
    if missing:
        raise InputError(f"{p.name}:{lines[0][0]}: the header needs {', '.join(PLAIN_REQUIRED)} "
                         f"(missing {', '.join(missing)}; found {', '.join(header)})")
    rows = []
    for (lineno, _), values in zip(lines[1:], reader):
        if len(values) > len(header):
            raise InputError(f"{p.name}:{lineno}: {len(values)} fields for a header of {len(header)}")
        rec = dict(zip(header, [v.strip() for v in values]))
        rows.append(_plain_row(rec, p, lineno))
    return rows


def _json_rows(text: str, p: Path) -> list[_Row]:
    items: list[tuple[int, object]] = []
    dec = json.JSONDecoder()
    s = text.lstrip()
    off = len(text) - len(s)
    try:
        if s[0] == "[":
            i = off + 1
            while True:
                i = _skip(text, i)
                if i < len(text) and text[i] == "]":
                    break
                obj, j = dec.raw_decode(text, i)
                items.append((text.count("\n", 0, i) + 1, obj))
                i = _skip(text, j)
                if i < len(text) and text[i] == ",":
                    i += 1
                elif i >= len(text) or text[i] != "]":
                    raise json.JSONDecodeError("expected ',' or ']'", text, i)
        else:
            for lineno, ln in enumerate(text.splitlines(), start=1):
                if ln.strip():
                    items.append((lineno, json.loads(ln)))
    except json.JSONDecodeError as e:
        where = e.lineno if s[0] == "[" else lineno
        raise InputError(f"{p.name}:{where}: not valid JSON ({e.msg})") from None
    rows = []
    for lineno, obj in items:
        if not isinstance(obj, dict):
            raise InputError(f"{p.name}:{lineno}: each bearing is a JSON object with {', '.join(PLAIN_REQUIRED)}")
        missing = [c for c in PLAIN_REQUIRED if c not in obj]
        if missing:
            raise InputError(f"{p.name}:{lineno}: the bearing lacks {', '.join(missing)}")
        rec = {str(k).lower(): ("" if v is None else str(v)) for k, v in obj.items()}
        rows.append(_plain_row(rec, p, lineno))
    return rows


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _plain_row(rec: dict, p: Path, lineno: int) -> tuple:
    t = _time(rec.get("time", ""), p, lineno)
    lat = _num(rec.get("lat", ""), p, lineno, "lat")
    lon = _num(rec.get("lon", ""), p, lineno, "lon")
    bearing = _num(rec.get("bearing_deg", ""), p, lineno, "bearing_deg")
    heading = _num(rec.get("heading", rec.get("heading_deg", "")), p, lineno, "heading", empty=math.nan)
    conf = _num(rec.get("confidence", ""), p, lineno, "confidence", empty=1.0)
    freq = _num(rec.get("frequency", rec.get("frequency_hz", "")), p, lineno, "frequency", empty=math.nan)
    _check(p, lineno, bearing=bearing, lat=lat, lon=lon, heading=heading)
    if not 0.0 <= conf <= 1.0:
        raise InputError(f"{p.name}:{lineno}: confidence {conf:g} is outside 0..1 (for KrakenSDR's dB confidence, "
                         "give its own DoA lines)")
    if math.isfinite(freq) and freq <= 0:
        raise InputError(f"{p.name}:{lineno}: frequency {freq:g} Hz is not positive")
    return (t, lat, lon, heading % 360.0 if math.isfinite(heading) else math.nan, bearing % 360.0, conf, conf, freq, lineno)


def _num(text: str, p: Path, lineno: int, what: str, empty: float | None = None) -> float:
    t = str(text).strip()
    if t.lower() in _EMPTY:
        if empty is not None:
            return empty
        raise InputError(f"{p.name}:{lineno}: {what} is empty")
    try:
        v = float(t)
    except ValueError:
        raise InputError(f"{p.name}:{lineno}: {what} {t!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{p.name}:{lineno}: {what} {t!r} is not finite")
    return v


def _check(p: Path, lineno: int, **v: float) -> None:
    if "lat" in v and not -90.0 <= v["lat"] <= 90.0:
        raise InputError(f"{p.name}:{lineno}: latitude {v['lat']:g} is outside -90..90")
    if "lon" in v and not -180.0 <= v["lon"] <= 180.0:
        raise InputError(f"{p.name}:{lineno}: longitude {v['lon']:g} is outside -180..180")
    for k in ("bearing", "heading"):
        if k in v and math.isfinite(v[k]) and not -360.0 <= v[k] <= 720.0:
            raise InputError(f"{p.name}:{lineno}: {k} {v[k]:g}° is not an angle in degrees")


def _time(text: str, p: Path, lineno: int) -> float:
    t = str(text).strip()
    if t.lower() in _EMPTY:
        raise InputError(f"{p.name}:{lineno}: time is empty")
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t)
    except ValueError:
        raise InputError(f"{p.name}:{lineno}: time {t!r} is neither ISO 8601 (e.g. 2024-05-06T09:00:00Z) "
                         "nor POSIX seconds") from None
    if dt.tzinfo is None:
        raise InputError(f"{p.name}:{lineno}: time {t!r} has no time zone; add Z (UTC) or an offset")
    return dt.astimezone(timezone.utc).timestamp()


__all__ = ["BearingReadings", "read_bearings", "parse_bearings", "bearings_from_records", "detect_format",
           "KRAKEN_FULL_CONFIDENCE_DB"]
