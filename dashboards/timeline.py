"""The exam timeline: the schedule's sessions as shaded spans, each alert as a bar from first to last
seen, one row per alert, coloured by severity.

Times are wall-clock (UTC, or a zone given) when sessions and alerts carry datetimes, or timeline
seconds (``first_seen_s``/``last_seen_s``; sessions as (start_s, end_s)) for simulated runs.
Artists carry ``gid`` values: ``session``, ``session-label``, ``alert-bar``, ``alert-label``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import tzinfo
from typing import Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from dashboards._common import SEVERITY_COLORS, alert_dicts, alert_label, new_figure, to_utc

__all__ = ["exam_timeline_figure", "session_spans"]


def session_spans(sessions: Iterable[Any] | None) -> list[tuple[Any, Any, str]]:
    """``[(start, end, name)]`` from site ``Session`` objects, ``ExamSession`` (seconds), dicts, or tuples."""
    out = []
    for i, s in enumerate(sessions or ()):
        if isinstance(s, Mapping):
            a, b, name = s.get("start", s.get("start_s")), s.get("end", s.get("end_s")), s.get("name")
        elif hasattr(s, "start") and hasattr(s, "end"):
            a, b, name = s.start, s.end, getattr(s, "name", None)
        elif hasattr(s, "start_s"):
            a, b, name = s.start_s, s.end_s, getattr(s, "name", None)
        else:
            a, b = s[0], s[1]
            name = s[2] if len(s) > 2 else None
        if isinstance(a, str):
            a, b = to_utc(a), to_utc(b)
        out.append((a, b, name or f"session {i + 1}"))
    return out


def exam_timeline_figure(
    sessions: Iterable[Any] | None = None,
    alerts: Iterable[Any] | None = None,
    *,
    tz: tzinfo | None = None,
    title: str | None = None,
    max_rows: int = 40,
) -> Figure:
    """Sessions and alerts over time.

    Parameters
    ----------
    sessions : iterable, optional
        Site sessions (``start``/``end`` aware datetimes, ``name``) or (start_s, end_s[, name])
        in timeline seconds.
    alerts : iterable of AlertPublic or dict, optional
        Bars from ``first_seen`` to ``last_seen`` (or ``first_seen_s`` to ``last_seen_s`` when the
        sessions are in seconds), labelled with frequency, class and excess.
    tz : tzinfo, optional
        Zone of the time axis for wall-clock times (default UTC).
    max_rows : int
        Most alert rows drawn (the earliest first); the title says how many were left out.

    Returns
    -------
    Figure
        Time across; one row per alert.
    """
    spans = session_spans(sessions)
    als = alert_dicts(alerts)
    seconds = bool(spans) and all(isinstance(a, (int, float)) for a, _, _ in spans)
    if not spans:
        seconds = bool(als) and all(a.get("first_seen") is None and a.get("first_seen_s") is not None for a in als)

    def span_of(a: Mapping):
        if seconds:
            s0, s1 = a.get("first_seen_s"), a.get("last_seen_s")
            return (None, None) if s0 is None else (float(s0), float(s1 if s1 is not None else s0))
        s0, s1 = to_utc(a.get("first_seen")), to_utc(a.get("last_seen"))
        return (None, None) if s0 is None else (s0, s1 or s0)

    rows = [(a, *span_of(a)) for a in als]
    rows = [r for r in rows if r[1] is not None]
    rows.sort(key=lambda r: r[1])
    left_out = max(0, len(rows) - max_rows)
    rows = rows[:max_rows]

    fig = new_figure(11, max(3.0, 1.6 + 0.42 * max(len(rows), 1)))
    ax = fig.add_subplot()

    def x(v):
        if seconds:
            return float(v)
        return mdates.date2num(v)

    lo_hi: list[float] = []
    for a, b, name in spans:
        if a is None or b is None:
            continue
        xa, xb = x(a), x(b)
        ax.axvspan(xa, xb, color="#2ca02c", alpha=0.15, lw=0, gid="session")
        ax.axvline(xa, color="#2ca02c", lw=1.2)
        ax.axvline(xb, color="#2ca02c", lw=1.2, ls="--")
        ax.annotate(str(name), (xa, 1.0), xycoords=ax.get_xaxis_transform(), textcoords="offset points", xytext=(3, 2),
                    va="bottom", ha="left", fontsize=10, color="#1a6b1a", fontweight="bold", gid="session-label",
                    annotation_clip=False)
        lo_hi += [xa, xb]
    min_w = 0.0
    if rows:
        xs = [x(r[1]) for r in rows] + [x(r[2]) for r in rows]
        lo_hi += xs
    if lo_hi:
        full = max(lo_hi) - min(lo_hi)
        min_w = full * 0.004 if full > 0 else (1.0 if seconds else 1 / 1440)
    for i, (a, s0, s1) in enumerate(rows):
        xa, xb = x(s0), x(s1)
        color = SEVERITY_COLORS.get(a.get("severity"), SEVERITY_COLORS[None])
        ax.barh(i, max(xb - xa, min_w), left=xa, height=0.6, color=color, ec="black", lw=0.5, gid="alert-bar")
        status = a.get("status")
        ax.annotate(alert_label(a) + (f" [{status}]" if status else ""), (max(xb, xa + min_w), i), textcoords="offset points",
                    xytext=(6, 0), va="center", ha="left", fontsize=9, gid="alert-label", annotation_clip=True)
    ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5 if rows else -0.5)
    ax.set_yticks(range(len(rows)), [str(r[0].get("track_id") or r[0].get("id") or i) for i, r in enumerate(rows)],
                  fontsize=8)
    if lo_hi:
        lo, hi = min(lo_hi), max(lo_hi)
        pad = (hi - lo) * 0.03 if hi > lo else (10.0 if seconds else 5 / 1440)
        ax.set_xlim(lo - pad, hi + pad * 8)  # room for the labels of the last alerts
    if seconds:
        ax.set_xlabel("time (s on the run's timeline)")
    else:
        loc = mdates.AutoDateLocator(tz=tz)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=tz))
        zone = "UTC" if tz is None else str(tz)
        ax.set_xlabel(f"time ({zone})")
    ax.set_ylabel("alert")
    ax.grid(axis="x", alpha=0.3)
    n = len(rows)
    ax.set_title(title or f"exam timeline: {len(spans)} session{'s' if len(spans) != 1 else ''}, "
                          f"{n} alert{'s' if n != 1 else ''}" + (f" ({left_out} more not shown)" if left_out else ""),
                 pad=18)
    return fig
