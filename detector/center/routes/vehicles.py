"""``GET /api/v1/vehicles`` and ``GET /api/v1/vehicles/{vehicle_id}/spectrum``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from detector.api.schemas import VehiclePage, VehicleSpectrum
from detector.center.routes import Center, SilentAfter

router = APIRouter(prefix="/api/v1", tags=["vehicles"])


@router.get("/vehicles", summary="Vehicles: last contact, transport, site, alerts, last health", response_model=VehiclePage)
def vehicles(center: Center, silent_after_s_q: SilentAfter = None) -> dict:
    v = center.store.vehicles(list(center.known), silent_after_s_q or center.silent_after_s)
    return {"data": v, "count": len(v)}


@router.get("/vehicles/{vehicle_id}/spectrum", summary="The last spectrum summary a vehicle sent",
            response_model=VehicleSpectrum, responses={404: {"description": "no spectrum summary from this vehicle"}})
def vehicle_spectrum(vehicle_id: str, center: Center) -> dict:
    s = center.store.vehicle_spectrum(vehicle_id)
    if s is None:
        raise HTTPException(404, f"no spectrum summary from vehicle {vehicle_id!r}")
    return s
