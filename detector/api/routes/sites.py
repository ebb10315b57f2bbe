"""``GET /api/v1/sites`` and ``GET /api/v1/sites/{site}/baseline``."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException

from detector.api.deps import Ctx, Limit, Offset
from detector.api.schemas import BaselineSummary, SitePage

router = APIRouter(prefix="/api/v1", tags=["sites"])
log = logging.getLogger("examwatch.api")


def added_channels(ctx) -> tuple:
    """Channels whitelisted by dismissals (``ctx.whitelist_file``), () when there are none."""
    if ctx.whitelist_file is None or not Path(ctx.whitelist_file).is_file():
        return ()
    from detector.core.errors import InputError
    from detector.detection import load_whitelist

    try:
        return load_whitelist(ctx.whitelist_file).channels
    except InputError as exc:
        log.warning("%s", exc)
        return ()


@router.get("/sites", summary="Configured sites", response_model=SitePage)
def sites(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict:
    """``{"data": [...], "count": N}``: ``count`` is the number of sites, ``data`` the page."""
    from detector.config.site import list_sites

    out = {s.name: s.summary() for s in list_sites(ctx.sites_dir)}
    if ctx.site is not None:
        out.setdefault(ctx.site.name, ctx.site.summary())
    for ch in added_channels(ctx):  # whitelisted by dismissals on this vehicle
        if ch.site in out:
            out[ch.site] = {**out[ch.site], "whitelist": [*out[ch.site].get("whitelist", []), {
                "center_hz": ch.center_hz, "bandwidth_hz": ch.bandwidth_hz, "name": ch.name, "level_dbfs": ch.level_dbfs,
                "added_by_dismissal": True}]}
    return {"data": list(out.values())[offset:offset + limit], "count": len(out)}


@router.get("/sites/{site}/baseline", summary="Summary of a site's baseline", response_model=BaselineSummary,
            responses={404: {"description": "no baseline loaded for the site"}})
def baseline(site: str, ctx: Ctx) -> dict:
    b = ctx.baselines.get(site)
    if b is None:
        raise HTTPException(404, f"no baseline loaded for site {site!r}")
    import numpy as np

    occ = np.nan_to_num(b.occupancy)
    return {"site": b.site, "bins": int(b.freqs_hz.size), "f_min_hz": float(b.freqs_hz[0]), "f_max_hz": float(b.freqs_hz[-1]),
            "rbw_hz": b.rbw_hz, "unit": b.unit, "frames_max": int(b.frames.max()), "span_s": b.span_s,
            "n_looks": b.n_looks, "occupied_bins": int((occ > 0.1).sum()),
            "first_start": b.first_start.isoformat() if b.first_start else None,
            "last_end": b.last_end.isoformat() if b.last_end else None, "version": b.version}
