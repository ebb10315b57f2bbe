"""The vehicle's application factory, :func:`create_app` (shared plumbing: :mod:`detector.api.service`).

The names this module exported before the split stay importable from here.
"""

from __future__ import annotations

from fastapi import FastAPI

# names this module had before the split, still importable from here (their homes: context,
# errors, routes, routes.metrics, schemas)
from detector.api.context import (
    ApiContext,
    ListCache,  # noqa: F401
)
from detector.api.errors import add_error_handlers  # noqa: F401
from detector.api.routes import build_router  # noqa: F401
from detector.api.routes.metrics import metrics_text as _metrics_text  # noqa: F401
from detector.api.schemas import Page, StatusUpdate  # noqa: F401
from detector.api.service import create_service_app

__all__ = ["ApiContext", "create_app"]


def create_app(ctx: ApiContext, *, title: str = "examwatch") -> FastAPI:
    """Build the vehicle's application with its context (store, monitor, token) injected.

    ``ctx.extra_routers`` (e.g. the SSE stream of :func:`detector.app.push.attach_push`) are
    included before the vehicle's routes, then ``POST /bearings`` where the context keeps bearings
    (``ctx.bearings``, the monitor's :class:`~detector.app.bearings.BearingStore`)."""
    from detector.api.routes import bearings

    routers = [*ctx.extra_routers, *([bearings.router] if ctx.bearings is not None else [])]
    return create_service_app(ctx, title=title, routers=routers,
                              description="examwatch: radio monitoring of exam sites. Writes need "
                                          "`Authorization: Bearer <token>` (the *Authorize* button).")
