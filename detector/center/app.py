"""The command center's FastAPI app: the vehicle's read API over a :class:`CenterStore`, plus ingest.

Routes (under ``/api/v1``)
    * every read route of the vehicle (``detector.api.app.build_router``): ``/health``, ``/sites``,
      ``/alerts`` (same filters and paging), ``/alerts/{id}``, ``/alerts/{id}/history`` (the
      versions received), ``/alerts/{id}/evidence/{name}`` (files the vehicles uploaded), …;
      ``PATCH /alerts/{id}`` answers 409 (alerts change on their vehicle);
    * ``GET /alerts/stream``: SSE (:mod:`detector.api.stream`), event id = ingest sequence;
    * ``GET /overview``: sites (alerts, open alerts by severity, vehicles), every vehicle's last
      contact, and the vehicles gone silent (no contact for more than ``silent_after_s``);
    * ``GET /vehicles``, ``GET /vehicles/{id}/spectrum`` (the last spectrum summary);
    * ``POST /ingest`` (a pushed alert version; ``Authorization: Bearer <vehicle token>``,
      ``Idempotency-Key: {alert_id}:{version}``), ``POST /ingest/batch`` (several versions in
      order, each with its key: what a vehicle sends when a backlog waits), ``POST /ingest/heartbeat``,
      ``PUT /ingest/evidence/{alert_id}/{name}``: authenticated by the vehicle tokens, and exempt
      from the API write token;
    * ``/metrics``.

Reads need no token unless a read token is configured; writes other than ingest need the center's
write token (there are none that change anything today).
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Optional

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from detector import __version__
from detector.api.app import ApiContext, _metrics_text, add_error_handlers, build_router
from detector.api.auth import WriteTokenMiddleware
from detector.center.store import CenterStore, Heartbeat, IngestError
from detector.api.stream import build_stream_router

__all__ = ["build_center_app", "INGEST_PREFIX"]

INGEST_PREFIX = "/api/v1/ingest"
#: largest alert body accepted (alerts are a few kB)
MAX_ALERT_BODY = 1 << 20
MAX_BATCH_BODY = 16 << 20
MAX_BATCH_ITEMS = 500


class _VehicleAuth:
    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)

    def __call__(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        found = None
        if scheme.lower() == "bearer" and value:
            for tok, vid in self.tokens.items():  # compare against all: no early exit on a match
                if secrets.compare_digest(tok.encode(), value.encode()):
                    found = vid
        if found is None:
            raise HTTPException(401, "missing or unknown vehicle token", headers={"WWW-Authenticate": "Bearer"})
        return found


def _ingest_router(store: CenterStore, auth: _VehicleAuth) -> APIRouter:
    r = APIRouter(prefix=INGEST_PREFIX, tags=["ingest"])

    async def _json(request: Request, limit: int = MAX_ALERT_BODY) -> dict:
        raw = await request.body()
        if len(raw) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPException(422, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(422, "the body must be a JSON object")
        return body

    @r.post("", summary="Receive one alert version pushed by a vehicle (vehicle token; Idempotency-Key)")
    async def ingest(request: Request) -> dict:
        """Body: the alert (as `GET /alerts/{id}` on the vehicle) plus `vehicle_id`. Header
        `Idempotency-Key: {alert_id}:{version}`. Answers `{"status": "stored"|"stale"|"duplicate",
        "seq", "version", "need_evidence": [names]}`; a repeated key is answered again, not stored twice."""
        vehicle = auth(request)
        key = request.headers.get("idempotency-key")
        if not key:
            raise HTTPException(422, "the Idempotency-Key header ({alert_id}:{version}) is required")
        body = await _json(request)
        try:
            res = await run_in_threadpool(store.ingest, vehicle, body, key, transport="http")
        except IngestError as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        return {"status": res.status, "seq": res.seq, "version": res.version, "need_evidence": res.need_evidence}

    @r.post("/batch", summary="Receive several alert versions at once, in order (vehicle token)")
    async def ingest_batch(request: Request) -> dict:
        """Body `{"items": [{"idempotency_key": "{alert_id}:{version}", "alert": {...}}, ...]}` (at most
        500), each item as the body of `POST /ingest`. Answers `{"results": [...]}` in the same order:
        `{"idempotency_key", "status": "stored"|"stale"|"duplicate"|"skipped"|"error", "seq",
        "need_evidence", "error", "code"}`. A vehicle sends a batch when several changes wait (a
        backlog after an outage); `skipped` items (after a refused version of the same alert) are
        to be sent again."""
        vehicle = auth(request)
        body = await _json(request, MAX_BATCH_BODY)
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise HTTPException(422, f"items must be a list of 1 to {MAX_BATCH_ITEMS} objects")
        pairs = []
        for it in items:
            if not isinstance(it, dict):
                raise HTTPException(422, "each item must be an object {idempotency_key, alert}")
            key = it.get("idempotency_key")
            pairs.append((it.get("alert"), key if isinstance(key, str) and key else "-"))
        res = await run_in_threadpool(store.ingest_many, vehicle, pairs, transport="http")
        out = []
        for (_, key), r in zip(pairs, res):
            if isinstance(r, IngestError):
                out.append({"idempotency_key": key, "status": "error", "error": str(r), "code": r.status_code})
            else:
                out.append({"idempotency_key": key, "status": r.status, "seq": r.seq, "need_evidence": r.need_evidence})
        return {"results": out}

    @r.post("/heartbeat", summary="A vehicle is alive: health and a spectrum summary (vehicle token)")
    async def heartbeat(request: Request) -> dict:
        vehicle = auth(request)
        try:
            hb = Heartbeat.parse(await _json(request))
        except IngestError as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        if hb.vehicle_id not in (None, vehicle):
            raise HTTPException(403, f"vehicle_id {hb.vehicle_id!r} is not the authenticated vehicle")
        await run_in_threadpool(store.touch, vehicle, transport="http", site=hb.site, health=hb.status(),
                                spectrum=hb.spectrum_dict())
        return {"status": "ok"}

    @r.put("/evidence/{alert_id}/{name}", summary="Upload an evidence file of a pushed alert (vehicle token)")
    async def evidence(alert_id: str, name: str, request: Request) -> dict:
        vehicle = auth(request)
        data = await request.body()
        try:
            info = await run_in_threadpool(store.put_evidence, vehicle, alert_id, name, data,
                                           request.headers.get("content-type") or "application/octet-stream",
                                           request.headers.get("x-content-sha256"))
        except IngestError as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        return info.model_dump()

    return r


def _center_router(store: CenterStore, known: list[str], silent_after_s: float) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["center"])

    @r.get("/overview", summary="Sites, open alerts per site, last contact of each vehicle, silent vehicles")
    def overview(silent_after_s_q: Annotated[Optional[float], Query(alias="silent_after_s", gt=0, le=86400 * 30, allow_inf_nan=False)] = None) -> dict:
        return store.overview(known, silent_after_s_q or silent_after_s)

    @r.get("/vehicles", summary="Vehicles: last contact, transport, site, alerts, last health")
    def vehicles(silent_after_s_q: Annotated[Optional[float], Query(alias="silent_after_s", gt=0, le=86400 * 30, allow_inf_nan=False)] = None) -> dict:
        v = store.vehicles(known, silent_after_s_q or silent_after_s)
        return {"data": v, "count": len(v)}

    @r.get("/vehicles/{vehicle_id}/spectrum", summary="The last spectrum summary a vehicle sent")
    def vehicle_spectrum(vehicle_id: str) -> dict:
        s = store.vehicle_spectrum(vehicle_id)
        if s is None:
            raise HTTPException(404, f"no spectrum summary from vehicle {vehicle_id!r}")
        return s

    return r


def build_center_app(store: CenterStore, *, token: str, vehicle_tokens: dict[str, str], read_token: str | None = None,
                     silent_after_s: float = 60.0, sites_dir=None, stream_poll_s: float = 0.5, mqtt=None) -> FastAPI:
    """The center's app. ``vehicle_tokens`` maps token → vehicle id; ``token`` is the API write
    token, ``read_token`` (optional) protects reads; ``mqtt`` (optional) a started subscriber
    whose state ``/overview`` does not need but ``app.state.mqtt`` keeps."""
    ctx = ApiContext(store=store, token=token, monitor=None, sites_dir=sites_dir, read_token=read_token)
    # the docs' Swagger UI and ReDoc assets are served by the app itself (fastapi-offline): a
    # monitoring vehicle is often offline, and the CDN pages would be blank
    app = FastAPIOffline(title="examwatch command center", version=__version__,
                  description="examwatch command center: alerts pushed by the vehicles. Ingest needs a vehicle token.")
    app.state.ctx = ctx
    app.state.mqtt = mqtt
    app.add_middleware(WriteTokenMiddleware, token=token, read_token=read_token, exempt=(INGEST_PREFIX,))
    known = sorted(set(vehicle_tokens.values()))
    app.include_router(build_stream_router(poll_s=stream_poll_s))  # before /alerts/{alert_id}
    app.include_router(_ingest_router(store, _VehicleAuth(vehicle_tokens)))
    app.include_router(_center_router(store, known, silent_after_s))
    app.include_router(build_router())
    from detector.api.dashboard import build_dashboard_router

    app.include_router(build_dashboard_router())  # the live page, GIS exports, evidence packs, figures

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def metrics() -> PlainTextResponse:
        text = _metrics_text(ctx)
        try:
            text += (f"# HELP examwatch_center_ingested Alert versions received\n# TYPE examwatch_center_ingested gauge\n"
                     f"examwatch_center_ingested {store.last_event_seq()}\n")
        except Exception:  # noqa: BLE001
            pass
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    add_error_handlers(app)

    return app
