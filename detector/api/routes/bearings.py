"""``POST /api/v1/bearings``: a direction finder's bearings into the running monitor (write token).

The body is one bearing or a list, with the fields of the plain JSON format of
:mod:`detector.sources.bearings` (``time``, ``lat``, ``lon``, ``heading``, ``bearing_deg``,
``confidence``, ``frequency``). They go to the monitor's
:class:`~detector.app.bearings.BearingStore`, where the track locator finds them (fused with the
received power of the tracks on their frequency and time). A malformed body is a 422 naming the
field (and the item of a list); nothing of it is kept then.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from detector.api.deps import Ctx, WriteAccess

router = APIRouter(prefix="/api/v1", tags=["bearings"])

__all__ = ["router", "BearingIn", "BearingsAccepted"]


class BearingIn(BaseModel):
    """One bearing (the plain JSON format)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    time: str | float = Field(description="When it was taken: ISO 8601 with Z or an offset "
                                          "(2026-06-07T09:00:00Z), or POSIX seconds.")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Where it was taken: latitude, degrees (WGS84).")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees (WGS84).")
    heading: float | None = Field(default=None, ge=-360, le=720, allow_inf_nan=False,
                                  validation_alias=AliasChoices("heading", "heading_deg"),
                                  description="The vehicle's heading, degrees clockwise from true north; "
                                              "null: bearing_deg is already from true north.")
    bearing_deg: float = Field(ge=-360, le=720, allow_inf_nan=False,
                               description="Degrees clockwise from the heading (from true north without one).")
    confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                     description="0–1, 1 best (default 1); the bearing's variance grows as 1/confidence.")
    frequency: float | None = Field(default=None, gt=0, le=1e11, allow_inf_nan=False,
                                    validation_alias=AliasChoices("frequency", "frequency_hz"),
                                    description="The transmitter's frequency, Hz: a bearing is fused with the tracks "
                                                "within their bandwidth/2 + 12.5 kHz of it (none without it).")


class BearingsAccepted(BaseModel):
    """What the store took."""

    accepted: int = Field(ge=0, description="bearings of this request kept")
    received: int = Field(ge=0, description="bearings received since the monitor started (all inputs)")
    kept: int = Field(ge=0, description="bearings in the store now (the last 30 min)")
    without_frequency: int = Field(ge=0, description="of this request, bearings without a frequency (never fused)")


@router.post("/bearings", summary="Add direction-finder bearings (token required)", status_code=201,
             response_model=BearingsAccepted, dependencies=[WriteAccess],
             responses={401: {"description": "missing or wrong bearer token"},
                        422: {"description": "a malformed bearing (the field and the item are named)"}})
def post_bearings(body: BearingIn | list[BearingIn], ctx: Ctx) -> dict:
    """One bearing or a list: ``{"time", "lat", "lon", "heading", "bearing_deg", "confidence", "frequency"}``."""
    from detector.core.errors import InputError
    from detector.sources.bearings import bearings_from_records

    store = ctx.bearings  # the route is included only where the context keeps bearings (create_app)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise HTTPException(422, "no bearing: send one bearing or a non-empty list")
    try:
        got = bearings_from_records([b.model_dump() for b in items], "body")
    except InputError as exc:
        store.reject(str(exc), n=len(items))
        raise HTTPException(422, str(exc)) from None
    n = store.add(got)
    return {"accepted": n, "received": store.received, "kept": len(store),
            "without_frequency": sum(1 for b in items if b.frequency is None)}
