"""``GET /api/v1/overview``: sites, open alerts per site, every vehicle's last contact, silent vehicles."""

from __future__ import annotations

from fastapi import APIRouter

from detector.api.schemas import Overview
from detector.center.routes import Center, SilentAfter

router = APIRouter(prefix="/api/v1", tags=["overview"])


@router.get("/overview", summary="Sites, open alerts per site, last contact of each vehicle, silent vehicles",
            response_model=Overview)
def overview(center: Center, silent_after_s_q: SilentAfter = None) -> dict:
    return center.store.overview(list(center.known), silent_after_s_q or center.silent_after_s)
