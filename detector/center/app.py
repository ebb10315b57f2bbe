"""The command center's FastAPI app: the vehicle's read API over a :class:`CenterStore`, plus ingest.

Routes (under ``/api/v1``)
    * every read route of the vehicle (:mod:`detector.api.routes`): ``/health``, ``/sites``,
      ``/alerts`` (same filters and paging), ``/alerts/{id}``, ``/alerts/{id}/history`` (the
      versions received), ``/alerts/{id}/evidence/{name}`` (files the vehicles uploaded), …;
      ``PATCH /alerts/{id}`` answers 409 (alerts change on their vehicle);
    * ``GET /alerts/stream``: SSE (:mod:`detector.api.stream`), event id = ingest sequence;
    * ``GET /overview``: sites (alerts, open alerts by severity, vehicles), every vehicle's last
      contact, and the vehicles gone silent (no contact for more than ``silent_after_s``);
    * ``GET /vehicles``, ``GET /vehicles/{id}/spectrum`` (the last spectrum summary);
    * ``GET /incidents``: alerts of several sites linked as one emission (frequency, onset, class;
      :mod:`detector.center.incidents`);
    * ``POST /ingest`` (a pushed alert version; ``Authorization: Bearer <vehicle token>``,
      ``Idempotency-Key: {alert_id}:{version}``), ``POST /ingest/batch`` (several versions in
      order, each with its key: what a vehicle sends when a backlog waits), ``POST /ingest/heartbeat``,
      ``PUT /ingest/evidence/{alert_id}/{name}``: authenticated by the vehicle tokens, and exempt
      from the API write token;
    * ``/metrics``.

Reads need no token unless a read token is configured; writes other than ingest need the center's
write token (there are none that change anything today). The plumbing shared with the vehicle
(docs, middleware, error handlers, metrics) is :func:`detector.api.service.create_service_app`.
"""

from __future__ import annotations

from fastapi import FastAPI

from detector.api.context import ApiContext
from detector.api.deps import VehicleTokens
from detector.api.service import create_service_app
from detector.api.stream import build_stream_router
from detector.center.routes import CenterSettings, incidents, ingest, overview, vehicles
from detector.center.routes.ingest import (  # noqa: F401
    INGEST_PREFIX,
    MAX_ALERT_BODY,
    MAX_BATCH_BODY,
    MAX_BATCH_ITEMS,
)
from detector.center.store import CenterStore

__all__ = ["INGEST_PREFIX", "build_center_app"]


def build_center_app(store: CenterStore, *, token: str, vehicle_tokens: dict[str, str], read_token: str | None = None,
                     silent_after_s: float = 60.0, sites_dir=None, stream_poll_s: float = 0.5, mqtt=None) -> FastAPI:
    """The center's app. ``vehicle_tokens`` maps token → vehicle id; ``token`` is the API write
    token, ``read_token`` (optional) protects reads; ``mqtt`` (optional) a started subscriber
    whose state ``/overview`` does not need but ``app.state.mqtt`` keeps."""
    ctx = ApiContext(store=store, token=token, monitor=None, sites_dir=sites_dir, read_token=read_token)
    tokens = VehicleTokens(vehicle_tokens)

    def ingested() -> str:
        return (f"# HELP examwatch_center_ingested Alert versions received\n# TYPE examwatch_center_ingested gauge\n"
                f"examwatch_center_ingested {store.last_event_seq()}\n")

    app = create_service_app(
        ctx, title="examwatch command center",
        description="examwatch command center: alerts pushed by the vehicles. Ingest needs a vehicle token.",
        # the stream first: /alerts/stream must win over /alerts/{alert_id}
        routers=[build_stream_router(poll_s=stream_poll_s), ingest.router, overview.router, vehicles.router,
                 incidents.router],
        exempt=(INGEST_PREFIX,), metrics_hooks=[ingested])
    app.state.mqtt = mqtt
    app.state.vehicle_tokens = tokens
    app.state.center = CenterSettings(store=store, known=tuple(tokens.known), silent_after_s=silent_after_s)
    return app
