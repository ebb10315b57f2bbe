"""The live dashboard page and the API routes of figures and exports.

``build_dashboard_router()`` gives an :class:`~fastapi.APIRouter` for ``ApiContext.extra_routers``:

* ``GET /dashboard`` — the page (Jinja2 template ``dashboards/templates/dashboard.html``): open
  alerts updated live from ``GET /api/v1/alerts/stream`` (or polled every 3 s where the stream
  does not answer), the figures below refreshed every few seconds, acknowledge/dismiss buttons
  (``PATCH /api/v1/alerts/{id}`` with the bearer token the page asks for once), English or
  Chinese after the browser's language. No build step and no CDN.
  On a vehicle the spectrum and waterfall are live canvases (``spectrum.js``) fed by
  ``GET /api/v1/spectrum/stream`` (:mod:`detector.api.routes.spectrum_stream`), the PNGs where the
  stream does not answer.
* ``GET /hunt?alert=ID`` (or ``?f_hz=``) — the phone-sized hunt page of one alert's channel
  (``dashboards/templates/hunt.html``, ``hunt.js``; its level from ``GET /api/v1/hunt/…/level``).
* ``GET /dashboard/static/{name}`` — the pages' JS and CSS, from the package (a fixed list).
* ``GET /api/v1/figures/{spectrum|waterfall|map|timeline}.png`` — the figures of
  :mod:`dashboards`, drawn from the monitor, the store and the site; 404 with the reason while
  there is nothing to draw.
* ``GET /api/v1/alerts.geojson``, ``GET /api/v1/alerts.kml`` — located alerts for GIS tools and
  Google Earth.
* ``GET /api/v1/alerts/{id}/evidence.zip`` — the evidence pack of an alert.

Figures are drawn in the request's worker thread under :data:`dashboards.RENDER_LOCK`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Optional

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from detector import __version__
from detector.api.deps import AlertStatusQuery as StatusQ
from detector.api.deps import Ctx

__all__ = ["build_dashboard_router", "STATIC_FILES", "FIGURES"]

#: files served under /dashboard/static/ and their media types (nothing else is served)
STATIC_FILES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8",
                "spectrum.js": "text/javascript; charset=utf-8",
                "hunt.js": "text/javascript; charset=utf-8"}
#: figures served under /api/v1/figures/{name}.png
FIGURES = ("spectrum", "waterfall", "map", "timeline")
_OPEN = ["new", "updated", "located", "acknowledged"]
_PAGE = 1000


def _no_store() -> dict:
    return {"Cache-Control": "no-store"}


def _alerts(ctx, *, site: str | None = None, status=None, limit: int | None = None) -> list:
    out, offset = [], 0
    while True:
        page, total = ctx.store.list(site=site, status=status, limit=_PAGE if limit is None else min(limit, _PAGE), offset=offset)
        out.extend(page)
        offset += len(page)
        if not page or offset >= total or (limit is not None and len(out) >= limit):
            return out


def _site_name(ctx) -> str | None:
    if ctx.site is not None:
        return ctx.site.name
    mon = ctx.monitor
    return getattr(mon, "site", None) if mon is not None else None


def _png(fig) -> Response:
    from dashboards import figure_bytes

    return Response(content=figure_bytes(fig, "png"), media_type="image/png", headers=_no_store())


def _readings_of(ctx, alert) -> list[dict] | None:
    """The alert's track readings: from the live engine when the alert is of this run, else from the
    stored track event."""
    mon = ctx.monitor
    if mon is not None and getattr(mon, "run_id", None) == alert.run_id:
        tr = mon.engine.all_tracks.get(alert.track_id)
        if tr is not None:
            return [{"t_s": r.t_s, "lat": r.lat, "lon": r.lon, "power_db": r.power_db}
                    for r in list(tr.readings) if r.lat is not None]
    summary = ctx.store.track_summary(alert.id) if hasattr(ctx.store, "track_summary") else None
    if isinstance(summary, Mapping) and summary.get("readings"):
        return list(summary["readings"])
    return None


def _route_of(ctx) -> list[tuple[float, float]]:
    """The vehicle's positions seen by the live engine (readings of every track, in time order)."""
    mon = ctx.monitor
    if mon is None:
        return []
    pts: dict[float, tuple[float, float]] = {}
    for tr in list(mon.engine.all_tracks.values()):
        for r in list(tr.readings):
            if r.lat is not None:
                pts[round(r.t_s, 2)] = (r.lat, r.lon)
    return [pts[t] for t in sorted(pts)]


def build_dashboard_router() -> APIRouter:
    """The router of the dashboard page, its static files, figures and exports (see the module docstring)."""
    r = APIRouter()

    # --- the page ---------------------------------------------------------------------------------
    @r.get("/dashboard", response_class=HTMLResponse, summary="The live dashboard page", include_in_schema=False,
           tags=["dashboard"])
    def dashboard(request: Request, ctx: Ctx) -> HTMLResponse:
        from jinja2 import Environment, PackageLoader, select_autoescape

        env = Environment(loader=PackageLoader("dashboards", "templates"), autoescape=select_autoescape(["html"]))
        center = ctx.monitor is None
        html = env.get_template("dashboard.html").render(
            site=_site_name(ctx) or "", version=__version__,
            # a center has no receiver: the live spectrum and waterfall come from each vehicle
            figures=tuple(f for f in FIGURES if not (center and f in ("spectrum", "waterfall"))),
            role="center" if center else "vehicle", refresh_s=5, poll_s=3)
        return HTMLResponse(html, headers=_no_store())

    @r.get("/hunt", response_class=HTMLResponse, summary="The hunt page: one alert's channel on foot", include_in_schema=False,
           tags=["dashboard"])
    def hunt(ctx: Ctx,
             alert: Annotated[Optional[str], Query(max_length=100, description="The alert to hunt.")] = None,
             f_hz: Annotated[Optional[float], Query(gt=0, le=1e10, allow_inf_nan=False,
                                                    description="A frequency to hunt without an alert, Hz.")] = None,
             bw_hz: Annotated[Optional[float], Query(gt=0, le=10e6, allow_inf_nan=False)] = None) -> HTMLResponse:
        from jinja2 import Environment, PackageLoader, select_autoescape

        if alert is None and f_hz is None:
            raise HTTPException(422, "give the alert to hunt (?alert=ID) or a frequency (?f_hz=HZ)")
        if alert is not None and ctx.store.get(alert) is None:
            raise HTTPException(404, f"no alert {alert!r}")
        env = Environment(loader=PackageLoader("dashboards", "templates"), autoescape=select_autoescape(["html"]))
        html = env.get_template("hunt.html").render(alert_id=alert or "", f_hz="" if f_hz is None else repr(float(f_hz)),
                                                    bw_hz="" if bw_hz is None else repr(float(bw_hz)), poll_s=0.25)
        return HTMLResponse(html, headers=_no_store())

    @r.get("/dashboard/static/{name}", summary="The dashboard's JS and CSS", include_in_schema=False,
           tags=["dashboard"])
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        data = resources.files("dashboards").joinpath("static", name).read_bytes()
        return Response(content=data, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    # --- figures --------------------------------------------------------------------------------
    @r.get("/api/v1/figures/{name}.png", summary="A dashboard figure as PNG (spectrum, waterfall, map, timeline)",
           response_class=Response, responses={200: {"content": {"image/png": {}}}, 404: {"description": "nothing to draw yet"}},
           tags=["figures"])
    def figure(name: str, ctx: Ctx,
               seconds: Annotated[float, Query(ge=5, le=3600, allow_inf_nan=False, description="Waterfall: seconds of history.")] = 300.0,
               alert: Annotated[Optional[str], Query(max_length=100,
                                                     description="Map: the alert to show (default: the latest located).")] = None
               ) -> Response:
        from dashboards import RENDER_LOCK

        if name not in FIGURES:
            raise HTTPException(404, f"no figure {name!r}; figures are {', '.join(FIGURES)}")
        with RENDER_LOCK:
            return {"spectrum": _spectrum_png, "waterfall": _waterfall_png, "map": _map_png,
                    "timeline": _timeline_png}[name](ctx, seconds=seconds, alert_id=alert)

    # --- exports --------------------------------------------------------------------------------
    @r.get("/api/v1/alerts.geojson", summary="Located alerts as a GeoJSON FeatureCollection", response_class=Response,
           responses={200: {"content": {"application/geo+json": {}}}}, tags=["exports"])
    def geojson(ctx: Ctx, site: Optional[str] = None, status: StatusQ = None, ellipses: bool = True) -> Response:
        import json

        from dashboards.exports import GEOJSON_MEDIA_TYPE, alerts_geojson

        body = alerts_geojson(_alerts(ctx, site=site, status=status), ellipses=ellipses, name="examwatch alerts")
        return Response(content=json.dumps(body), media_type=GEOJSON_MEDIA_TYPE,
                        headers={**_no_store(), "Content-Disposition": 'inline; filename="alerts.geojson"'})

    @r.get("/api/v1/alerts.kml", summary="Located alerts as KML (Google Earth)", response_class=Response,
           responses={200: {"content": {"application/vnd.google-earth.kml+xml": {}}}}, tags=["exports"])
    def kml(ctx: Ctx, site: Optional[str] = None, status: StatusQ = None, ellipses: bool = True) -> Response:
        from dashboards.exports import KML_MEDIA_TYPE, alerts_kml

        body = alerts_kml(_alerts(ctx, site=site, status=status), ellipses=ellipses,
                          name=f"examwatch alerts{' — ' + site if site else ''}")
        return Response(content=body, media_type=KML_MEDIA_TYPE,
                        headers={**_no_store(), "Content-Disposition": 'attachment; filename="alerts.kml"'})

    @r.get("/api/v1/alerts/{alert_id}/evidence.zip", summary="The evidence pack of an alert (zip with SHA-256 manifest)",
           response_class=Response, responses={200: {"content": {"application/zip": {}}}, 404: {"description": "no such alert"}},
           tags=["evidence"])
    def evidence_zip(alert_id: str, ctx: Ctx) -> Response:
        from dashboards import RENDER_LOCK, figure_bytes
        from dashboards.exports import evidence_pack
        from dashboards.snippet import alert_evidence_figures

        a = ctx.store.get(alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        pngs: dict[str, bytes] = {}
        readings = _readings_of(ctx, a)
        with RENDER_LOCK:
            for key, fig in alert_evidence_figures(ctx.store, a, baseline=ctx.baselines.get(a.site)).items():
                pngs[key] = figure_bytes(fig, "png")
            if a.location and a.location.get("lat") is not None:
                from dashboards.site_map import site_map_figure

                site = ctx.site if ctx.site is not None and ctx.site.name == a.site else None
                fig = site_map_figure(readings=readings, alert=a, buildings=site.buildings if site else None,
                                      origin=(site.lat, site.lon) if site is not None and site.lat is not None else None)
                pngs["map"] = figure_bytes(fig, "png")
        try:
            data = evidence_pack(ctx.store, alert_id, spectrum_png=pngs.get("spectrum"), waterfall_png=pngs.get("waterfall"),
                                 map_png=pngs.get("map"), readings=readings)
        except KeyError:
            raise HTTPException(404, f"no alert {alert_id!r}") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return Response(content=data, media_type="application/zip",
                        headers={**_no_store(), "Content-Disposition": f'attachment; filename="{alert_id}-evidence.zip"'})

    return r


# --- figure builders (called under RENDER_LOCK) ---------------------------------------------------
def _need_monitor(ctx, what: str):
    if ctx.monitor is None:
        raise HTTPException(404, f"no {what} here: no capture loop runs on this server (a command center); "
                                 f"live figures come from a vehicle")
    return ctx.monitor


def _run_alerts(ctx, mon) -> list:
    alerts = _alerts(ctx, site=getattr(mon, "site", None), status=_OPEN, limit=200)
    run = getattr(mon, "run_id", None)
    return [a for a in alerts if run is None or a.run_id == run]


def _spectrum_png(ctx, **_) -> Response:
    from dashboards import spectrum_baseline_figure

    mon = _need_monitor(ctx, "spectrum")
    snap = mon.latest_spectrum()
    if snap is None:
        raise HTTPException(404, "no spectrum yet: the capture loop has not processed a frame")
    wl = getattr(mon.engine, "whitelist", None)
    return _png(spectrum_baseline_figure(snap, alerts=_run_alerts(ctx, mon), whitelist=wl))


def _waterfall_png(ctx, *, seconds: float, **_) -> Response:
    from dashboards import waterfall_figure
    from detector.detection.engine import track_event

    mon = _need_monitor(ctx, "waterfall")
    wf = mon.waterfall(seconds)
    if wf is None or wf["power_db"].shape[0] < 2:
        raise HTTPException(404, "no waterfall yet: fewer than 2 frames kept so far")
    t0 = float(wf["times_s"][0])
    tracks = [track_event("update", tr).to_json() for tr in list(mon.engine.all_tracks.values())
              if tr.confirmed and tr.last_seen_s + tr.frame_s >= t0]
    return _png(waterfall_figure(wf, tracks=tracks, alerts=_run_alerts(ctx, mon)))


def _map_png(ctx, *, alert_id: str | None, **_) -> Response:
    from dashboards import site_map_figure

    site = ctx.site
    a = None
    if alert_id is not None:
        a = ctx.store.get(alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
    else:
        name = _site_name(ctx)
        for cand in _alerts(ctx, site=name, status=_OPEN, limit=200):
            if cand.location and cand.location.get("lat") is not None:
                a = cand
                break
    readings = _readings_of(ctx, a) if a is not None else None
    route = _route_of(ctx)
    buildings = site.buildings if site is not None else []
    has_loc = a is not None and a.location and a.location.get("lat") is not None
    if not (has_loc or route or readings or buildings):
        raise HTTPException(404, "nothing to map yet: no located alert, no vehicle positions and no site buildings")
    origin = (site.lat, site.lon) if site is not None and site.lat is not None and site.lon is not None else None
    return _png(site_map_figure(route=route or None, readings=readings, alert=a if has_loc else None,
                                buildings=buildings, origin=origin,
                                title=(f"{a.id}: estimated position" if has_loc else f"site {site.name if site else ''}: vehicle route")))


def _timeline_png(ctx, **_) -> Response:
    from dashboards import exam_timeline_figure

    site = ctx.site
    mon = ctx.monitor
    sessions: list = []
    if site is not None and site.sessions:
        # today's sessions (those within 12 h before to 24 h after now), else the last three that began
        from datetime import datetime, timedelta, timezone

        now = datetime.now(timezone.utc)
        sessions = [s for s in site.sessions if s.end >= now - timedelta(hours=12) and s.start <= now + timedelta(hours=24)]
        if not sessions:
            sessions = sorted((s for s in site.sessions if s.start <= now), key=lambda s: s.start)[-3:] or list(site.sessions)[:3]
        t_min = min(s.start for s in sessions) - timedelta(hours=1)
        t_max = max(s.end for s in sessions) + timedelta(hours=1)
        alerts = [a for a in _alerts(ctx, site=site.name, limit=500) if a.last_seen >= t_min and a.first_seen <= t_max]
    elif site is not None and site.session_seconds:
        sessions = [(a, b, f"exam session {i + 1}") for i, (a, b) in enumerate(site.session_seconds)]
        alerts = _run_alerts(ctx, mon) if mon is not None else _alerts(ctx, site=site.name, limit=200)
        alerts = [a for a in alerts if a.first_seen_s is not None]
    else:
        alerts = _alerts(ctx, site=_site_name(ctx), limit=200)
    if not sessions and not alerts:
        raise HTTPException(404, "nothing on the timeline yet: no exam session configured for the site and no alert")
    tz = None
    if site is not None and site.sessions:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            tz = ZoneInfo(site.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
    return _png(exam_timeline_figure(sessions, alerts, tz=tz))
