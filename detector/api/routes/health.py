"""``GET /api/v1/health``: liveness, and the capture loop's state on a vehicle. Always open."""

from __future__ import annotations

from fastapi import APIRouter

from detector import __version__
from detector.api.deps import Ctx
from detector.api.schemas import Health

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", summary="Liveness and the capture loop's state", response_model=Health)
def health(ctx: Ctx) -> dict:
    """``{"status": "ok"|"degraded", ...}``: source state, frames processed and dropped, last frame time."""
    body = {"status": "ok", "version": __version__, "role": ctx.role}
    if ctx.monitor is not None:
        body.update(ctx.monitor.health())
    return body
