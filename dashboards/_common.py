"""Shared pieces of the figures: saving (PNG/SVG/PDF), alert records, colours, labels.

Figures are built on :class:`matplotlib.figure.Figure` directly (never pyplot state), so they can be
drawn from API worker threads; :data:`RENDER_LOCK` serialises rendering where several threads draw.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "RENDER_LOCK",
    "SAVE_FORMATS",
    "SEVERITY_COLORS",
    "alert_dict",
    "alert_dicts",
    "alert_label",
    "figure_bytes",
    "fmt_mhz",
    "new_figure",
    "save_figure",
]

#: matplotlib is not thread-safe for concurrent drawing of shared state (font caches, text
#: layout); API handlers take this lock around building and rendering a figure.
RENDER_LOCK = threading.RLock()

#: file extensions :func:`save_figure` accepts
SAVE_FORMATS = ("png", "svg", "pdf")

#: high-contrast colours of alert severities (colour-blind safe order: red, orange, blue)
SEVERITY_COLORS = {"high": "#d62728", "medium": "#ff7f0e", "low": "#1f77b4", "info": "#7f7f7f", None: "#7f7f7f"}
DPI = 110


def new_figure(width_in: float = 10.0, height_in: float = 4.5) -> Figure:
    """A Figure with constrained layout (no pyplot, no global state)."""
    return Figure(figsize=(width_in, height_in), layout="constrained")


def save_figure(fig: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` to exactly ``path``; the format comes from the extension (.png, .svg or .pdf).

    Raises ``ValueError`` for another extension (nothing is written then).
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"cannot save a figure as {path.name!r}: use a .png, .svg or .pdf file name")
    with RENDER_LOCK:
        fig.savefig(path, format=fmt, dpi=dpi, metadata=_metadata(fmt))
    return path


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: int = DPI) -> bytes:
    """The figure rendered in memory as PNG, SVG or PDF bytes."""
    fmt = fmt.lower()
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(SAVE_FORMATS)}, not {fmt!r}")
    buf = io.BytesIO()
    with RENDER_LOCK:
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_metadata(fmt))
    return buf.getvalue()


def _metadata(fmt: str) -> dict:
    # no creation date: the same figure gives the same bytes (reproducible evidence packs)
    if fmt == "png":
        return {"Software": "examwatch"}
    if fmt == "svg":
        return {"Date": None, "Creator": "examwatch"}
    return {"CreationDate": None, "Creator": "examwatch"}


def fmt_mhz(f_hz: float | None, digits: int = 4) -> str:
    """``446.0813 MHz`` (or ``?`` for a missing value)."""
    if f_hz is None or not math.isfinite(float(f_hz)):
        return "?"
    return f"{float(f_hz) / 1e6:.{digits}f} MHz"


def alert_dict(a: Any) -> dict:
    """An alert (``AlertPublic``, a dict from the API or a track event) as a plain dict."""
    if hasattr(a, "model_dump"):
        return a.model_dump()
    if isinstance(a, Mapping):
        return dict(a)
    raise TypeError(f"an alert must be an AlertPublic or a dict, not {type(a).__name__}")


def alert_dicts(alerts: Iterable[Any] | None) -> list[dict]:
    return [alert_dict(a) for a in (alerts or ())]


def alert_label(a: Mapping, *, digits: int = 4) -> str:
    """``446.0798 MHz nfm_voice +37.5 dB`` — frequency, class and excess over the baseline
    (or the SNR when there is no baseline excess)."""
    parts = [fmt_mhz(a.get("center_hz"), digits), str(a.get("classification") or "unknown")]
    ex = a.get("excess_db")
    if ex is not None and math.isfinite(float(ex)):
        parts.append(f"+{float(ex):.1f} dB")
    elif a.get("snr_db") is not None and math.isfinite(float(a["snr_db"])):
        parts.append(f"SNR {float(a['snr_db']):.1f} dB")
    return " ".join(parts)


def to_utc(t: datetime | str | None) -> datetime | None:
    """Aware UTC datetime of a datetime or ISO 8601 string (naive = UTC); None stays None."""
    if t is None:
        return None
    if isinstance(t, str):
        t = datetime.fromisoformat(t.replace("Z", "+00:00"))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
