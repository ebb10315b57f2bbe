"""Exports of alerts for GIS tools and for the file: GeoJSON, KML, and the evidence pack.

* :func:`alerts_geojson` — a GeoJSON FeatureCollection (RFC 7946): one Point feature per located
  alert (``kind: "alert"``), and optionally its 95 % error ellipse as a Polygon feature
  (``kind: "error_ellipse_95"``, counter-clockwise ring, closed).
* :func:`alerts_kml` — the same as KML 2.2 for Google Earth (placemarks styled by severity, the
  ellipse as a polygon), built with :mod:`xml.etree.ElementTree`.
* :func:`evidence_pack` — one zip per alert: the alert, its location and handling history (JSON),
  the SigMF snippet and WAV audio from the store, spectrum and waterfall PNGs when given, the
  readings (CSV), and ``MANIFEST.sha256`` (``sha256sum -c`` format) over every other file.

Coordinates are WGS84 degrees, longitude first in GeoJSON and KML (as both formats define).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import zipfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from dashboards._common import alert_dict, alert_dicts, alert_label
from detector.core.timefmt import utc_iso

__all__ = [
    "GEOJSON_MEDIA_TYPE",
    "KML_MEDIA_TYPE",
    "KML_NS",
    "alerts_geojson",
    "alerts_kml",
    "ellipse_ring",
    "evidence_pack",
    "readings_csv",
]

GEOJSON_MEDIA_TYPE = "application/geo+json"
KML_MEDIA_TYPE = "application/vnd.google-earth.kml+xml"
KML_NS = "http://www.opengis.net/kml/2.2"
#: alert fields copied into GeoJSON properties / KML ExtendedData
_PROPS = ("id", "site", "status", "severity", "center_hz", "bandwidth_hz", "classification", "first_seen",
          "last_seen", "snr_db", "excess_db", "peak_dbfs", "bursts", "track_id", "run_id", "version")
_KML_COLORS = {"high": "ff2827d6", "medium": "ff0e7fff", "low": "ffb4771f"}  # aabbggrr


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return utc_iso(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    return v


def _location(a: Mapping) -> dict | None:
    loc = a.get("location")
    if not isinstance(loc, Mapping) or loc.get("lat") is None or loc.get("lon") is None:
        return None
    lat, lon = float(loc["lat"]), float(loc["lon"])
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return dict(loc)


def ellipse_ring(location: Mapping, n_points: int = 72) -> list[tuple[float, float]]:
    """The 95 % region of a location as a closed, counter-clockwise ring of (lon, lat) points.

    A located estimate gives its ellipse (``angle_deg`` = bearing of the major axis, clockwise from
    north); a not-localizable one the circle of ``radius_m``. Empty when there is no finite size.
    """
    from detector.localization import LocalFrame

    ell = location.get("error_ellipse_m") or {}
    a, b, ang = ell.get("semi_major"), ell.get("semi_minor"), float(ell.get("angle_deg") or 0.0)
    if location.get("status") != "located" and location.get("radius_m"):
        a = b = location["radius_m"]
        ang = 0.0
    if a is None or b is None or not (math.isfinite(float(a)) and math.isfinite(float(b))) or float(a) <= 0:
        return []
    a, b = float(a), float(b)
    t = np.linspace(0.0, 2.0 * math.pi, n_points, endpoint=False)
    th = math.radians(ang)
    ux, uy = math.sin(th), math.cos(th)  # major axis (east, north)
    vx, vy = -uy, ux  # minor axis, 90° counter-clockwise from the major: the ring turns counter-clockwise
    x = a * np.cos(t) * ux + b * np.sin(t) * vx
    y = a * np.cos(t) * uy + b * np.sin(t) * vy
    lat, lon = LocalFrame(float(location["lat"]), float(location["lon"])).to_geodetic(x, y)
    ring = [(round(float(lo), 7), round(float(la), 7)) for la, lo in zip(lat, lon)]
    return ring + ring[:1]


def _props(a: Mapping) -> dict:
    out = {k: _jsonable(a.get(k)) for k in _PROPS if k in a}
    loc = _location(a) or {}
    ell = loc.get("error_ellipse_m") or {}
    out.update({
        "label": alert_label(a),
        "location_status": loc.get("status"),
        "cep50_m": _jsonable(loc.get("cep50_m")),
        "ellipse_semi_major_m": _jsonable(ell.get("semi_major")),
        "ellipse_semi_minor_m": _jsonable(ell.get("semi_minor")),
        "ellipse_angle_deg": _jsonable(ell.get("angle_deg")),
        "location_method": loc.get("method"),
        "n_readings": loc.get("n_readings"),
    })
    return out


def alerts_geojson(alerts: Iterable[Any], *, ellipses: bool = True, name: str | None = None) -> dict:
    """Alerts with a location as a GeoJSON FeatureCollection (a dict; ``json.dumps`` it).

    Each located alert gives a Point feature (``properties.kind == "alert"``) with the alert's
    fields; with ``ellipses`` its 95 % region follows as a Polygon feature
    (``kind == "error_ellipse_95"``, ``alert_id``). Alerts without a location are left out and
    counted in the foreign member ``"unlocated"``.
    """
    features: list[dict] = []
    unlocated = 0
    for a in alert_dicts(alerts):
        loc = _location(a)
        if loc is None:
            unlocated += 1
            continue
        props = {"kind": "alert", **_props(a)}
        features.append({"type": "Feature", "id": a.get("id"),
                         "geometry": {"type": "Point", "coordinates": [round(float(loc["lon"]), 7), round(float(loc["lat"]), 7)]},
                         "properties": props})
        ring = ellipse_ring(loc) if ellipses else []
        if ring:
            features.append({"type": "Feature", "id": f"{a.get('id')}-ellipse",
                             "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
                             "properties": {"kind": "error_ellipse_95", "alert_id": a.get("id"),
                                            "location_status": loc.get("status"), "label": f"95 % region of {a.get('id')}"}})
    out: dict = {"type": "FeatureCollection", "features": features, "unlocated": unlocated}
    if name:
        out["name"] = name
    return out


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib) -> ET.Element:
    el = ET.SubElement(parent, f"{{{KML_NS}}}{tag}", attrib)
    if text is not None:
        el.text = text
    return el


def alerts_kml(alerts: Iterable[Any], *, ellipses: bool = True, name: str = "examwatch alerts") -> bytes:
    """Alerts with a location as a KML 2.2 document (UTF-8 bytes): a placemark per alert, styled
    by severity, with its fields as ExtendedData; the 95 % region as a polygon placemark."""
    ET.register_namespace("", KML_NS)
    kml = ET.Element(f"{{{KML_NS}}}kml")
    doc = _sub(kml, "Document")
    _sub(doc, "name", name)
    for sev, color in _KML_COLORS.items():
        st = _sub(doc, "Style", id=f"alert-{sev}")
        icon = _sub(st, "IconStyle")
        _sub(icon, "color", color)
        _sub(icon, "scale", "1.3")
        ic = _sub(icon, "Icon")
        _sub(ic, "href", "http://maps.google.com/mapfiles/kml/shapes/target.png")
        es = _sub(doc, "Style", id=f"ellipse-{sev}")
        ls = _sub(es, "LineStyle")
        _sub(ls, "color", color)
        _sub(ls, "width", "2")
        ps = _sub(es, "PolyStyle")
        _sub(ps, "color", "40" + color[2:])
    for a in alert_dicts(alerts):
        loc = _location(a)
        if loc is None:
            continue
        sev = a.get("severity") if a.get("severity") in _KML_COLORS else "medium"
        pm = _sub(doc, "Placemark", id=str(a.get("id")))
        _sub(pm, "name", f"{a.get('id')}: {alert_label(a)}")
        ell = loc.get("error_ellipse_m") or {}
        _sub(pm, "description",
             f"{alert_label(a)}; status {a.get('status')}, severity {a.get('severity')}; first seen {_jsonable(a.get('first_seen'))}, "
             f"last seen {_jsonable(a.get('last_seen'))}; location {loc.get('status')}, CEP50 {loc.get('cep50_m')} m, "
             f"95 % ellipse {ell.get('semi_major')} × {ell.get('semi_minor')} m at {ell.get('angle_deg')}°")
        ts = _sub(pm, "TimeSpan")
        if a.get("first_seen") is not None:
            _sub(ts, "begin", str(_jsonable(a.get("first_seen"))))
        if a.get("last_seen") is not None:
            _sub(ts, "end", str(_jsonable(a.get("last_seen"))))
        _sub(pm, "styleUrl", f"#alert-{sev}")
        ext = _sub(pm, "ExtendedData")
        for k, v in _props(a).items():
            d = _sub(ext, "Data", name=k)
            _sub(d, "value", "" if v is None else str(v))
        pt = _sub(pm, "Point")
        _sub(pt, "coordinates", f"{float(loc['lon']):.7f},{float(loc['lat']):.7f},0")
        ring = ellipse_ring(loc) if ellipses else []
        if ring:
            pe = _sub(doc, "Placemark", id=f"{a.get('id')}-ellipse")
            _sub(pe, "name", f"{a.get('id')} 95 % region")
            _sub(pe, "styleUrl", f"#ellipse-{sev}")
            poly = _sub(pe, "Polygon")
            _sub(poly, "tessellate", "1")
            outer = _sub(_sub(poly, "outerBoundaryIs"), "LinearRing")
            _sub(outer, "coordinates", " ".join(f"{lo:.7f},{la:.7f},0" for lo, la in ring))
    ET.indent(kml)
    return ET.tostring(kml, encoding="utf-8", xml_declaration=True)


def readings_csv(readings: Iterable[Any] | None = None, alert: Mapping | None = None) -> str:
    """CSV text of a track's readings (``t_s, lat, lon, power_db``) — or, when there are none, one
    row of the alert's measurements (first/last seen, frequency, levels, location)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    rows = []
    for r in readings or ():
        if isinstance(r, Mapping):
            rows.append((r.get("t_s"), r.get("lat"), r.get("lon"), r.get("power_db", r.get("power"))))
        elif hasattr(r, "power_db"):
            rows.append((r.t_s, r.lat, r.lon, r.power_db))
        else:
            rows.append(tuple(r[:4]))
    if rows:
        w.writerow(["t_s", "lat", "lon", "power_db"])
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
        return buf.getvalue()
    a = dict(alert or {})
    loc = _location(a) or {}
    cols = ["alert_id", "track_id", "first_seen", "last_seen", "first_seen_s", "last_seen_s", "center_hz", "bandwidth_hz",
            "peak_dbfs", "snr_db", "excess_db", "bursts", "lat", "lon", "location_status", "cep50_m"]
    w.writerow(cols)
    vals = {**{k: a.get(k) for k in cols}, "alert_id": a.get("id"), "lat": loc.get("lat"), "lon": loc.get("lon"),
            "location_status": loc.get("status"), "cep50_m": loc.get("cep50_m")}
    w.writerow(["" if vals[k] is None else _jsonable(vals[k]) for k in cols])
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def evidence_pack(
    store: Any,
    alert_id: str,
    *,
    spectrum_png: bytes | None = None,
    waterfall_png: bytes | None = None,
    map_png: bytes | None = None,
    readings: Iterable[Any] | None = None,
) -> bytes:
    """The evidence of one alert as zip bytes.

    Files (inside the folder ``<alert id>/``): ``alert.json``, ``history.json``,
    ``location.json`` (when located), every evidence file of the store under its own name (the
    SigMF snippet ``*.sigmf-meta``/``*.sigmf-data``, ``audio.wav`` for NFM), ``spectrum.png``,
    ``waterfall.png`` and ``map.png`` when given, ``readings.csv`` (``readings``, else the
    ``readings`` of the last track event, else the alert's own row) and ``MANIFEST.sha256`` with
    the SHA-256 of every other file. A store file whose bytes do not match its recorded SHA-256
    raises ``ValueError``.

    Raises ``KeyError`` for an unknown alert.
    """
    got = store.get(alert_id)
    if got is None:
        raise KeyError(alert_id)
    a = alert_dict(got)
    files: dict[str, bytes] = {"alert.json": _json_bytes(a)}
    history = store.history(alert_id) if hasattr(store, "history") else []
    files["history.json"] = _json_bytes([h.model_dump() if hasattr(h, "model_dump") else h for h in history])
    if _location(a) is not None:
        files["location.json"] = _json_bytes(a["location"])
    for ev in a.get("evidence") or []:
        name = ev["name"] if isinstance(ev, Mapping) else ev.name
        item = store.evidence(alert_id, name)
        if item is None:
            continue
        data, info = item
        want = info.sha256 if hasattr(info, "sha256") else info["sha256"]
        if hashlib.sha256(data).hexdigest() != want:
            raise ValueError(f"evidence {name} of alert {alert_id} does not match its recorded SHA-256")
        files[name] = data
    for name, png in (("spectrum.png", spectrum_png), ("waterfall.png", waterfall_png), ("map.png", map_png)):
        if png:
            files[name] = png
    if readings is None and hasattr(store, "track_summary"):
        summary = store.track_summary(alert_id) or {}
        readings = summary.get("readings") if isinstance(summary, Mapping) else None
    files["readings.csv"] = readings_csv(readings, a).encode("utf-8")
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["MANIFEST.sha256"] = manifest.encode("ascii")
    buf = io.BytesIO()
    stamp = _zip_time(a)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            zi = zipfile.ZipInfo(f"{alert_id}/{name}", date_time=stamp)
            zi.compress_type = zipfile.ZIP_STORED if name.endswith((".png", ".wav", ".sigmf-data")) else zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, files[name])
    return buf.getvalue()


def _zip_time(a: Mapping) -> tuple[int, int, int, int, int, int]:
    """Entries are dated by the alert's last change (UTC), so the same alert gives the same zip."""
    t = a.get("updated_at") or a.get("last_seen")
    if isinstance(t, str):
        t = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if not isinstance(t, datetime):
        return (1980, 1, 1, 0, 0, 0)
    t = (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)
