"""``GET /api/v1/alerts/stream``: alert changes as Server-Sent Events, with ``Last-Event-ID`` resume.

Event ids are the store's own increasing sequence numbers: on a vehicle the alert history's
``seq`` (one event per alert change), on the center the ingest ``seq`` (one event per pushed version
received). Every event is ``event: alert`` with JSON data::

    {"seq": 42, "alert_id": "A-…", "version": 3, ..., "alert": {…the alert…}}

On a vehicle ``alert`` is the alert as it is when the event is sent (its ``version`` may already be
past the event's), plus the change's ``status``, ``cause``, ``fields`` and ``at``; on the center it
is the pushed version itself, plus ``vehicle_id`` and ``applied`` (false for a version that arrived
after a newer one).

Resume
    A client that reconnects with ``Last-Event-ID: N`` (the header browsers' ``EventSource`` sends by
    itself, or ``?last_event_id=N``) first gets every event after ``N``, in order, once, then the
    live tail. Without it the stream starts at the present (nothing old) unless ``?replay=K`` asks
    for the events of the last ``K`` sequence numbers. The first thing sent is always
    ``event: ready`` carrying the starting position as its ``id``, so a client that connects and
    drops before any alert still resumes from the right place. An id beyond the store's last
    (a different or reset database) restarts at the present with ``"reset": true`` in ``ready``.

Tail
    The store is polled every ``poll_s`` (0.5 s); a gap in the sequence (a transaction that took
    its number but has not committed yet, which PostgreSQL allows) is waited for up to
    ``gap_wait_s`` (2 s) before being skipped, so a slow commit is not missed. Comments (``: ping``)
    keep idle connections alive every 15 s.
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from typing import Annotated, Optional

import anyio
from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from detector.api.deps import Ctx

__all__ = ["build_stream_router", "events_after", "last_event_seq"]


# --- event sources -------------------------------------------------------------------------------
def last_event_seq(store) -> int:
    """The store's last event sequence number (0 when empty); see :class:`~detector.alerts.AlertReader`."""
    return int(store.last_event_seq())


def events_after(store, after_seq: int, limit: int = 500) -> list[dict]:
    """Events with ``seq > after_seq``, oldest first (see the module docstring for the shape)."""
    return store.events_after(after_seq, limit)


# --- the router ----------------------------------------------------------------------------------
def _front(router: APIRouter):
    """Lifespan that moves this router's routes before every other route of the app.

    ``create_app`` includes the vehicle's routes (among them ``GET /alerts/{alert_id}``) before the
    extra routers, and ``/alerts/{alert_id}`` would otherwise swallow ``/alerts/stream``.
    """
    mine = {id(r) for r in router.routes}
    endpoints = {getattr(r, "endpoint", None) for r in router.routes} - {None}

    @asynccontextmanager
    async def lifespan(app):
        routes = app.router.routes
        first = [r for r in routes if getattr(r, "original_router", None) is router or id(r) in mine
                 or getattr(r, "endpoint", None) in endpoints]
        if first and routes[: len(first)] != first:
            rest = [r for r in routes if all(r is not f for f in first)]
            routes[:] = first + rest
            mark = getattr(app.router, "_mark_routes_changed", None)
            if callable(mark):
                mark()
        yield

    return lifespan


def build_stream_router(*, poll_s: float = 0.5, gap_wait_s: float = 2.0, batch: int = 500, ping_s: float = 15.0) -> APIRouter:
    """The SSE route ``GET /api/v1/alerts/stream`` over the context's store (an
    ``AlertStore`` on a vehicle, a ``CenterStore`` on the center)."""
    router = APIRouter(prefix="/api/v1", tags=["alerts"])

    @router.get("/alerts/stream", summary="Alert changes as Server-Sent Events (resume with Last-Event-ID)",
                response_class=EventSourceResponse,
                responses={200: {"content": {"text/event-stream": {}},
                                 "description": "`event: ready` then `event: alert` per change; `id` = sequence number"}})
    async def stream(request: Request, ctx: Ctx,
                     last_event_id_header: Annotated[Optional[str], Header(alias="Last-Event-ID")] = None,
                     last_event_id: Annotated[Optional[int], Query(
                         ge=0, le=2**62, description="Resume after this event id (as the Last-Event-ID header).")] = None,
                     replay: Annotated[int, Query(
                         ge=0, le=100000,
                         description="Without a Last-Event-ID: also send the events of the last N sequence numbers.")] = 0,
                     site: Annotated[Optional[str], Query(
                         max_length=200, description="Only alerts of this site (sequence numbers of others are skipped).")] = None):
        store = ctx.store
        start = last_event_id
        if last_event_id_header is not None and last_event_id_header.strip():
            try:
                start = int(last_event_id_header.strip())
                if start < 0:
                    raise ValueError
            except ValueError:
                raise HTTPException(422, f"Last-Event-ID must be a non-negative integer, not {last_event_id_header!r}") from None
        last = await run_in_threadpool(last_event_seq, store)
        reset = False
        if start is None:
            start = max(0, last - replay)
        elif start > last:
            start, reset = last, True
        role = store.role

        async def gen():
            cursor = start
            yield ServerSentEvent(data=json.dumps({"seq": cursor, "last_seq": last, "reset": reset, "role": role}),
                                  event="ready", id=str(cursor), retry=2000)
            gap_since: float | None = None
            while True:
                if await request.is_disconnected():
                    return
                evs = await run_in_threadpool(events_after, store, cursor, batch)
                progressed = False
                for e in evs:
                    seq = int(e["seq"])
                    if seq != cursor + 1:
                        now = time.monotonic()
                        if gap_since is None:
                            gap_since = now
                        if now - gap_since < gap_wait_s:
                            break  # wait for the missing number to commit (or be abandoned)
                    gap_since = None
                    if site is None or (e.get("alert") or {}).get("site") == site:
                        yield ServerSentEvent(data=json.dumps(e, separators=(",", ":")), event="alert", id=str(seq))
                    cursor = seq
                    progressed = True
                if progressed and len(evs) >= batch:
                    continue
                await anyio.sleep(poll_s)

        return EventSourceResponse(gen(), ping=ping_s, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    router.lifespan_context = _front(router)
    return router
