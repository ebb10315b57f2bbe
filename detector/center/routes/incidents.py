"""``GET /api/v1/incidents``: alerts of several sites linked as one emission (issue #22 item 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from detector.api.schemas import IncidentPage
from detector.center.incidents import FREQ_TOL_HZ, FREQ_TOL_PPM, ONSET_TOL_S, link_incidents
from detector.center.routes import Center

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.get("/incidents", summary="The same emission at several sites (frequency, onset and class), linked",
            response_model=IncidentPage)
def incidents(
    center: Center,
    since: Annotated[datetime | None, Query(description="only alerts last seen at or after this time (ISO 8601)")] = None,
    include_closed: Annotated[bool, Query(description="also dismissed and closed alerts")] = False,
    freq_tol_hz: Annotated[float, Query(ge=0, le=1e6, allow_inf_nan=False,
                                        description="frequency tolerance, Hz (plus freq_tol_ppm)")] = FREQ_TOL_HZ,
    freq_tol_ppm: Annotated[float, Query(ge=0, le=1000, allow_inf_nan=False)] = FREQ_TOL_PPM,
    onset_tol_s: Annotated[float, Query(ge=0, le=3600, allow_inf_nan=False,
                                        description="first sightings at most this far apart, s")] = ONSET_TOL_S,
) -> dict:
    alerts = center.store.all_alerts()
    if not include_closed:
        alerts = [a for a in alerts if a.status not in ("dismissed", "closed")]
    if since is not None:
        if since.tzinfo is None:
            from datetime import timezone

            since = since.replace(tzinfo=timezone.utc)
        alerts = [a for a in alerts if a.last_seen >= since]
    found = link_incidents(alerts, freq_tol_hz=freq_tol_hz, freq_tol_ppm=freq_tol_ppm, onset_tol_s=onset_tol_s)
    return {"data": [i.as_dict() for i in found], "count": len(found)}
