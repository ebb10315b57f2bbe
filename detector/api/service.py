"""What every examwatch service app shares, built once: :func:`create_service_app`.

Both the vehicle's API (:func:`detector.api.app.create_app`) and the command center
(:func:`detector.center.app.build_center_app`) are made here: the offline docs (``/docs``,
``/redoc`` with their assets served by the app: a monitoring vehicle is often offline), the tags,
the token middleware, the security declared in OpenAPI, the shared routers (health, sites,
spectrum, emissions, tracks, alerts, evidence, the dashboard, ``/metrics``) and the error
handlers (:mod:`detector.api.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from detector import __version__
from detector.api.auth import WriteTokenMiddleware
from detector.api.context import ApiContext
from detector.api.deps import ReadAccess
from detector.api.errors import add_error_handlers

__all__ = ["OPENAPI_TAGS", "create_service_app"]

#: the resources, in the order the docs show them
OPENAPI_TAGS = [
    {"name": "health", "description": "Liveness and the capture loop's state (always open)."},
    {"name": "alerts", "description": "Alerts: list, one alert, status changes, history, the live SSE stream."},
    {"name": "evidence", "description": "Evidence files of an alert (SigMF snippets, audio) and evidence packs."},
    {"name": "sites", "description": "Configured sites and their baselines."},
    {"name": "spectrum", "description": "The capture loop's latest frame."},
    {"name": "emissions", "description": "Emissions found in the latest frame."},
    {"name": "tracks", "description": "Open tracks of the capture loop."},
    {"name": "hunt", "description": "The last 100 m on foot: the level of an alert's channel now (the page GET /hunt)."},
    {"name": "bearings", "description": "Direction-finder bearings into the monitor, fused with received power."},
    {"name": "figures", "description": "The dashboard's figures as PNG."},
    {"name": "exports", "description": "Located alerts for GIS tools (GeoJSON, KML)."},
    {"name": "ingest", "description": "Command center: what the vehicles push (vehicle token)."},
    {"name": "overview", "description": "Command center: sites, open alerts and vehicles at a glance."},
    {"name": "incidents", "description": "Command center: the same emission at several sites, linked (issue #22)."},
    {"name": "vehicles", "description": "Command center: the vehicles' last contact, health and spectrum."},
    {"name": "metrics", "description": "Prometheus metrics (always open)."},
]


def create_service_app(ctx: ApiContext, *, title: str, description: str, routers: Sequence[APIRouter] = (),
                       exempt: tuple[str, ...] = (), metrics_hooks: Iterable[Callable[[], str]] = ()) -> FastAPI:
    """An app over ``ctx`` with the shared plumbing and routers.

    ``routers`` come first (their fixed paths, e.g. ``/alerts/stream``, must win over
    ``/alerts/{alert_id}``); paths under ``exempt`` prefixes skip the API token (they authenticate
    themselves, like the center's ingest); ``metrics_hooks`` add text to ``/metrics``."""
    from detector.api.dashboard import build_dashboard_router
    from detector.api.routes import READ_ROUTERS, health, metrics

    app = FastAPIOffline(title=title, version=__version__, description=description, openapi_tags=OPENAPI_TAGS,
                         swagger_ui_parameters={"persistAuthorization": True})
    app.state.ctx = ctx
    app.state.metrics_hooks = list(metrics_hooks)
    ctx.list_cache.attach(ctx.store)
    app.add_middleware(WriteTokenMiddleware, token=ctx.token, read_token=ctx.read_token, exempt=exempt)
    # reads are declared secured only where a read token protects them (the middleware enforces it)
    reads = [ReadAccess] if ctx.read_token is not None else []
    for r in routers:
        app.include_router(r, dependencies=[] if any(r.prefix.startswith(e) for e in exempt) else reads)
    app.include_router(health.router)
    for r in READ_ROUTERS:
        app.include_router(r, dependencies=reads)
    app.include_router(build_dashboard_router(), dependencies=reads)
    app.include_router(metrics.router)
    add_error_handlers(app)
    return app
