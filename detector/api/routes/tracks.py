"""``GET /api/v1/tracks``: the capture loop's open tracks."""

from __future__ import annotations

from fastapi import APIRouter

from detector.api.deps import Ctx, Limit, Offset
from detector.api.schemas import TrackPage

router = APIRouter(prefix="/api/v1", tags=["tracks"])


@router.get("/tracks", summary="Open tracks of the capture loop", response_model=TrackPage)
def tracks(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict:
    """``{"data": [...], "count": N}``: ``count`` is the number of open tracks, ``data`` the page."""
    t = [] if ctx.monitor is None else ctx.monitor.tracks()
    return {"data": t[offset:offset + limit], "count": len(t)}
