"""The hunted channel's level now, for the last 100 m on foot (issue #22 item 5; the page is ``GET /hunt``).

``GET /api/v1/hunt/{alert_id}/level`` and ``GET /api/v1/hunt/level?f_hz=`` give the channel power
of the monitor's latest spectrum over ``center ± bandwidth/2``
(:func:`detector.dsp.channel_power_db`), with the channel's noise floor. With several receivers
the first whose latest spectrum covers the channel answers. A monitor tuned elsewhere now (it
hops) is a 409 that says where it is tuned; before the first frame a 503.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from detector.api.deps import Ctx
from detector.api.schemas import HuntLevel
from detector.core.timefmt import utc_iso
from detector.dsp import channel_bins, channel_power_db

__all__ = ["DEFAULT_BANDWIDTH_HZ", "hunt_level", "router"]

router = APIRouter(prefix="/api/v1")
#: the channel width of an alert without one, and of ``?f_hz=`` without ``bw_hz`` (a 12.5 kHz NFM channel)
DEFAULT_BANDWIDTH_HZ = 12.5e3
_ERRORS = {404: {"description": "no such alert, or no capture loop runs here"},
           409: {"description": "no receiver is tuned to the channel now (the body says where they are)"},
           503: {"description": "no spectrum yet"}}
Bandwidth = Annotated[float | None, Query(gt=0, le=10e6, allow_inf_nan=False,
                                          description="Channel width, Hz (default: the alert's, else 12.5 kHz).")]


def _receivers(mon) -> dict:
    rx = getattr(mon, "receivers", None)
    if isinstance(rx, dict) and rx:
        return rx
    return {getattr(mon, "receiver", None) or "primary": mon}


def _r(v, nd=2):
    return None if v is None or not math.isfinite(v) else round(float(v), nd)


def hunt_level(mon, center_hz: float, bandwidth_hz: float) -> dict:
    """The level answer for ``center_hz ± bandwidth_hz/2`` (raises HTTPException 409/503)."""
    tuned, any_frame = [], False
    for name, m in _receivers(mon).items():
        snap = m.latest
        if snap is None:
            tuned.append({"receiver": name, "center_hz": None, "covers_hz": None})
            continue
        any_frame = True
        spec, res = snap["spectrum"], snap["result"]
        f = spec.freqs_hz
        bin_hz = float(f[1] - f[0]) if f.size > 1 else spec.rbw_hz
        lo, hi = float(f[0]) - bin_hz / 2, float(f[-1]) + bin_hz / 2
        tuned.append({"receiver": name, "center_hz": spec.center_hz, "covers_hz": [lo, hi]})
        if not (center_hz - bandwidth_hz / 2 >= lo and center_hz + bandwidth_hz / 2 <= hi):
            continue
        idx = channel_bins(f, center_hz, bandwidth_hz)
        off = spec.meta.get("dbm_offset_db") if spec.unit == "dBm" else None
        off_arr = np.broadcast_to(np.asarray(off, dtype=np.float64), f.shape) if off is not None else None
        level = channel_power_db(f, spec.power, spec.rbw_hz, center_hz, bandwidth_hz)
        level_dbfs = level if off_arr is None else channel_power_db(f, spec.power.astype(np.float64) - off_arr,
                                                                     spec.rbw_hz, center_hz, bandwidth_hz)
        floor_bin = None if res is None else res.noise_floor_dbfs
        floor_dbfs = None
        if floor_bin is not None and math.isfinite(floor_bin):
            floor_dbfs = float(floor_bin) + 10 * math.log10(idx.size * bin_hz / spec.rbw_hz)
        dbm_shift = None if off_arr is None else float(np.median(off_arr[idx]))
        at = None if spec.start is None else utc_iso(spec.start + timedelta(seconds=spec.duration_s))
        return {"center_hz": center_hz, "bandwidth_hz": bandwidth_hz, "unit": spec.unit,
                "level_dbfs": _r(level_dbfs), "level_dbm": _r(level) if off_arr is not None else None,
                "noise_floor_dbfs": _r(floor_dbfs),
                "noise_floor_dbm": _r(floor_dbfs + dbm_shift) if floor_dbfs is not None and dbm_shift is not None else None,
                "snr_db": _r(level_dbfs - floor_dbfs) if floor_dbfs is not None and math.isfinite(level_dbfs) else None,
                "bins": int(idx.size), "at": at, "offset_s": spec.offset_s, "receiver": name,
                "tuned_center_hz": spec.center_hz}
    if not any_frame:
        raise HTTPException(503, "no spectrum yet: the capture loop has not processed a frame", headers={"Retry-After": "1"})
    where = "; ".join(f"{t['receiver']}: tuned to {t['center_hz'] / 1e6:.4f} MHz, covering "
                      f"{t['covers_hz'][0] / 1e6:.4f}–{t['covers_hz'][1] / 1e6:.4f} MHz"
                      for t in tuned if t["covers_hz"] is not None)
    raise _NotTuned(f"no receiver is tuned to {center_hz / 1e6:.4f} MHz ± {bandwidth_hz / 2e3:.2f} kHz now "
                    f"(it hops elsewhere, or the plan does not watch it): {where}", tuned)


class _NotTuned(Exception):
    def __init__(self, detail: str, tuned: list) -> None:
        super().__init__(detail)
        self.detail, self.tuned = detail, tuned


def _answer(mon, center_hz: float, bandwidth_hz: float, extra: dict):
    try:
        return {**extra, **hunt_level(mon, center_hz, bandwidth_hz)}
    except _NotTuned as exc:
        return JSONResponse({"detail": exc.detail, "tuned": exc.tuned, **extra,
                             "center_hz": center_hz, "bandwidth_hz": bandwidth_hz},
                            status_code=409, headers={"Cache-Control": "no-store", "Retry-After": "1"})


def _need_monitor(ctx):
    if ctx.monitor is None:
        raise HTTPException(404, "no capture loop runs here (a command center): hunt from a vehicle's page, or a "
                                 "laptop running `examwatch monitor` with its own dongle")
    return ctx.monitor


@router.get("/hunt/{alert_id}/level", summary="The level of an alert's channel now (the hunt page)",
            response_model=HuntLevel, responses=_ERRORS, tags=["hunt"])
def alert_level(alert_id: str, ctx: Ctx, bw_hz: Bandwidth = None):
    """``{"alert_id", "center_hz", "bandwidth_hz", "unit", "level_dbfs", "level_dbm", "noise_floor_dbfs",
    "noise_floor_dbm", "snr_db", "bins", "at", "offset_s", "receiver", "tuned_center_hz", "location"}``.

    The level is the channel power of the latest frame over ``center_hz ± bandwidth_hz/2`` (in dBm
    where the dongle is calibrated for power, and always in dBFS); the noise floor is the frame's
    floor over the same channel; ``location`` is the alert's (the vehicle's estimate)."""
    a = ctx.store.get(alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    mon = _need_monitor(ctx)
    bw = bw_hz if bw_hz is not None else (a.bandwidth_hz or DEFAULT_BANDWIDTH_HZ)
    return _answer(mon, float(a.center_hz), float(bw), {"alert_id": a.id, "location": a.location})


@router.get("/hunt/level", summary="The level of a channel now, without an alert (the hunt page)",
            response_model=HuntLevel, responses=_ERRORS, tags=["hunt"])
def frequency_level(ctx: Ctx, f_hz: Annotated[float, Query(gt=0, le=1e10, allow_inf_nan=False,
                                                            description="Channel center, Hz.")],
                    bw_hz: Bandwidth = None):
    """As ``/hunt/{alert_id}/level`` for the channel ``f_hz ± bw_hz/2`` (``alert_id`` and ``location`` null)."""
    mon = _need_monitor(ctx)
    return _answer(mon, float(f_hz), float(bw_hz or DEFAULT_BANDWIDTH_HZ), {"alert_id": None, "location": None})
