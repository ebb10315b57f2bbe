"""The capture loop's latest frame: ``GET /api/v1/spectrum/latest`` and ``GET /api/v1/emissions``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from detector.api.deps import Ctx, Limit, Offset
from detector.api.schemas import EmissionPage, SpectrumLatest

router = APIRouter(prefix="/api/v1")
_NO_LOOP = {404: {"description": "no capture loop runs here (a command center), or no frame yet"}}


@router.get("/spectrum/latest", summary="The latest frame with baseline quantiles and open emissions",
            response_model=SpectrumLatest, responses=_NO_LOOP, tags=["spectrum"])
def spectrum_latest(ctx: Ctx) -> Response:
    """``{"freqs_hz": [...], "power": [...], "unit", "rbw_hz", "center_hz", "offset_s", "n_looks",
    "noise_floor_dbfs", "noise_floor_dbm", "emissions": [...], "baseline": {"median_db", "p90_db", "p99_db"} | null}``.

    ``unit`` is ``dBm`` when the dongle's calibration profile has a power table for the tuner's
    gain (the baseline quantiles are then converted too; ``noise_floor_dbm`` is set), else
    ``dBFS``. Emission levels (``peak_dbfs``) stay in dBFS."""
    if ctx.monitor is None:
        raise HTTPException(404, "no capture loop runs here")
    body = ctx.monitor.latest_spectrum_json()
    if body is None:
        raise HTTPException(404, "no spectrum yet")
    return Response(content=body, media_type="application/json")  # serialised by the monitor, once per frame


@router.get("/emissions", summary="Emissions of the latest frame", response_model=EmissionPage, responses=_NO_LOOP,
            tags=["emissions"])
def emissions(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict:
    """``{"data": [{"center_hz", "bandwidth_hz", "peak_dbfs", "snr_db", "excess_db"}, ...],
    "count": N, "offset_s", "center_hz"}``: what the detector found in the last frame (the
    same list as ``/spectrum/latest`` → ``emissions``), strongest SNR first; ``excess_db`` is
    null where no baseline covers the emission."""
    if ctx.monitor is None:
        raise HTTPException(404, "no capture loop runs here (a command center): emissions come from a vehicle")
    snap = ctx.monitor.latest
    if snap is None:
        raise HTTPException(404, "no frame yet")
    spec, res = snap["spectrum"], snap["result"]
    em = [] if res is None else sorted(res.emissions, key=lambda e: -e.snr_db)
    data = [{"center_hz": round(e.center_hz, 1), "bandwidth_hz": round(e.bandwidth_hz, 1), "peak_dbfs": round(e.peak_dbfs, 2),
             "snr_db": round(e.snr_db, 2), "excess_db": None if e.excess_db is None else round(e.excess_db, 2)}
            for e in em]
    return {"data": data[offset:offset + limit], "count": len(data), "offset_s": spec.offset_s, "center_hz": spec.center_hz}
