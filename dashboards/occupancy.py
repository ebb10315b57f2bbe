"""Occupancy heatmap of a sweep session or a survey (the rtl_power ``heatmap.py`` view):
frequency × time coloured by power, and below it the occupancy per bin — the share of frames in
which the bin rose above that frame's noise floor by the statistical margin (ITU-R SM.1880, as in
:mod:`detector.baseline`).

Artists carry ``gid`` values: ``heatmap``, ``occupancy`` (this session's share) and
``baseline-occupancy`` (the survey's, when a baseline is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dashboards._common import fmt_mhz, new_figure
from dashboards.waterfall import reduce_stack

__all__ = ["occupancy_figure", "occupancy_stack"]


def occupancy_stack(spectra: Sequence[Any] | Any) -> dict:
    """Frames on one grid: ``{"freqs_hz" (m,), "times_s" (n,), "power_db" (n, m), "starts",
    "occupancy" (m,), "n_looks", "unit"}``.

    ``spectra`` is a list of :class:`~detector.core.types.Spectrum` (survey frames, sweeps) or a
    :class:`~detector.sources.sweep.SweepFile`. Frames on another grid are interpolated onto the
    first frame's grid (NaN outside it).
    """
    frames = list(getattr(spectra, "spectra", spectra))
    if not frames:
        raise ValueError("an occupancy heatmap needs at least one spectrum")
    from detector.baseline import frame_noise_floor_db, occupancy_margin_db

    f = np.asarray(frames[0].freqs_hz, dtype=np.float64)
    rows = []
    for s in frames:
        sf = np.asarray(s.freqs_hz, dtype=np.float64)
        sp = np.asarray(s.power, dtype=np.float64)
        if sf.size == f.size and np.allclose(sf, f, rtol=0, atol=1e-3 * (f[1] - f[0])):
            rows.append(sp)
        else:
            inside = (f >= sf[0]) & (f <= sf[-1])
            rows.append(np.where(inside, np.interp(f, sf, sp), np.nan))
    p = np.vstack(rows)
    looks = float(np.median([max(float(s.n_looks or 1.0), 1.0) for s in frames]))
    margin = occupancy_margin_db(looks)
    floors = np.array([frame_noise_floor_db(r, looks) for r in p])
    above = p > (floors[:, None] + margin)
    seen = np.isfinite(p).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        occ = np.where(seen > 0, above.sum(axis=0) / np.maximum(seen, 1), np.nan)
    starts = [s.start for s in frames]
    if all(isinstance(st, datetime) for st in starts):
        t = np.array([(st - starts[0]).total_seconds() for st in starts])
    else:
        t = np.array([float(s.offset_s) for s in frames])
    return {"freqs_hz": f, "times_s": t, "power_db": p.astype(np.float32), "starts": starts, "occupancy": occ,
            "n_looks": looks, "margin_db": margin, "unit": getattr(frames[0], "unit", "dBFS")}


def occupancy_figure(spectra: Sequence[Any] | Any, *, baseline: Any = None, title: str | None = None,
                     vmin: float | None = None, vmax: float | None = None) -> Figure:
    """Heatmap of power over frequency and time, with the per-bin occupancy below it.

    Parameters
    ----------
    spectra : sequence of Spectrum, or SweepFile
        Sweep CSV spectra (:func:`detector.sources.sweep.read_sweeps`) or survey frames.
    baseline : SiteBaseline, optional
        Its occupancy is drawn beside the session's, for comparison.
    vmin, vmax : float, optional
        Colour limits (dB); default the 2nd percentile and the maximum.

    Returns
    -------
    Figure
        Two axes sharing frequency (MHz): the heatmap (time in s upward) and occupancy (%).
    """
    st = occupancy_stack(spectra)
    f, t, p = st["freqs_hz"], st["times_s"], st["power_db"]
    img, r, c = reduce_stack(p)
    df = float(f[1] - f[0]) if f.size > 1 else 1.0
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    if not dt > 0:
        dt = 1.0
    f_edges = (f[0] - df / 2 + np.arange(img.shape[1] + 1) * df * c) / 1e6
    t_rows = t[::r][: img.shape[0]]
    t_edges = np.append(t_rows, t_rows[-1] + dt * r)
    if not np.all(np.diff(t_edges) > 0):  # repeated timestamps: evenly spaced rows instead
        t_edges = t[0] + np.arange(img.shape[0] + 1) * dt * r
    finite = img[np.isfinite(img)]
    lo = vmin if vmin is not None else (float(np.percentile(finite, 2)) if finite.size else -100.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else lo + 1.0)
    if hi <= lo:
        hi = lo + 1.0

    fig = new_figure(11, 7)
    ax, ax_occ = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    mesh = ax.pcolormesh(f_edges, t_edges, np.ma.masked_invalid(img), cmap="inferno", vmin=lo, vmax=hi,
                         shading="flat", gid="heatmap", rasterized=True)
    cb = fig.colorbar(mesh, ax=ax, pad=0.01)
    cb.set_label(f"power ({st['unit']} per bin)")
    start = st["starts"][0]
    ax.set_ylabel("time (s)" if not isinstance(start, datetime) else f"time (s after {start:%Y-%m-%d %H:%M:%S})")
    ax.set_ylim(t_edges[0], t_edges[-1])

    ax_occ.plot(f / 1e6, 100 * st["occupancy"], color="tab:red", lw=0.9, label="this session", gid="occupancy")
    if baseline is not None:
        bf = np.asarray(baseline.freqs_hz, dtype=np.float64) / 1e6
        ax_occ.plot(bf, 100 * np.asarray(baseline.occupancy, dtype=np.float64), color="0.3", lw=0.9, ls="--",
                    label="site baseline", gid="baseline-occupancy")
    ax_occ.set_ylim(0, 100)
    ax_occ.set_ylabel("occupancy (%)")
    ax_occ.set_xlabel("frequency (MHz)")
    ax_occ.grid(alpha=0.3)
    ax_occ.legend(loc="upper right", fontsize=8)
    ax_occ.set_xlim(f_edges[0], f_edges[-1])
    ax_occ.ticklabel_format(axis="x", useOffset=False)
    n = p.shape[0]
    ax.set_title(title or f"occupancy {fmt_mhz(f[0], 3)} – {fmt_mhz(f[-1], 3)}, {n} frames over {t_edges[-1] - t_edges[0]:.0f} s "
                          f"(threshold floor + {st['margin_db']:.1f} dB)")
    return fig
