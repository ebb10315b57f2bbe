"""The radio environment of a site against its baseline, for the report: the survey's median, p90–p99
band and maximum per bin, the session's alerts at their frequency and peak level (how far above the
surveyed p99 they rose), and below it the surveyed occupancy.

Artists carry ``gid`` values: ``baseline-median``, ``baseline-p99-band``, ``baseline-max``,
``alert-marker``, ``alert-label``, ``baseline-occupancy``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dashboards._common import SEVERITY_COLORS, alert_dicts, alert_label, fmt_mhz, new_figure

__all__ = ["environment_figure", "baseline_at"]


def baseline_at(baseline: Any, f_hz: float) -> dict:
    """The baseline's ``median_db``, ``p99_db`` and ``occupancy`` at the bin nearest ``f_hz``
    (``None`` values outside the surveyed band)."""
    f = np.asarray(baseline.freqs_hz, dtype=np.float64)
    if not (f[0] - baseline.bin_hz <= f_hz <= f[-1] + baseline.bin_hz):
        return {"median_db": None, "p99_db": None, "occupancy": None}
    i = int(np.argmin(np.abs(f - f_hz)))
    if not bool(baseline.covered[i]):
        return {"median_db": None, "p99_db": None, "occupancy": None}
    return {"median_db": float(baseline.median[i]), "p99_db": float(baseline.p99[i]),
            "occupancy": float(baseline.occupancy[i])}


def environment_figure(baseline: Any, alerts: Iterable[Any] | None = None, *, title: str | None = None) -> Figure:
    """Baseline statistics per bin with the alerts marked, and the surveyed occupancy.

    Parameters
    ----------
    baseline : SiteBaseline
        The site's survey (:func:`detector.baseline.load`).
    alerts : iterable of AlertPublic or dict, optional
        Marked at (``center_hz``, ``peak_dbfs``) when inside the surveyed band.

    Returns
    -------
    Figure
        Two axes sharing frequency (MHz): levels (dB per RBW bin) and occupancy (%).
    """
    f = np.asarray(baseline.freqs_hz, dtype=np.float64)
    cov = np.asarray(baseline.covered, bool)

    def masked(v) -> np.ndarray:
        return np.where(cov, np.asarray(v, dtype=np.float64), np.nan)

    med, p90, p99, mx = masked(baseline.median), masked(baseline.p90), masked(baseline.p99), masked(baseline.max_db)
    occ = masked(baseline.occupancy)
    f_mhz = f / 1e6
    fig = new_figure(11, 6)
    ax, ax_occ = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.fill_between(f_mhz, p90, p99, where=np.isfinite(p99), color="0.55", alpha=0.4, lw=0, label="survey p90–p99",
                    gid="baseline-p99-band")
    ax.plot(f_mhz, med, color="0.2", lw=0.9, label="survey median", gid="baseline-median")
    ax.plot(f_mhz, mx, color="0.5", lw=0.6, ls=":", label="survey max", gid="baseline-max")
    shown = [a for a in alert_dicts(alerts) if a.get("center_hz") is not None and f[0] <= a["center_hz"] <= f[-1]]
    shown.sort(key=lambda a: a["center_hz"])
    for k, a in enumerate(shown):
        fc = float(a["center_hz"])
        color = SEVERITY_COLORS.get(a.get("severity"), SEVERITY_COLORS[None])
        y = a.get("peak_dbfs")
        if y is None:
            y = baseline_at(baseline, fc)["p99_db"]
        ax.axvline(fc / 1e6, color=color, lw=1.2, alpha=0.6, gid="alert-marker", label="alert" if k == 0 else None)
        if y is not None:
            ax.plot([fc / 1e6], [y], "o", color=color, mec="black", ms=7)
            ax.annotate(alert_label(a), (fc / 1e6, y), textcoords="offset points", xytext=(6, 6 + 14 * (k % 3)),
                        fontsize=8, color=color, fontweight="bold", gid="alert-label", annotation_clip=True)
    finite = np.concatenate([v[np.isfinite(v)] for v in (med, mx)] +
                            [np.array([a["peak_dbfs"] for a in shown if a.get("peak_dbfs") is not None], dtype=np.float64)])
    if finite.size:
        ax.set_ylim(float(np.percentile(finite, 0.5)) - 8, float(finite.max()) + 15)
    ax.set_ylabel(f"level ({baseline.unit} per {baseline.rbw_hz:.0f} Hz RBW)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax_occ.plot(f_mhz, 100 * occ, color="tab:red", lw=0.8, gid="baseline-occupancy")
    ax_occ.set_ylim(0, 100)
    ax_occ.set_ylabel("occupancy (%)")
    ax_occ.set_xlabel("frequency (MHz)")
    ax_occ.grid(alpha=0.3)
    ax_occ.set_xlim(f_mhz[0], f_mhz[-1])
    ax_occ.ticklabel_format(axis="x", useOffset=False)
    frames = int(np.max(baseline.frames)) if np.size(baseline.frames) else 0
    ax.set_title(title or f"site {baseline.site}: survey {fmt_mhz(f[0], 3)} – {fmt_mhz(f[-1], 3)} ({frames} frames), "
                          f"{len(shown)} alert{'s' if len(shown) != 1 else ''} marked")
    return fig
