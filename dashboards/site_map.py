"""The map: the vehicle's route, readings coloured by received power, the estimated transmitter with
its 95 % region, and the site's buildings — in local metres (east, north) around the site, with
latitude/longitude on the secondary axes. No internet tiles.

Artists carry ``gid`` values: ``route``, ``readings``, ``building``, ``estimate``,
``ellipse-95`` (a located estimate's 95 % ellipse) or ``coarse-region`` (the radius of a
not-localizable answer), ``truth`` (a known true position, e.g. from a simulation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Polygon

from dashboards._common import alert_dict, alert_label, new_figure

__all__ = ["site_map_figure", "readings_arrays", "route_arrays", "ellipse_patch_params"]


def _latlon_pairs(points: Any) -> np.ndarray:
    """(n, 2) lat, lon from pairs, dicts with lat/lon, or objects with .lat/.lon."""
    if points is None:
        return np.empty((0, 2))
    if isinstance(points, Mapping) and "lat" in points and "lon" in points:
        return np.column_stack([np.asarray(points["lat"], float), np.asarray(points["lon"], float)])
    out = []
    for p in points:
        if isinstance(p, Mapping):
            out.append((p.get("lat"), p.get("lon")))
        elif hasattr(p, "lat"):
            out.append((p.lat, p.lon))
        else:
            out.append((p[0], p[1]))
    a = np.asarray([(np.nan if a is None else a, np.nan if b is None else b) for a, b in out], dtype=float)
    return a.reshape(-1, 2)


def route_arrays(route: Any) -> np.ndarray:
    """The route as (n, 2) lat, lon: pairs, ``{"lat": [...], "lon": [...]}``, or fixes with .lat/.lon."""
    a = _latlon_pairs(route)
    return a[np.all(np.isfinite(a), axis=1)]


def readings_arrays(readings: Any) -> np.ndarray:
    """Readings as (n, 3) lat, lon, power_db from dicts/objects (``lat``, ``lon``, ``power_db``) or triples."""
    if readings is None:
        return np.empty((0, 3))
    out = []
    for r in readings:
        if isinstance(r, Mapping):
            out.append((r.get("lat"), r.get("lon"), r.get("power_db", r.get("power"))))
        elif hasattr(r, "power_db"):
            out.append((r.lat, r.lon, r.power_db))
        else:
            out.append((r[0], r[1], r[2]))
    a = np.asarray([[np.nan if v is None else v for v in row] for row in out], dtype=float).reshape(-1, 3)
    return a[np.all(np.isfinite(a), axis=1)]


def ellipse_patch_params(semi_major: float, semi_minor: float, angle_deg: float) -> tuple[float, float, float]:
    """matplotlib :class:`~matplotlib.patches.Ellipse` (width, height, angle) of a 95 % ellipse whose
    major axis has bearing ``angle_deg`` (clockwise from north) on axes of east (x) and north (y):
    width along the major axis, angle counter-clockwise from east = 90° − bearing."""
    return 2.0 * semi_major, 2.0 * semi_minor, 90.0 - angle_deg


def _location_of(location: Any) -> dict | None:
    if location is None:
        return None
    if hasattr(location, "to_dict"):
        return location.to_dict()
    return dict(location)


def site_map_figure(
    *,
    route: Any = None,
    readings: Any = None,
    location: Any = None,
    buildings: Sequence[Sequence[tuple[float, float]]] | None = None,
    origin: tuple[float, float] | None = None,
    alert: Any = None,
    truth: tuple[float, float] | None = None,
    unit: str = "dBFS",
    title: str | None = None,
    margin_m: float = 40.0,
) -> Figure:
    """Route, readings, estimate with its 95 % region and buildings, in metres around ``origin``.

    Parameters
    ----------
    route : sequence of (lat, lon), optional
        The vehicle's positions in time order (degrees, WGS84).
    readings : sequence of dict/Reading or (lat, lon, power_db), optional
        Received power of the track at positions: dots coloured by power.
    location : dict or LocationEstimate, optional
        ``lat``, ``lon``, ``error_ellipse_m`` {``semi_major``, ``semi_minor``, ``angle_deg``
        (bearing of the major axis, clockwise from north)}, ``status``, ``cep50_m``,
        ``radius_m``. Defaults to ``alert["location"]``.
    buildings : sequence of polygons of (lat, lon)
        Site footprints.
    origin : (lat, lon), optional
        Centre of the local frame; default the estimate, else the middle of what is drawn.
    alert : AlertPublic or dict, optional
        Labels the estimate (frequency, class, excess).
    truth : (lat, lon), optional
        A known true position (simulation ground truth), drawn as a cross.

    Returns
    -------
    Figure
        Equal-aspect axes: east and north (m) on the primary axes, longitude and latitude
        (degrees) on the secondary (top and right) axes.
    """
    from detector.localization import LocalFrame

    al = alert_dict(alert) if alert is not None else None
    loc = _location_of(location if location is not None else (al or {}).get("location"))
    rt = route_arrays(route)
    rd = readings_arrays(readings)
    blds = [np.asarray(b, dtype=float).reshape(-1, 2) for b in (buildings or []) if len(b) >= 3]
    if origin is None:
        if loc is not None and loc.get("lat") is not None:
            origin = (float(loc["lat"]), float(loc["lon"]))
        else:
            pts = [a for a in (rt, rd[:, :2], *blds) if a.size]
            if truth is not None:
                pts.append(np.asarray([truth], float))
            if not pts:
                raise ValueError("the map needs a route, readings, a location, buildings or an origin")
            allp = np.vstack(pts)
            origin = (float(np.mean([allp[:, 0].min(), allp[:, 0].max()])), float(np.mean([allp[:, 1].min(), allp[:, 1].max()])))
    frame = LocalFrame(*origin)

    fig = new_figure(9, 9)
    ax = fig.add_subplot()
    ax.set_aspect("equal", adjustable="box")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []

    for i, b in enumerate(blds):
        x, y = frame.to_enu(b[:, 0], b[:, 1])
        ax.add_patch(Polygon(np.column_stack([x, y]), closed=True, fc="#c8c8c8", ec="#404040", lw=1.2,
                             label="building" if i == 0 else None, gid="building", zorder=1))
        xs.append(x)
        ys.append(y)
    if rt.size:
        x, y = frame.to_enu(rt[:, 0], rt[:, 1])
        ax.plot(x, y, color="#555555", lw=1.3, alpha=0.8, label="vehicle route", gid="route", zorder=2)
        ax.plot(x[-1:], y[-1:], marker="s", color="#222222", ms=7, ls="none", label="vehicle (last)", zorder=5)
        xs.append(x)
        ys.append(y)
    if rd.size:
        x, y = frame.to_enu(rd[:, 0], rd[:, 1])
        order = np.argsort(rd[:, 2])  # strongest drawn last (on top)
        sc = ax.scatter(x[order], y[order], c=rd[order, 2], cmap="plasma", s=22, edgecolors="none", zorder=3,
                        label="readings", gid="readings")
        cb = fig.colorbar(sc, ax=ax, shrink=0.8, pad=0.02)
        cb.set_label(f"received power ({unit})")
        xs.append(x)
        ys.append(y)
    if truth is not None:
        tx, ty = frame.to_enu(np.array([truth[0]]), np.array([truth[1]]))
        ax.plot(tx, ty, marker="X", color="#00a000", mec="black", ms=13, ls="none", label="true position",
                gid="truth", zorder=7)
        xs.append(tx)
        ys.append(ty)
    if loc is not None and loc.get("lat") is not None and loc.get("lon") is not None:
        ex, ey = frame.to_enu(np.array([float(loc["lat"])]), np.array([float(loc["lon"])]))
        ex, ey = float(ex[0]), float(ey[0])
        located = loc.get("status") == "located"
        ell = loc.get("error_ellipse_m") or {}
        a, b = ell.get("semi_major"), ell.get("semi_minor")
        if located and a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            w, h, ang = ellipse_patch_params(float(a), float(b), float(ell.get("angle_deg") or 0.0))
            ax.add_patch(Ellipse((ex, ey), w, h, angle=ang, fc="#d62728", alpha=0.18, ec="#d62728", lw=2,
                                 label="95 % region", gid="ellipse-95", zorder=4))
            r = float(a)
        else:
            r = float(loc.get("radius_m") or a or 0.0) if (loc.get("radius_m") or a) else 0.0
            if r > 0 and math.isfinite(r):
                ax.add_patch(Ellipse((ex, ey), 2 * r, 2 * r, fc="none", ec="#ff7f0e", lw=2, ls="--",
                                     label="coarse region (not localizable)", gid="coarse-region", zorder=4))
        ax.plot([ex], [ey], marker="*", color="#d62728" if located else "#ff7f0e", mec="black", ms=20, ls="none",
                label="estimated transmitter" if located else "coarse position", gid="estimate", zorder=8)
        text = (alert_label(al) + "\n" if al else "") + (
            f"{float(loc['lat']):.6f}, {float(loc['lon']):.6f}" +
            (f"\nCEP50 {float(loc['cep50_m']):.0f} m" if loc.get("cep50_m") is not None else "") +
            ("" if located else "\nnot localizable"))
        ax.annotate(text, (ex, ey), textcoords="offset points", xytext=(14, 14), fontsize=9, zorder=9,
                    bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#d62728", "alpha": 0.9})
        if math.isfinite(r) and r > 0:
            xs.append(np.array([ex - r, ex + r]))
            ys.append(np.array([ey - r, ey + r]))
        xs.append(np.array([ex]))
        ys.append(np.array([ey]))

    if xs:
        allx, ally = np.concatenate(xs), np.concatenate(ys)
        x0, x1 = float(allx.min()) - margin_m, float(allx.max()) + margin_m
        y0, y1 = float(ally.min()) - margin_m, float(ally.max()) + margin_m
        # square view (equal metres both ways): widen the shorter side about its centre
        half = max(x1 - x0, y1 - y0) / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.grid(alpha=0.3)

    # latitude/longitude ticks: the local frame is linear to well under a metre over a few km
    lat0, lon0 = frame.lat0, frame.lon0
    la1, lo1 = frame.to_geodetic(np.array([0.0, 1000.0]), np.array([1000.0, 0.0]))
    deg_per_m_lat = (la1[0] - lat0) / 1000.0
    deg_per_m_lon = (lo1[1] - lon0) / 1000.0
    top = ax.secondary_xaxis("top", functions=(lambda x: lon0 + x * deg_per_m_lon, lambda lo: (lo - lon0) / deg_per_m_lon))
    right = ax.secondary_yaxis("right", functions=(lambda y: lat0 + y * deg_per_m_lat, lambda la: (la - lat0) / deg_per_m_lat))
    top.set_xlabel("longitude (°E)")
    right.set_ylabel("latitude (°N)")
    for sec in (top, right):
        sec.ticklabel_format(useOffset=False)
        sec.tick_params(labelsize=8)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)), fontsize=9)
    ax.set_title(title or ("transmitter location" if loc is not None else "route and readings"))
    return fig
