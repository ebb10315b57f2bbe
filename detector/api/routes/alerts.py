"""Alerts: list (filters, paging), one alert, its status change (token) and its history."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from datetime import datetime

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from detector.api.deps import (
    AlertStatusQuery,
    Ctx,
    Frequency,
    Limit,
    Offset,
    WriteAccess,
)
from detector.api.errors import refused_as
from detector.api.routes.sites import added_channels
from detector.api.schemas import Alert, AlertPage, HistoryPage, StatusUpdate

router = APIRouter(prefix="/api/v1", tags=["alerts"])
log = logging.getLogger("examwatch.api")

#: seconds a write request waits for a locked SQLite database before its 503 (the store's own busy
#: timeout is longer: it serves the monitor's writer, which has a queue to fall back on)
API_WRITE_PATIENCE_S = 2.0
_NO_ALERT = {404: {"description": "no such alert"}}


def _alert_json(a) -> dict:
    return a.model_dump(mode="json") if hasattr(a, "model_dump") else a


@router.get("/alerts", summary="Alerts, newest first", response_model=AlertPage)
def alerts(ctx: Ctx,
           site: str | None = None,
           status: AlertStatusQuery = None,
           since: datetime | None = None,
           f_min_hz: Frequency = None,
           f_max_hz: Frequency = None,
           limit: Limit = 100,
           offset: Offset = 0) -> Response:
    """``{"data": [alert, ...], "count": N}``; ``since`` needs a zone (``2026-06-07T09:00:00Z``)."""
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


@router.get("/alerts/{alert_id}", summary="One alert", response_model=Alert, responses=_NO_ALERT)
def alert(alert_id: str, ctx: Ctx) -> dict:
    a = ctx.store.get(alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return _alert_json(a)


@router.patch("/alerts/{alert_id}", summary="Acknowledge, dismiss or close an alert (token required)",
              response_model=Alert, dependencies=[WriteAccess],
              responses={**_NO_ALERT, 401: {"description": "missing or wrong bearer token"},
                         409: {"description": "the change is refused (lifecycle; on the center: alerts change on their vehicle)"}})
def patch_alert(alert_id: str, body: StatusUpdate, ctx: Ctx) -> dict:
    a = ctx.store.get(alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    db = getattr(ctx.store, "db", None)
    # a locked database answers 503 after API_WRITE_PATIENCE_S, not after the store's busy timeout
    with (db.patience(API_WRITE_PATIENCE_S) if hasattr(db, "patience") else nullcontext()), refused_as(409):
        updated = ctx.store.set_status(alert_id, body.status, body.reason, actor="api")
    if body.status == "dismissed" and body.add_to_whitelist:
        _whitelist_dismissed(ctx, a)
    return _alert_json(updated)


def _whitelist_dismissed(ctx, a) -> None:
    """Whitelist a dismissed alert's channel: in the running engine and in ``ctx.whitelist_file``."""
    from detector.core.errors import InputError
    from detector.detection import Channel, Whitelist, append_channel

    ch = Channel(a.center_hz, max(a.bandwidth_hz or 0.0, 12500.0), f"dismissed {a.id}", a.site, level_dbfs=a.peak_dbfs)
    if ctx.whitelist_file is not None and not any(c.name == ch.name for c in added_channels(ctx)):
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


@router.get("/alerts/{alert_id}/history", summary="Every change of an alert", response_model=HistoryPage,
            responses=_NO_ALERT)
def history(alert_id: str, ctx: Ctx) -> dict:
    if ctx.store.get(alert_id) is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    h = [x.model_dump(mode="json") if hasattr(x, "model_dump") else x for x in ctx.store.history(alert_id)]
    return {"data": h, "count": len(h)}
