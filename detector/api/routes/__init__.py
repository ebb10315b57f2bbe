"""The routers of the HTTP API, one per resource (each module's ``router``).

:data:`READ_ROUTERS` are the vehicle's resources that the command center serves too, in the order
they are included; :func:`build_router` joins them (and ``health``) into one router, as before.
"""

from __future__ import annotations

from fastapi import APIRouter

from detector.api.routes import (
    alerts,
    evidence,
    health,
    hunt,
    metrics,
    sites,
    spectrum,
    spectrum_stream,
    tracks,
)

__all__ = ["READ_ROUTERS", "alerts", "build_router", "evidence", "health", "hunt", "metrics", "sites", "spectrum",
           "spectrum_stream", "tracks"]

#: routers under ``/api/v1`` after ``health`` (open), read with the read token where one is set
READ_ROUTERS = (sites.router, spectrum.router, spectrum_stream.router, tracks.router, alerts.router, evidence.router,
                hunt.router)


def build_router() -> APIRouter:
    """Every ``/api/v1`` route of the vehicle (health, sites, spectrum, its stream, emissions, tracks, alerts, evidence)."""
    r = APIRouter()
    r.include_router(health.router)
    for sub in READ_ROUTERS:
        r.include_router(sub)
    return r
