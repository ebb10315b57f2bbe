"""``/api/v1/ingest``: what the vehicles push (alert versions, batches, heartbeats, evidence files).

Authenticated by the vehicle tokens (:data:`detector.api.deps.Vehicle`, checked before the body is
read) and exempt from the API write token. Store refusals (:class:`~detector.center.store.IngestError`)
answer their own status through :mod:`detector.api.errors`.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from detector.api.deps import Vehicle
from detector.api.schemas import (
    BatchIngestAnswer,
    EvidenceInfo,
    HeartbeatAnswer,
    IngestAnswer,
)
from detector.center.routes import Center
from detector.center.store import Heartbeat, IngestError

__all__ = ["INGEST_PREFIX", "MAX_ALERT_BODY", "MAX_BATCH_BODY", "MAX_BATCH_ITEMS", "router"]

INGEST_PREFIX = "/api/v1/ingest"
#: largest alert body accepted (alerts are a few kB)
MAX_ALERT_BODY = 1 << 20
MAX_BATCH_BODY = 16 << 20
MAX_BATCH_ITEMS = 500

router = APIRouter(prefix=INGEST_PREFIX, tags=["ingest"],
                   responses={401: {"description": "missing or unknown vehicle token"}})


def _json_body(schema: dict) -> dict:
    """``openapi_extra`` documenting a JSON body the route reads itself (after authentication)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


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


@router.post("", summary="Receive one alert version pushed by a vehicle (vehicle token; Idempotency-Key)",
             response_model=IngestAnswer, openapi_extra=_json_body({"type": "object", "description": "the alert plus vehicle_id"}))
async def ingest(request: Request, vehicle: Vehicle, center: Center) -> dict:
    """Body: the alert (as `GET /alerts/{id}` on the vehicle) plus `vehicle_id`. Header
    `Idempotency-Key: {alert_id}:{version}`. Answers `{"status": "stored"|"stale"|"duplicate",
    "seq", "version", "need_evidence": [names]}`; a repeated key is answered again, not stored twice."""
    key = request.headers.get("idempotency-key")
    if not key:
        raise HTTPException(422, "the Idempotency-Key header ({alert_id}:{version}) is required")
    body = await _json(request)
    res = await run_in_threadpool(center.store.ingest, vehicle, body, key, transport="http")
    return {"status": res.status, "seq": res.seq, "version": res.version, "need_evidence": res.need_evidence}


@router.post("/batch", summary="Receive several alert versions at once, in order (vehicle token)",
             response_model=BatchIngestAnswer, response_model_exclude_unset=True,
             openapi_extra=_json_body({"type": "object", "required": ["items"], "properties": {"items": {
                 "type": "array", "minItems": 1, "maxItems": MAX_BATCH_ITEMS, "items": {
                     "type": "object", "properties": {"idempotency_key": {"type": "string"}, "alert": {"type": "object"}}}}}}))
async def ingest_batch(request: Request, vehicle: Vehicle, center: Center) -> dict:
    """Body `{"items": [{"idempotency_key": "{alert_id}:{version}", "alert": {...}}, ...]}` (at most
    500), each item as the body of `POST /ingest`. Answers `{"results": [...]}` in the same order:
    `{"idempotency_key", "status": "stored"|"stale"|"duplicate"|"skipped"|"error", "seq",
    "need_evidence", "error", "code"}`. A vehicle sends a batch when several changes wait (a
    backlog after an outage); `skipped` items (after a refused version of the same alert) are
    to be sent again."""
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
    res = await run_in_threadpool(center.store.ingest_many, vehicle, pairs, transport="http")
    out = []
    for (_, key), r in zip(pairs, res):
        if isinstance(r, IngestError):
            out.append({"idempotency_key": key, "status": "error", "error": str(r), "code": r.status_code})
        else:
            out.append({"idempotency_key": key, "status": r.status, "seq": r.seq, "need_evidence": r.need_evidence})
    return {"results": out}


@router.post("/heartbeat", summary="A vehicle is alive: health and a spectrum summary (vehicle token)",
             response_model=HeartbeatAnswer,
             openapi_extra=_json_body({"type": "object", "description": "vehicle_id, site, at (UNIX s), health, push, spectrum"}))
async def heartbeat(request: Request, vehicle: Vehicle, center: Center) -> dict:
    hb = Heartbeat.parse(await _json(request))
    if hb.vehicle_id not in (None, vehicle):
        raise HTTPException(403, f"vehicle_id {hb.vehicle_id!r} is not the authenticated vehicle")
    await run_in_threadpool(center.store.touch, vehicle, transport="http", site=hb.site, health=hb.status(),
                            spectrum=hb.spectrum_dict())
    return {"status": "ok"}


@router.put("/evidence/{alert_id}/{name}", summary="Upload an evidence file of a pushed alert (vehicle token)",
            response_model=EvidenceInfo,
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {}}}})
async def evidence(alert_id: str, name: str, request: Request, vehicle: Vehicle, center: Center) -> dict:
    data = await request.body()
    info = await run_in_threadpool(center.store.put_evidence, vehicle, alert_id, name, data,
                                   request.headers.get("content-type") or "application/octet-stream",
                                   request.headers.get("x-content-sha256"))
    return info.model_dump()
