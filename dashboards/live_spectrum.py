"""Spectrum against the site baseline: the live PSD, the baseline median and its p99 band, emissions
and alerts marked and labelled (frequency, class, excess dB), whitelisted channels shaded.

Artists carry ``gid`` values so that callers (and tests) can find what was drawn: ``psd``,
``baseline-median``, ``baseline-p99-band``, ``emission`` / ``emission-label``, ``alert-marker`` /
``alert-label`` and ``whitelist``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from dashboards._common import SEVERITY_COLORS, alert_dicts, alert_label, fmt_mhz, new_figure

__all__ = ["spectrum_baseline_figure", "spectrum_arrays", "baseline_arrays", "whitelist_channels"]

_MAX_EMISSION_LABELS = 12


def spectrum_arrays(spectrum: Any) -> dict:
    """``{"freqs_hz", "power", "unit", "rbw_hz"}`` of a :class:`~detector.core.types.Spectrum` or of the
    dict of ``Monitor.latest_spectrum()`` / ``GET /api/v1/spectrum/latest``."""
    if isinstance(spectrum, Mapping):
        f = np.asarray(spectrum["freqs_hz"], dtype=np.float64)
        p = np.asarray([np.nan if v is None else v for v in spectrum["power"]], dtype=np.float64)
        unit, rbw = spectrum.get("unit", "dBFS"), spectrum.get("rbw_hz")
    else:
        f = np.asarray(spectrum.freqs_hz, dtype=np.float64)
        p = np.asarray(spectrum.power, dtype=np.float64)
        unit, rbw = getattr(spectrum, "unit", "dBFS"), getattr(spectrum, "rbw_hz", None)
    if f.ndim != 1 or f.shape != p.shape or f.size < 2:
        raise ValueError(f"a spectrum needs matching 1-D freqs_hz and power of ≥ 2 bins, got {f.shape} and {p.shape}")
    return {"freqs_hz": f, "power": p, "unit": unit or "dBFS", "rbw_hz": None if rbw is None else float(rbw)}


def _nan_list(v) -> np.ndarray:
    return np.asarray([np.nan if x is None else x for x in v], dtype=np.float64)


def baseline_arrays(baseline: Any, freqs_hz: np.ndarray, rbw_hz: float | None = None) -> dict | None:
    """``{"median_db", "p90_db", "p99_db"}`` on the spectrum's grid (NaN where not covered).

    ``baseline`` is the ``baseline`` dict of ``Monitor.latest_spectrum()`` (already on the grid), an
    :class:`~detector.baseline.AlignedBaseline`, or a :class:`~detector.baseline.SiteBaseline`
    (brought onto the grid with :func:`detector.baseline.align`, or interpolated where the RBWs
    cannot be aligned).
    """
    if baseline is None:
        return None
    n = freqs_hz.size
    if isinstance(baseline, Mapping):
        out = {k: _nan_list(baseline[k]) if baseline.get(k) is not None else np.full(n, np.nan)
               for k in ("median_db", "p90_db", "p99_db")}
    elif hasattr(baseline, "p99_db"):  # AlignedBaseline
        out = {k: np.asarray(getattr(baseline, k), dtype=np.float64) for k in ("median_db", "p90_db", "p99_db")}
    elif hasattr(baseline, "p99") and hasattr(baseline, "hist"):  # SiteBaseline
        out = None
        if rbw_hz:
            from detector.baseline import align
            from detector.core.errors import InputError

            try:
                a = align(baseline, freqs_hz, rbw_hz, allow_coarser=True)
                out = {k: np.asarray(getattr(a, k), dtype=np.float64) for k in ("median_db", "p90_db", "p99_db")}
            except (InputError, ValueError):
                out = None
        if out is None:
            bf = np.asarray(baseline.freqs_hz, dtype=np.float64)
            cov = np.asarray(baseline.covered, bool)
            inside = (freqs_hz >= bf[0]) & (freqs_hz <= bf[-1])
            out = {}
            for k, attr in (("median_db", "median"), ("p90_db", "p90"), ("p99_db", "p99")):
                v = np.where(cov, np.asarray(getattr(baseline, attr), dtype=np.float64), np.nan)
                out[k] = np.where(inside, np.interp(freqs_hz, bf, v), np.nan)
    else:
        raise TypeError(f"unknown baseline type {type(baseline).__name__}")
    for k, v in out.items():
        if v.shape != (n,):
            raise ValueError(f"baseline {k} has {v.shape[0]} bins, the spectrum {n}")
    return out


def whitelist_channels(whitelist: Any) -> list[dict]:
    """``[{"center_hz", "bandwidth_hz", "name"}]`` of a :class:`~detector.detection.Whitelist`, of
    :class:`~detector.detection.Channel` objects, of site whitelist entries or of dicts."""
    if whitelist is None:
        return []
    chans = getattr(whitelist, "channels", whitelist)
    out = []
    for ch in chans:
        d = dict(ch) if isinstance(ch, Mapping) else (ch.model_dump() if hasattr(ch, "model_dump") else
                                                       {k: getattr(ch, k, None) for k in ("center_hz", "bandwidth_hz", "name")})
        out.append({"center_hz": float(d["center_hz"]), "bandwidth_hz": float(d.get("bandwidth_hz") or 12500.0),
                    "name": str(d.get("name") or "licensed")})
    return out


def _emission_list(emissions: Iterable[Any] | None) -> list[dict]:
    out = []
    for e in emissions or ():
        d = dict(e) if isinstance(e, Mapping) else {k: getattr(e, k, None) for k in
                                                     ("center_hz", "bandwidth_hz", "peak_dbfs", "snr_db", "excess_db", "classification")}
        if d.get("center_hz") is None:
            continue
        out.append(d)
    return out


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _emission_label(e: Mapping) -> str:
    """``446.0798 MHz nfm_voice +37.5 dB``; the class only when known (frame emissions have none)."""
    parts = [fmt_mhz(e.get("center_hz"), 4)]
    if e.get("classification"):
        parts.append(str(e["classification"]))
    ex, snr = _finite(e.get("excess_db")), _finite(e.get("snr_db"))
    if ex is not None:
        parts.append(f"+{ex:.1f} dB")
    elif snr is not None:
        parts.append(f"SNR {snr:.1f} dB")
    return " ".join(parts)


def spectrum_baseline_figure(
    spectrum: Any,
    *,
    baseline: Any = None,
    emissions: Iterable[Any] | None = None,
    alerts: Iterable[Any] | None = None,
    whitelist: Any = None,
    title: str | None = None,
    max_emission_labels: int = _MAX_EMISSION_LABELS,
    spectrum_label: str = "live spectrum",
) -> Figure:
    """The live spectrum against the baseline, emissions and alerts marked, whitelist shaded.

    Parameters
    ----------
    spectrum : Spectrum or dict
        A :class:`~detector.core.types.Spectrum`, or ``Monitor.latest_spectrum()`` (whose ``baseline``
        and ``emissions`` are used unless given here). Power in dB per RBW bin (dBFS or dBm).
    baseline : dict, AlignedBaseline or SiteBaseline, optional
        Median and p99 per bin (see :func:`baseline_arrays`); drawn as a line and a band.
    emissions : iterable of dict or Emission, optional
        ``center_hz``, ``bandwidth_hz``, ``peak_dbfs``, ``excess_db`` (and optionally
        ``classification``): a triangle at the peak, labelled.
    alerts : iterable of AlertPublic or dict, optional
        Alerts (``center_hz``, ``classification``, ``excess_db``, ``severity``); those inside the
        displayed band get a vertical marker and a boxed label.
    whitelist : Whitelist, list of Channel or dict, optional
        Licensed channels, shaded and named.
    spectrum_label : str
        Legend entry of the spectrum (e.g. "max-hold of the snippet").

    Returns
    -------
    Figure
        One axes: frequency (MHz) against power (dB per RBW bin).
    """
    sp = spectrum_arrays(spectrum)
    f, p = sp["freqs_hz"], sp["power"]
    if baseline is None and isinstance(spectrum, Mapping):
        baseline = spectrum.get("baseline")
    if emissions is None and isinstance(spectrum, Mapping):
        emissions = spectrum.get("emissions")
    base = baseline_arrays(baseline, f, sp["rbw_hz"])
    ems = _emission_list(emissions)
    als = alert_dicts(alerts)
    f_mhz = f / 1e6
    lo_f, hi_f = float(f[0]), float(f[-1])

    fig = new_figure(11, 5)
    ax = fig.add_subplot()
    x_data_y_axes = blended_transform_factory(ax.transData, ax.transAxes)

    for ch in whitelist_channels(whitelist):
        a, b = ch["center_hz"] - ch["bandwidth_hz"] / 2, ch["center_hz"] + ch["bandwidth_hz"] / 2
        if b < lo_f or a > hi_f:
            continue
        ax.axvspan(a / 1e6, b / 1e6, color="tab:green", alpha=0.18, lw=0, gid="whitelist")
        ax.text((a + b) / 2e6, 0.02, f"licensed: {ch['name']}", transform=x_data_y_axes, rotation=90, ha="center",
                va="bottom", fontsize=8, color="darkgreen", gid="whitelist-label", clip_on=True)

    if base is not None and np.isfinite(base["p99_db"]).any():
        ax.fill_between(f_mhz, base["median_db"], base["p99_db"], where=np.isfinite(base["p99_db"]),
                        color="0.55", alpha=0.35, lw=0, label="baseline median–p99", gid="baseline-p99-band")
        ax.plot(f_mhz, base["median_db"], color="0.25", lw=0.9, ls="--", label="baseline median", gid="baseline-median")
    ax.plot(f_mhz, p, color="tab:blue", lw=0.8, label=spectrum_label, gid="psd")

    def level_at(fc: float) -> float:
        i = int(np.clip(np.searchsorted(f, fc), 0, f.size - 1))
        seg = p[max(0, i - 2):i + 3]
        seg = seg[np.isfinite(seg)]
        return float(seg.max()) if seg.size else float(np.nanmax(p))

    ranked = sorted((e for e in ems if lo_f <= float(e["center_hz"]) <= hi_f),
                    key=lambda e: -(_finite(e.get("excess_db")) or _finite(e.get("snr_db")) or 0.0))
    for k, e in enumerate(ranked):
        fc = float(e["center_hz"])
        if not e.get("classification"):  # a frame's emission has no class: take its alert's
            tol = max(float(e.get("bandwidth_hz") or 0.0) / 2, 2000.0)
            match = [a for a in als if a.get("center_hz") is not None and abs(float(a["center_hz"]) - fc) <= tol]
            if match:
                e = {**e, "classification": match[0].get("classification")}
        y = _finite(e.get("peak_dbfs")) or level_at(fc)
        ax.plot([fc / 1e6], [y], "v", color="tab:purple", ms=7, gid="emission",
                label="emission" if k == 0 else None)
        if k < max_emission_labels:
            ax.annotate(_emission_label(e), (fc / 1e6, y), textcoords="offset points", xytext=(5, 8), rotation=90,
                        ha="left", va="bottom", fontsize=7, color="tab:purple", gid="emission-label",
                        annotation_clip=True)

    shown = sorted((a for a in als if lo_f <= float(a.get("center_hz") or -1) <= hi_f), key=lambda a: a["center_hz"])
    for k, a in enumerate(shown):
        fc = float(a["center_hz"])
        color = SEVERITY_COLORS.get(a.get("severity"), SEVERITY_COLORS[None])
        ax.axvline(fc / 1e6, color=color, lw=1.4, alpha=0.75, zorder=1.5, gid="alert-marker",
                   label="alert" if k == 0 else None)
        ax.text(fc / 1e6, 0.97 - 0.075 * (k % 4), "ALERT " + alert_label(a), transform=x_data_y_axes, ha="center",
                va="top", fontsize=9, fontweight="bold", color="white", gid="alert-label", clip_on=True,
                bbox={"boxstyle": "round,pad=0.25", "fc": color, "ec": "none", "alpha": 0.95})

    finite = p[np.isfinite(p)]
    if finite.size:
        lo = float(np.percentile(finite, 1)) - 10.0
        hi = float(finite.max())
        if base is not None and np.isfinite(base["p99_db"]).any():
            hi = max(hi, float(np.nanmax(base["p99_db"])))
        ax.set_ylim(lo, hi + (25.0 if shown else 12.0))
    ax.set_xlim(f_mhz[0], f_mhz[-1])
    ax.set_xlabel("frequency (MHz)")
    rbw = sp["rbw_hz"]
    ax.set_ylabel(f"power ({sp['unit']} per {rbw:.0f} Hz RBW)" if rbw else f"power ({sp['unit']} per bin)")
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.85)
    if title is None:
        title = f"spectrum {fmt_mhz(lo_f, 3)} – {fmt_mhz(hi_f, 3)}"
        if base is not None:
            title += " vs site baseline"
        if shown:
            title += f" — {len(shown)} alert{'s' if len(shown) != 1 else ''}"
    ax.set_title(title)
    return fig
