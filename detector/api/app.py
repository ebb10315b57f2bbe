"""The FastAPI application factory and its routes."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field

from detector import __version__
from detector.api.auth import WriteTokenMiddleware

__all__ = ["ApiContext", "create_app"]

log = logging.getLogger("examwatch.api")


class ListCache:
    """Answers of ``GET /alerts`` kept until the store changes (its ``on_change`` hook) and for at
    most ``ttl_s``: the crew's screens poll the same lists many times a second. Without a change
    hook on the store nothing is cached."""

    def __init__(self, ttl_s: float = 1.0, size: int = 256) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self.generation = 0
        self.enabled = False
        self._entries: dict = {}

    def bump(self, *_args) -> None:
        self.generation += 1
        self._entries.clear()

    def get(self, key):
        if not self.enabled:
            return None
        hit = self._entries.get(key)
        if hit is None or hit[0] != self.generation or time.monotonic() - hit[1] > self.ttl_s:
            return None
        return hit[2]

    def put(self, key, body: bytes, generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return  # the store changed while we read: do not keep what may be stale
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (generation, time.monotonic(), body)


@dataclass
class ApiContext:
    """What the routes read: the alert store, the monitor (None on a command center), the site."""

    store: object
    token: str
    monitor: object | None = None
    site: object | None = None
    sites_dir: Path | None = None
    baselines: dict = field(default_factory=dict)  # site name → SiteBaseline
    read_token: str | None = None
    extra_routers: list = field(default_factory=list)
    list_cache: ListCache = field(default_factory=ListCache)
    #: where channels whitelisted by a dismissal (``add_to_whitelist``) are kept across restarts
    whitelist_file: Path | None = None


class StatusUpdate(BaseModel):
    """Body of ``PATCH /alerts/{id}``."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["acknowledged", "dismissed", "closed"]
    reason: str = Field(default="", max_length=2000)
    add_to_whitelist: bool = Field(default=False, description="On dismiss: whitelist the alert's channel at this site.")


class Page(BaseModel):
    data: list
    count: int


def _ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


Ctx = Annotated[ApiContext, Depends(_ctx)]


def _added_channels(ctx) -> tuple:
    """Channels whitelisted by dismissals (``ctx.whitelist_file``), () when there are none."""
    if ctx.whitelist_file is None or not Path(ctx.whitelist_file).is_file():
        return ()
    from detector.detection import load_whitelist
    from detector.core.errors import InputError

    try:
        return load_whitelist(ctx.whitelist_file).channels
    except InputError as exc:
        log.warning("%s", exc)
        return ()


def _alert_json(a) -> dict:
    return a.model_dump(mode="json") if hasattr(a, "model_dump") else a


#: paging of every list (DESIGN.md: ``limit`` 1–1000, ``offset``)
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1–1000).")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")]


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.get("/health", summary="Liveness and the capture loop's state")
    def health(ctx: Ctx) -> dict:
        """``{"status": "ok"|"degraded", ...}``: source state, frames processed and dropped, last frame time."""
        body = {"status": "ok", "version": __version__, "role": "vehicle" if ctx.monitor is not None else "center"}
        if ctx.monitor is not None:
            body.update(ctx.monitor.health())
        return body

    @r.get("/sites", summary="Configured sites")
    def sites(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict:
        """``{"data": [...], "count": N}``: ``count`` is the number of sites, ``data`` the page."""
        from detector.config.site import list_sites

        out = {s.name: s.summary() for s in list_sites(ctx.sites_dir)}
        if ctx.site is not None:
            out.setdefault(ctx.site.name, ctx.site.summary())
        for ch in _added_channels(ctx):  # whitelisted by dismissals on this vehicle
            if ch.site in out:
                out[ch.site] = {**out[ch.site], "whitelist": [*out[ch.site].get("whitelist", []), {
                    "center_hz": ch.center_hz, "bandwidth_hz": ch.bandwidth_hz, "name": ch.name, "level_dbfs": ch.level_dbfs,
                    "added_by_dismissal": True}]}
        return {"data": list(out.values())[offset:offset + limit], "count": len(out)}

    @r.get("/sites/{site}/baseline", summary="Summary of a site's baseline")
    def baseline(site: str, ctx: Ctx) -> dict:
        b = ctx.baselines.get(site)
        if b is None:
            raise HTTPException(404, f"no baseline loaded for site {site!r}")
        import numpy as np

        occ = np.nan_to_num(b.occupancy)
        return {"site": b.site, "bins": int(b.freqs_hz.size), "f_min_hz": float(b.freqs_hz[0]), "f_max_hz": float(b.freqs_hz[-1]),
                "rbw_hz": b.rbw_hz, "unit": b.unit, "frames_max": int(b.frames.max()), "span_s": b.span_s,
                "n_looks": b.n_looks, "occupied_bins": int((occ > 0.1).sum()),
                "first_start": b.first_start.isoformat() if b.first_start else None,
                "last_end": b.last_end.isoformat() if b.last_end else None, "version": b.version}

    @r.get("/spectrum/latest", summary="The latest frame with baseline quantiles and open emissions")
    def spectrum_latest(ctx: Ctx) -> Response:
        """``{"freqs_hz": [...], "power": [...], "unit", "rbw_hz", "center_hz", "offset_s", "n_looks",
        "noise_floor_dbfs", "noise_floor_dbm", "emissions": [...], "baseline": {"median_db", "p90_db", "p99_db"} | null}``.

        ``unit`` is ``dBm`` when the dongle's calibration profile has a power table for the tuner's
        gain (the baseline quantiles are then converted too; ``noise_floor_dbm`` is set), else
        ``dBFS``. Emission levels (``peak_dbfs``) stay in dBFS."""
        if ctx.monitor is None:
            raise HTTPException(404, "no capture loop runs here")
        body = ctx.monitor.latest_spectrum_json()
        if body is None:
            raise HTTPException(404, "no spectrum yet")
        return Response(content=body, media_type="application/json")

    @r.get("/emissions", summary="Emissions of the latest frame")
    def emissions(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict:
        """``{"data": [{"center_hz", "bandwidth_hz", "peak_dbfs", "snr_db", "excess_db"}, ...],
        "count": N, "offset_s", "center_hz"}``: what the detector found in the last frame (the
        same list as ``/spectrum/latest`` → ``emissions``), strongest SNR first; ``excess_db`` is
        null where no baseline covers the emission."""
        if ctx.monitor is None:
            raise HTTPException(404, "no capture loop runs here (a command center): emissions come from a vehicle")
        snap = ctx.monitor.latest
        if snap is None:
            raise HTTPException(404, "no frame yet")
        spec, res = snap["spectrum"], snap["result"]
        em = [] if res is None else sorted(res.emissions, key=lambda e: -e.snr_db)
        data = [{"center_hz": round(e.center_hz, 1), "bandwidth_hz": round(e.bandwidth_hz, 1), "peak_dbfs": round(e.peak_dbfs, 2),
                 "snr_db": round(e.snr_db, 2), "excess_db": None if e.excess_db is None else round(e.excess_db, 2)}
                for e in em]
        return {"data": data[offset:offset + limit], "count": len(data), "offset_s": spec.offset_s, "center_hz": spec.center_hz}

    @r.get("/tracks", summary="Open tracks of the capture loop")
    def tracks(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict:
        """``{"data": [...], "count": N}``: ``count`` is the number of open tracks, ``data`` the page."""
        t = [] if ctx.monitor is None else ctx.monitor.tracks()
        return {"data": t[offset:offset + limit], "count": len(t)}

    @r.get("/alerts", summary="Alerts, newest first")
    def alerts(ctx: Ctx,
               site: Optional[str] = None,
               status: Annotated[Optional[list[Literal["new", "updated", "located", "acknowledged", "dismissed", "closed"]]], Query()] = None,
               since: Optional[datetime] = None,
               f_min_hz: Annotated[Optional[float], Query(ge=0, le=1e10, allow_inf_nan=False)] = None,
               f_max_hz: Annotated[Optional[float], Query(ge=0, le=1e10, allow_inf_nan=False)] = None,
               limit: Limit = 100,
               offset: Offset = 0) -> dict:
        if since is not None and since.tzinfo is None:
            raise HTTPException(422, "since needs a zone (e.g. 2026-06-07T09:00:00Z)")
        key = (site, tuple(status or ()), since, f_min_hz, f_max_hz, limit, offset)
        cached = ctx.list_cache.get(key)
        if cached is not None:
            return Response(content=cached, media_type="application/json")
        gen = ctx.list_cache.generation
        data, count = ctx.store.list(site=site, status=status, since=since, f_min_hz=f_min_hz, f_max_hz=f_max_hz,
                                     limit=limit, offset=offset)
        # serialised here, once: FastAPI's generic encoder costs more than the query
        body = json.dumps({"data": [_alert_json(a) for a in data], "count": count}, separators=(",", ":")).encode()
        ctx.list_cache.put(key, body, gen)
        return Response(content=body, media_type="application/json")

    @r.get("/alerts/{alert_id}", summary="One alert")
    def alert(alert_id: str, ctx: Ctx) -> dict:
        a = ctx.store.get(alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return _alert_json(a)

    @r.patch("/alerts/{alert_id}", summary="Acknowledge, dismiss or close an alert (token required)")
    def patch_alert(alert_id: str, body: StatusUpdate, ctx: Ctx) -> dict:
        from detector.core.errors import InputError

        a = ctx.store.get(alert_id)
        if a is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        try:
            updated = ctx.store.set_status(alert_id, body.status, body.reason, actor="api")
        except InputError as exc:
            raise HTTPException(409, str(exc)) from None
        if body.status == "dismissed" and body.add_to_whitelist:
            from detector.detection import Channel, Whitelist, append_channel

            ch = Channel(a.center_hz, max(a.bandwidth_hz or 0.0, 12500.0), f"dismissed {alert_id}", a.site,
                         level_dbfs=a.peak_dbfs)
            if ctx.whitelist_file is not None and not any(c.name == ch.name for c in _added_channels(ctx)):
                try:
                    append_channel(ctx.whitelist_file, ch)
                except InputError as exc:
                    log.warning("%s", exc)
            if ctx.monitor is not None:
                eng = ctx.monitor.engine
                if eng.whitelist is None:
                    eng.whitelist = Whitelist((ch,))
                elif not any(c.name == ch.name for c in eng.whitelist.channels):
                    eng.whitelist = eng.whitelist.with_channel(ch)
        return _alert_json(updated)

    @r.get("/alerts/{alert_id}/history", summary="Every change of an alert")
    def history(alert_id: str, ctx: Ctx) -> dict:
        if ctx.store.get(alert_id) is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        h = [x.model_dump(mode="json") if hasattr(x, "model_dump") else x for x in ctx.store.history(alert_id)]
        return {"data": h, "count": len(h)}

    @r.get("/alerts/{alert_id}/evidence/{name}", summary="An evidence file (SigMF snippet, WAV audio)",
           response_class=Response)
    def evidence(alert_id: str, name: str, ctx: Ctx) -> Response:
        got = ctx.store.evidence(alert_id, name)
        if got is None:
            raise HTTPException(404, f"no evidence {name!r} for alert {alert_id!r}")
        data, info = got
        return Response(content=data, media_type=info.media_type if hasattr(info, "media_type") else info["media_type"],
                        headers={"X-Content-SHA256": info.sha256 if hasattr(info, "sha256") else info["sha256"],
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    return r


def _metrics_text(ctx: ApiContext) -> str:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    reg = CollectorRegistry()
    if ctx.monitor is not None:
        h = ctx.monitor.health()
        for key, help_ in (("frames_processed", "Frames through detection"), ("frames_dropped", "Frames dropped when processing fell behind"),
                           ("blocks_read", "IQ blocks read from the source"), ("repeated_blocks", "Identical blocks ignored"),
                           ("reopen_count", "Source reopen attempts"), ("alerts_stored", "Alerting track events written to the store"), ("alerts_raised", "Distinct alerts raised")):
            Gauge(f"examwatch_{key}", help_, registry=reg).set(h.get(key) or 0)
        Gauge("examwatch_source_degraded", "1 while the source is degraded", registry=reg).set(1 if h.get("status") == "degraded" else 0)
        push = h.get("push")
        if isinstance(push, dict):
            Gauge("examwatch_push_pending", "Alert changes queued for the command center", registry=reg).set(max(push.get("pending") or 0, 0))
            Gauge("examwatch_push_failing", "1 while pushes to the command center fail", registry=reg).set(
                1 if push.get("failing_for_s") is not None else 0)
    try:
        _, total = ctx.store.list(limit=1)
        open_ = len(ctx.store.open_alerts())
    except Exception:  # noqa: BLE001 - metrics must answer even when the store hiccups
        total = open_ = 0
    Gauge("examwatch_alerts_total", "Alerts in the store", registry=reg).set(total)
    Gauge("examwatch_alerts_open", "Alerts not dismissed or closed", registry=reg).set(open_)
    return generate_latest(reg).decode()


def add_error_handlers(app: FastAPI) -> None:
    """422 answers without the offending input (a 2 MB body must not come back in the answer), the
    same on a vehicle and on the center; a ``ValueError`` from a route is a 422 with its message."""
    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError):
        return JSONResponse({"detail": str(exc)}, status_code=422)


def create_app(ctx: ApiContext, *, title: str = "examwatch") -> FastAPI:
    """Build the application with its context (store, monitor, token) injected."""
    # the docs' Swagger UI and ReDoc assets are served by the app itself (fastapi-offline): a
    # monitoring vehicle is often offline, and the CDN pages would be blank
    app = FastAPIOffline(title=title, version=__version__,
                  description="examwatch: radio monitoring of exam sites. Writes need `Authorization: Bearer <token>`.")
    app.state.ctx = ctx
    hooks = getattr(ctx.store, "on_change", None)
    if isinstance(hooks, list):
        hooks.append(ctx.list_cache.bump)
        ctx.list_cache.enabled = True
    app.add_middleware(WriteTokenMiddleware, token=ctx.token, read_token=ctx.read_token)
    # extra routers first: their fixed paths (e.g. /alerts/stream) must win over /alerts/{alert_id}
    for extra in ctx.extra_routers:
        app.include_router(extra)
    app.include_router(build_router())
    from detector.api.dashboard import build_dashboard_router

    app.include_router(build_dashboard_router())

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(_metrics_text(ctx), media_type="text/plain; version=0.0.4")

    add_error_handlers(app)

    return app
