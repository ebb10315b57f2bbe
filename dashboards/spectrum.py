"""Spectrum figures: a recording's average and max-hold spectra with its peaks marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["spectrum_summary_figure", "save_figure"]


def spectrum_summary_figure(summary, *, max_peaks: int = 10, title: str | None = None) -> Figure:
    """Average, max-hold and noise floor (dBFS per RBW bin) against frequency (MHz), peaks marked.

    ``summary`` is a :class:`detector.app.analysis.SpectrumSummary`.
    """
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    f_mhz = summary.freqs_hz / 1e6
    ax.plot(f_mhz, summary.maxhold_dbfs, lw=0.7, color="tab:orange", label="max-hold")
    ax.plot(f_mhz, summary.avg_dbfs, lw=0.8, color="tab:blue", label="average")
    ax.plot(f_mhz, summary.floor_dbfs, lw=0.8, ls="--", color="0.4", label="noise floor")
    for rank, p in enumerate(summary.peaks[:max_peaks], start=1):
        ax.plot(f_mhz[p.index], p.peak_db, "v", color="tab:red", ms=6)
        ax.annotate(f"{rank}", (f_mhz[p.index], p.peak_db), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8, color="tab:red")
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel(f"power (dBFS per {summary.rbw_hz:.0f} Hz RBW)")
    ax.set_xlim(f_mhz[0], f_mhz[-1])
    lo = float(np.percentile(summary.avg_dbfs, 1)) - 10
    hi = float(np.max(summary.maxhold_dbfs)) + 8
    ax.set_ylim(lo, hi)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{summary.center_hz / 1e6:.3f} MHz, {summary.duration_s:.2f} s")
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` to exactly ``path`` (format from its extension: .png or .svg)."""
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig) if plt.fignum_exists(id(fig)) else None
    return path
