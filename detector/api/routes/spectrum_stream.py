"""``GET /api/v1/spectrum/stream``: the live spectrum as Server-Sent Events, compact enough for a
mobile link (4 096 bins at 5 rows/s: about 19 kB/s per viewer deflated, 28 kB/s raw).

Every event's ``data`` is one JSON object (models in :mod:`detector.api.schemas`):

``event: hello`` (first)
    ``{"receiver", "receivers": [...], "rate_hz", "bins", "encoding"}``.
``event: grid`` (first, then only when it changes: a retune, a zoom, a unit change)
    ``{"f0_hz", "bin_hz", "n", "unit", "decimation", "full_f_lo_hz", "full_f_hi_hz", "rbw_hz",
    "center_hz", "key"}``: row bin ``k`` is centred on ``f0_hz + k·bin_hz``; ``decimation`` engine bins
    are max-held into one; ``full_*`` is the engine's whole grid (the pan limits).
``event: row`` (at most ``rate_hz`` a second)
    ``{"seq", "t_s", "frames", "offset_db", "step_db", "floor_db", "q"}``: ``q`` is base64 of ``n``
    bytes (``encoding=deflate``, the default: of their zlib stream), level dB =
    ``offset_db + step_db·byte`` (255: no level) in ``unit``; the row is the max-hold of the
    ``frames`` frames (one per processing step) that arrived since the last row,
    ``t_s`` the stream time of the newest, ``floor_db`` its noise floor (null if none). No new
    frame, no row: the row rate is the lower of ``rate_hz`` and the monitor's step rate.
``event: baseline`` (after a grid not seen before on this connection, then when it changes,
    checked every 2 s)
    ``{"key", "p50": {"offset_db", "step_db", "q"}, "p99": {...}}`` on the row grid of that ``key``
    (max-held the same way), or ``{"key", "p50": null, "p99": null}`` without a baseline. A grid
    event names its ``key``: a plan that hops back to a grid gets no second baseline for it
    (the client keeps the baselines by key).
``event: tracks`` (first, then when the list changes, checked every 2 s)
    ``{"data": [{"id", "f_lo_hz", "f_hi_hz", "center_hz", "alert", "classification",
    "first_seen_s", "last_seen_s", "peak_dbfs"}], "run_id"}``: the confirmed open tracks.

Reads need the read token where one is configured (the token middleware, as for every read).
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import Annotated, Literal, Optional

import anyio
import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from detector.api.deps import Ctx
from detector.api.schemas import SPECTRUM_STREAM_EVENTS
from detector.api.spectrum_rows import RowGrid, quantise_db, row_grid

__all__ = ["STREAM_BINS_MAX", "receivers_of", "router"]

router = APIRouter(prefix="/api/v1")

#: the most bins a row may have
STREAM_BINS_MAX = 16384
#: seconds between checks of the baseline and of the track list
SLOW_S = 2.0


def receivers_of(monitor) -> dict:
    """Receiver name → its :class:`~detector.pipeline.Monitor` (a group's ``receivers``; a single
    monitor is its own receiver, named after its ``receiver`` or ``rx0``)."""
    rx = getattr(monitor, "receivers", None)
    if isinstance(rx, dict) and rx:
        return rx
    return {getattr(monitor, "receiver", None) or "rx0": monitor}


def _b64(q: np.ndarray, deflate: bool) -> str:
    raw = q.tobytes()
    return base64.b64encode(zlib.compress(raw, 6) if deflate else raw).decode("ascii")


def _levels(db: np.ndarray, deflate: bool) -> dict:
    r = quantise_db(db)
    return {"offset_db": round(r.offset_db, 2), "step_db": round(r.step_db, 3), "q": _b64(r.q, deflate)}


def _merge(frames: list) -> tuple:
    """The newest frame's spectrum and result, and the max-hold over the frames on its grid and unit."""
    _, spec, res = frames[-1]
    same = [f[1] for f in frames if f[1].freqs_hz.size == spec.freqs_hz.size and f[1].freqs_hz[0] == spec.freqs_hz[0]
            and f[1].unit == spec.unit]
    power = np.asarray(spec.power, dtype=np.float64) if len(same) == 1 else \
        np.fmax.reduce(np.vstack([np.asarray(s.power, dtype=np.float64) for s in same]), axis=0)
    return spec, res, power, len(same)


def _tracks(mon) -> list[dict]:
    out = []
    for t in mon.tracks():
        bw = t.get("bandwidth_hz") or 0.0
        lo = t.get("f_lo_hz") if t.get("f_lo_hz") is not None else t["center_hz"] - bw / 2
        hi = t.get("f_hi_hz") if t.get("f_hi_hz") is not None else t["center_hz"] + bw / 2
        out.append({"id": t["track_id"], "f_lo_hz": round(float(lo), 1), "f_hi_hz": round(float(hi), 1),
                    "center_hz": round(float(t["center_hz"]), 1), "alert": bool(t.get("alert")),
                    "classification": t.get("classification"), "first_seen_s": t.get("first_seen_s"),
                    "last_seen_s": t.get("last_seen_s"),
                    "peak_dbfs": None if t.get("peak_dbfs") is None else round(float(t["peak_dbfs"]), 1)})
    return out


def _event(name: str, data: dict) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=name)


@router.get("/spectrum/stream", summary="The live spectrum as 8-bit rows (Server-Sent Events)", tags=["spectrum"],
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "`event: hello`, `grid`, `baseline`, `tracks`, then `row`s (see the "
                                            "route's description); `x-events` gives each event's data as a JSON schema",
                             "x-events": SPECTRUM_STREAM_EVENTS},
                       404: {"description": "no capture loop runs here (a command center), or no such receiver"}})
async def spectrum_stream(
        request: Request, ctx: Ctx,
        rate_hz: Annotated[float, Query(gt=0, le=25, allow_inf_nan=False, description="Rows per second at most.")] = 5.0,
        bins: Annotated[int, Query(ge=16, le=STREAM_BINS_MAX, description=(
            "Bins per row at most: the engine's bins of the span are max-held in runs of ceil(span bins / bins)."))] = 4096,
        f_lo_hz: Annotated[Optional[float], Query(ge=0, le=1e10, allow_inf_nan=False,
                                                  description="Zoom: the span's lower edge (Hz).")] = None,
        f_hi_hz: Annotated[Optional[float], Query(ge=0, le=1e10, allow_inf_nan=False,
                                                  description="Zoom: the span's upper edge (Hz).")] = None,
        receiver: Annotated[Optional[str], Query(max_length=100, description=(
            "The receiver (a vehicle with several; default the first)."))] = None,
        encoding: Annotated[Literal["deflate", "raw"], Query(description=(
            "`q` as base64 of the zlib-deflated bytes (browsers: `DecompressionStream(\"deflate\")`) or of the bytes."))]
        = "deflate"):
    """Rows of the latest spectrum, quantised to 8 bits with their scale, on a grid sent when it
    changes; the baseline p50/p99 and the open tracks at a lower rate (module
    :mod:`detector.api.routes.spectrum_stream` gives the message format).

    ``f_lo_hz``/``f_hi_hz`` zoom: only the engine's bins in that span are sent, decimated less; a
    span that misses the current grid gives the whole grid. 4 096 bins at 5 rows/s: about 19 kB/s
    (``encoding=deflate``), 28 kB/s (``raw``)."""
    if ctx.monitor is None:
        raise HTTPException(404, "no capture loop runs here (a command center): the live spectrum comes from a vehicle")
    if f_lo_hz is not None and f_hi_hz is not None and f_hi_hz <= f_lo_hz:
        raise HTTPException(422, f"f_hi_hz ({f_hi_hz}) must be above f_lo_hz ({f_lo_hz})")
    rx = receivers_of(ctx.monitor)
    name = receiver if receiver is not None else next(iter(rx))
    if name not in rx:
        raise HTTPException(404, f"no receiver {name!r}; receivers are {', '.join(rx)}")
    mon = rx[name]
    live = getattr(mon, "live", None)
    if live is None or not hasattr(live, "frames"):
        raise HTTPException(404, f"receiver {name!r} has no live view")
    period = 1.0 / rate_hz
    deflate = encoding == "deflate"

    async def gen():
        yield _event("hello", {"receiver": name, "receivers": list(rx), "rate_hz": rate_hz, "bins": bins,
                              "encoding": encoding})
        seq = max(0, live.frames.seq - 1)  # the first row: the latest frame only
        grid_key = None
        grid: RowGrid | None = None
        sent_tracks = None
        sent_bases: dict[str, dict] = {}  # grid key → the baseline last sent for it on this connection
        next_slow = 0.0
        next_t = time.monotonic()
        while True:
            if await request.is_disconnected():
                return
            now = time.monotonic()
            frames = live.frames.after(seq)
            if frames:
                seq = frames[-1][0]
                spec, res, power, n_frames = _merge(frames)
                f = spec.freqs_hz
                key = (f.size, float(f[0]), float(f[-1]), spec.unit)
                new_grid = key != grid_key
                if new_grid:
                    grid_key = key
                    grid = row_grid(f, bins, f_lo_hz, f_hi_hz)
                    gkey = f"{grid.f0_hz:.1f}:{grid.bin_hz:.4f}:{grid.n}:{spec.unit}"
                    yield _event("grid", {"f0_hz": grid.f0_hz, "bin_hz": grid.bin_hz, "n": grid.n, "unit": spec.unit,
                                          "decimation": grid.factor, "full_f_lo_hz": float(f[0]),
                                          "full_f_hi_hz": float(f[-1]), "rbw_hz": spec.rbw_hz, "center_hz": spec.center_hz,
                                          "key": gkey})
                assert grid is not None
                if new_grid or now >= next_slow:
                    quant = live.baseline_quantiles(spec)
                    base = {"p50": None, "p99": None} if quant is None else \
                        {"p50": _levels(grid.apply(quant[0]), deflate), "p99": _levels(grid.apply(quant[1]), deflate)}
                    base["key"] = gkey
                    if sent_bases.get(gkey) != base:  # a hop back to a grid sent before: the client has it
                        sent_bases[gkey] = base
                        yield _event("baseline", base)
                row = quantise_db(grid.apply(power))
                floor = live.noise_floor_db(spec, res)
                yield _event("row", {"seq": seq, "t_s": round(float(spec.offset_s), 3), "frames": n_frames,
                                     "offset_db": round(row.offset_db, 2), "step_db": round(row.step_db, 3),
                                     "floor_db": None if floor is None else round(floor, 2), "q": _b64(row.q, deflate)})
            if now >= next_slow:
                next_slow = now + SLOW_S
                tracks = {"data": _tracks(mon), "run_id": getattr(mon, "run_id", None)}
                if tracks != sent_tracks:
                    sent_tracks = tracks
                    yield _event("tracks", tracks)
            next_t += period  # a late tick is caught up; one more than a period late is dropped
            if next_t < time.monotonic() - period:
                next_t = time.monotonic()
            await anyio.sleep(max(0.0, next_t - time.monotonic()))

    return EventSourceResponse(gen(), ping=15, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
