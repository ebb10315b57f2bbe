"""Waterfall (spectrogram) of the recent minutes, with track boxes and alert markers.

Time runs upward (the newest frame at the top), frequency to the right. Large stacks are reduced by
a max over neighbouring bins and frames, so a short burst stays visible. Artists carry ``gid``
values: ``waterfall``, ``track-box`` / ``track-label``, ``alert-marker`` / ``alert-label``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dashboards._common import SEVERITY_COLORS, alert_dicts, alert_label, fmt_mhz, new_figure

__all__ = ["waterfall_figure", "waterfall_from_spectra", "reduce_stack"]

_MAX_COLS = 1600
_MAX_ROWS = 900


def waterfall_from_spectra(spectra: Sequence[Any]) -> dict:
    """``{"times_s", "freqs_hz", "power_db"}`` (the shape of ``Monitor.waterfall()``) from
    :class:`~detector.core.types.Spectrum` frames on one grid (frames on another grid are left out)."""
    spectra = list(spectra)
    if not spectra:
        raise ValueError("a waterfall needs at least one spectrum")
    f = np.asarray(spectra[-1].freqs_hz, dtype=np.float64)
    rows = [s for s in spectra if s.freqs_hz.size == f.size and s.freqs_hz[0] == f[0]]
    return {"times_s": np.array([s.offset_s for s in rows], dtype=np.float64), "freqs_hz": f,
            "power_db": np.vstack([np.asarray(s.power, dtype=np.float32) for s in rows])}


def reduce_stack(power: np.ndarray, max_rows: int = _MAX_ROWS, max_cols: int = _MAX_COLS) -> tuple[np.ndarray, int, int]:
    """Max-pool a (rows, cols) stack to at most ``max_rows`` × ``max_cols``; returns it and the factors."""
    p = np.asarray(power, dtype=np.float32)
    r = max(1, math.ceil(p.shape[0] / max_rows))
    c = max(1, math.ceil(p.shape[1] / max_cols))
    if r > 1 or c > 1:
        nr, nc = p.shape[0] // r * r, p.shape[1] // c * c
        if nr == 0 or nc == 0:
            return p, 1, 1
        p = p[:nr, :nc].reshape(nr // r, r, nc // c, c)
        with np.errstate(invalid="ignore"):
            p = np.nanmax(np.where(np.isnan(p), -np.inf, p), axis=(1, 3))
        p[np.isneginf(p)] = np.nan
    return p, r, c


def _track_dict(t: Any) -> dict:
    d = dict(t) if isinstance(t, Mapping) else {k: getattr(t, k, None) for k in
                                                 ("track_id", "f_lo_hz", "f_hi_hz", "center_hz", "bandwidth_hz",
                                                  "first_seen_s", "last_seen_s", "alert", "classification")}
    if d.get("f_lo_hz") is None and d.get("center_hz") is not None:
        bw = float(d.get("bandwidth_hz") or 0.0)
        d["f_lo_hz"], d["f_hi_hz"] = d["center_hz"] - bw / 2, d["center_hz"] + bw / 2
    return d


def waterfall_figure(
    waterfall: Mapping | Sequence[Any],
    *,
    tracks: Iterable[Any] | None = None,
    alerts: Iterable[Any] | None = None,
    start: datetime | None = None,
    unit: str = "dBFS",
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Spectrogram with track boxes and alert markers.

    Parameters
    ----------
    waterfall : dict or sequence of Spectrum
        ``Monitor.waterfall()``: ``times_s`` (n,), ``freqs_hz`` (m,), ``power_db`` (n, m) — or
        frames (see :func:`waterfall_from_spectra`).
    tracks : iterable of dict or Track, optional
        ``track_id``, ``f_lo_hz``/``f_hi_hz`` (or ``center_hz``/``bandwidth_hz``),
        ``first_seen_s``, ``last_seen_s``, ``alert``: a box over the track's span (red for an
        alerting track).
    alerts : iterable of AlertPublic or dict, optional
        A marker at (``center_hz``, ``first_seen_s``) and a label, for alerts within the view.
    start : datetime, optional
        Wall-clock time of timeline second 0, shown in the axis label.
    vmin, vmax : float, optional
        Colour limits (dB); default the 5th percentile and the maximum.

    Returns
    -------
    Figure
        Frequency (MHz) across, time (s) upward, colour = power (dB per RBW bin).
    """
    wf = waterfall if isinstance(waterfall, Mapping) else waterfall_from_spectra(waterfall)
    t = np.asarray(wf["times_s"], dtype=np.float64)
    f = np.asarray(wf["freqs_hz"], dtype=np.float64)
    pw = np.asarray(wf["power_db"], dtype=np.float32)
    if pw.ndim != 2 or pw.shape != (t.size, f.size) or t.size == 0 or f.size < 2:
        raise ValueError(f"waterfall power_db must be (len(times_s), len(freqs_hz)) = ({t.size}, {f.size}), got {pw.shape}")
    img, _, _ = reduce_stack(pw)
    dt = float(np.median(np.diff(t))) if t.size > 1 else 0.01
    df = float(f[1] - f[0])
    t0, t1 = float(t[0]), float(t[-1] + dt)
    f0, f1 = float(f[0] - df / 2), float(f[-1] + df / 2)
    finite = img[np.isfinite(img)]
    lo = vmin if vmin is not None else (float(np.percentile(finite, 5)) if finite.size else -100.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else lo + 1.0)
    if hi <= lo:
        hi = lo + 1.0

    fig = new_figure(11, 6)
    ax = fig.add_subplot()
    im = ax.imshow(img, origin="lower", aspect="auto", extent=(f0 / 1e6, f1 / 1e6, t0, t1), cmap="viridis",
                   vmin=lo, vmax=hi, interpolation="nearest", gid="waterfall")
    cb = fig.colorbar(im, ax=ax, pad=0.01)
    cb.set_label(f"power ({unit} per bin)")

    n_tracks = 0
    for tr in (_track_dict(x) for x in (tracks or ())):
        if tr.get("f_lo_hz") is None or tr.get("first_seen_s") is None:
            continue
        a, b = float(tr["f_lo_hz"]), float(tr["f_hi_hz"])
        s0, s1 = float(tr["first_seen_s"]), float(tr.get("last_seen_s") or tr["first_seen_s"])
        if b < f0 or a > f1 or s1 < t0 or s0 > t1:
            continue
        width = max(b - a, 2 * df)
        color = "#ff3030" if tr.get("alert") else "white"
        ax.add_patch(Rectangle(((a + b - width) / 2e6, max(s0, t0)), width / 1e6, max(min(s1, t1) - max(s0, t0), dt),
                               fill=False, ec=color, lw=1.6, ls="-" if tr.get("alert") else "--", gid="track-box"))
        at_top = s1 >= t1 - 0.04 * (t1 - t0)  # a label above the box would fall outside: put it inside
        ax.text((a + b) / 2e6, min(s1, t1), str(tr.get("track_id") or ""), color=color, fontsize=8, ha="center",
                va="top" if at_top else "bottom", gid="track-label", clip_on=True)
        n_tracks += 1

    n_alerts = 0
    shown = [al for al in alert_dicts(alerts) if al.get("center_hz") is not None and al.get("first_seen_s") is not None
             and f0 <= al["center_hz"] <= f1 and float(al["first_seen_s"]) <= t1
             and float(al.get("last_seen_s") or al["first_seen_s"]) >= t0]
    shown.sort(key=lambda al: (max(float(al["first_seen_s"]), t0), al["center_hz"]))
    prev_ts, stack = None, 0
    for al in shown:
        fc = al["center_hz"]
        ts = min(max(float(al["first_seen_s"]), t0), t1)
        stack = stack + 1 if prev_ts is not None and ts - prev_ts < 0.05 * (t1 - t0) else 0
        prev_ts = ts
        color = SEVERITY_COLORS.get(al.get("severity"), SEVERITY_COLORS[None])
        ax.plot([fc / 1e6], [ts], marker="*", ms=16, mec="white", mew=1.2, color=color, ls="none", gid="alert-marker")
        ax.annotate(alert_label(al), (fc / 1e6, ts), textcoords="offset points", xytext=(10, 6 + 18 * stack), fontsize=9,
                    fontweight="bold", color="white", gid="alert-label", annotation_clip=True,
                    bbox={"boxstyle": "round,pad=0.2", "fc": color, "ec": "none", "alpha": 0.9})
        n_alerts += 1

    ax.set_xlim(f0 / 1e6, f1 / 1e6)
    ax.set_ylim(t0, t1)
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel("time (s)" if start is None else f"time (s after {start:%Y-%m-%d %H:%M:%S} UTC)")
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.set_title(title or (f"waterfall {fmt_mhz(f0, 3)} – {fmt_mhz(f1, 3)}, last {t1 - t0:.0f} s"
                           + (f" — {n_tracks} track{'s' if n_tracks != 1 else ''}" if n_tracks else "")
                           + (f", {n_alerts} alert{'s' if n_alerts != 1 else ''}" if n_alerts else "")))
    return fig
