"""The post-exam report: one self-contained HTML file (or a PDF) per site and time range.

What was watched (each monitor run: plan, receivers and their health, per band the catch rate
the running plan achieved, from its dwell log), then for each exam session of the site's schedule
(and a section for alerts outside every session): the
timeline of the session, the radio environment against the site baseline (when one is given), and
each alert with its fields and reasons, its location (and map), the figures of its evidence snippet
(spectrum, waterfall), the evidence files with their SHA-256, and its handling history (who
acknowledged, dismissed or closed it, when and why).

Figures are embedded as ``data:image/png;base64`` images; the HTML loads nothing from the network.
:func:`collect_report` gathers the data, :func:`render_html` and :func:`render_pdf` (matplotlib's
``PdfPages``) write it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from matplotlib.figure import Figure

from dashboards._common import alert_dict, alert_label, figure_bytes, fmt_mhz, new_figure, to_utc

__all__ = ["Report", "ReportSection", "collect_report", "render_html", "render_pdf", "write_report"]

_PAGE = 1000


@dataclass
class ReportSection:
    """One exam session (or the alerts outside every session)."""

    name: str
    start: Any  # aware datetime, scene seconds (float), or None
    end: Any
    alerts: list[dict] = field(default_factory=list)
    in_session: bool = True


@dataclass
class Report:
    """What a report shows; built by :func:`collect_report`."""

    site: Any  # SiteConfig
    sections: list[ReportSection]
    t_from: datetime | None
    t_to: datetime | None
    baseline: Any = None
    store: Any = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    histories: dict[str, list[dict]] = field(default_factory=dict)
    readings: dict[str, list] = field(default_factory=dict)
    #: the monitor runs of the site in the range (``DATA_DIR/runs``, :mod:`detector.app.run_record`):
    #: plan, receivers, and the catch rate the running plan achieved
    runs: list[dict] = field(default_factory=list)

    @property
    def alerts(self) -> list[dict]:
        seen, out = set(), []
        for s in self.sections:
            for a in s.alerts:
                if a["id"] not in seen:
                    seen.add(a["id"])
                    out.append(a)
        return out

    @property
    def tz(self):
        try:
            return ZoneInfo(getattr(self.site, "timezone", "UTC") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return timezone.utc


def _all_alerts(store: Any, site: str) -> list[dict]:
    out, offset = [], 0
    while True:
        page, total = store.list(site=site, limit=_PAGE, offset=offset)
        out.extend(alert_dict(a) for a in page)
        offset += len(page)
        if not page or offset >= total:
            return out


def _overlaps(a0, a1, b0, b1) -> bool:
    return (b1 is None or a0 is None or a0 <= b1) and (b0 is None or a1 is None or a1 >= b0)


def collect_report(store: Any, site: Any, *, t_from: datetime | None = None, t_to: datetime | None = None,
                   baseline: Any = None, runs: list[dict] | None = None) -> Report:
    """Alerts of ``site`` (a :class:`~detector.config.site.SiteConfig` or a name) in ``[t_from, t_to]``
    (aware datetimes; alerts whose first–last seen span overlaps), grouped by exam session.

    Wall-clock sessions (``site.sessions``) group by ``first_seen``/``last_seen``; timeline-second
    sessions (``site.session_seconds``, simulated sites) by ``first_seen_s``/``last_seen_s``. An
    alert is listed in every session it overlaps; alerts in none get their own section.
    """
    if isinstance(site, str):
        from detector.config.site import SiteConfig

        site = SiteConfig(name=site)
    t_from, t_to = to_utc(t_from), to_utc(t_to)
    alerts = [a for a in _all_alerts(store, site.name)
              if _overlaps(to_utc(a["first_seen"]), to_utc(a["last_seen"]), t_from, t_to)]
    alerts.sort(key=lambda a: (to_utc(a["first_seen"]), a["id"]))
    sections: list[ReportSection] = []
    if site.sessions:
        for s in site.sessions:
            if not _overlaps(s.start, s.end, t_from, t_to):
                continue
            in_session = [a for a in alerts if _overlaps(to_utc(a["first_seen"]), to_utc(a["last_seen"]), s.start, s.end)]
            sections.append(ReportSection(s.name, s.start, s.end, in_session))
    elif site.session_seconds:
        for i, (a0, a1) in enumerate(site.session_seconds):
            sections.append(ReportSection(f"exam session {i + 1}", float(a0), float(a1),
                                          [a for a in alerts if a.get("first_seen_s") is not None and
                                           _overlaps(a["first_seen_s"], a.get("last_seen_s") or a["first_seen_s"], a0, a1)]))
    placed = {a["id"] for s in sections for a in s.alerts}
    outside = [a for a in alerts if a["id"] not in placed]
    if outside or not sections:
        sections.append(ReportSection("outside the exam sessions" if sections else "all alerts", t_from, t_to, outside,
                                      in_session=False))
    rep = Report(site=site, sections=sections, t_from=t_from, t_to=t_to, baseline=baseline, store=store,
                 runs=list(runs or []))
    for a in rep.alerts:
        rep.histories[a["id"]] = [h.model_dump(mode="json") if hasattr(h, "model_dump") else dict(h)
                                  for h in store.history(a["id"])]
        summary = store.track_summary(a["id"]) if hasattr(store, "track_summary") else None
        if isinstance(summary, Mapping) and summary.get("readings"):
            rep.readings[a["id"]] = list(summary["readings"])
    return rep


# --- figures -------------------------------------------------------------------------------------
def _session_figures(rep: Report, sec: ReportSection) -> dict[str, Figure]:
    from dashboards.environment import environment_figure
    from dashboards.timeline import exam_timeline_figure

    figs: dict[str, Figure] = {}
    sessions = [(sec.start, sec.end, sec.name)] if sec.in_session and sec.start is not None else []
    if sessions or sec.alerts:
        figs["timeline"] = exam_timeline_figure(sessions, sec.alerts, tz=rep.tz if not isinstance(sec.start, float) else None,
                                                title=f"{sec.name}: {len(sec.alerts)} alert{'s' if len(sec.alerts) != 1 else ''}")
    if rep.baseline is not None:
        figs["environment"] = environment_figure(rep.baseline, sec.alerts)
    return figs


def _alert_figures(rep: Report, a: dict) -> dict[str, Figure]:
    from dashboards.site_map import site_map_figure
    from dashboards.snippet import alert_evidence_figures

    figs: dict[str, Figure] = {}
    if rep.store is not None:
        figs.update(alert_evidence_figures(rep.store, a, baseline=rep.baseline))
    loc = a.get("location")
    if isinstance(loc, Mapping) and loc.get("lat") is not None:
        readings = rep.readings.get(a["id"])
        origin = (rep.site.lat, rep.site.lon) if rep.site.lat is not None and rep.site.lon is not None else None
        figs["map"] = site_map_figure(readings=readings, route=[(r["lat"], r["lon"]) for r in readings or []
                                                                  if isinstance(r, Mapping) and r.get("lat") is not None] or None,
                                      alert=a, buildings=rep.site.buildings, origin=origin,
                                      title=f"{a['id']}: estimated transmitter position")
    return figs


def _png_data_uri(fig: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure_bytes(fig, "png")).decode("ascii")


# --- text helpers --------------------------------------------------------------------------------
def _fmt_time(t: Any, tz) -> str:
    if t is None:
        return "—"
    if isinstance(t, (int, float)):
        return f"{float(t):.1f} s"
    u = to_utc(t)
    local = u.astimezone(tz)
    if getattr(tz, "key", "UTC") in ("UTC", "Etc/UTC") or tz is timezone.utc:
        return u.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({u:%H:%M:%S} UTC)"


def _num(v: Any, fmt: str = "{:.1f}", unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return fmt.format(float(v)) + (f" {unit}" if unit else "")


def _alert_rows(a: dict, tz, baseline: Any) -> list[tuple[str, str]]:
    rows = [
        ("frequency", fmt_mhz(a.get("center_hz"), 5)),
        ("bandwidth", _num(a.get("bandwidth_hz"), "{:.0f}", "Hz")),
        ("class", str(a.get("classification") or "unknown")),
        ("severity", str(a.get("severity") or "—")),
        ("status", str(a.get("status"))),
        ("first seen", _fmt_time(a.get("first_seen"), tz)),
        ("last seen", _fmt_time(a.get("last_seen"), tz)),
        ("duration", _num((to_utc(a["last_seen"]) - to_utc(a["first_seen"])).total_seconds(), "{:.1f}", "s")),
        ("peak", _num(a.get("peak_dbfs"), unit="dBFS")),
        ("SNR", _num(a.get("snr_db"), unit="dB")),
        ("excess over baseline", _num(a.get("excess_db"), unit="dB")),
        ("bursts", str(a.get("bursts", "—"))),
        ("track / run", f"{a.get('track_id')} / {a.get('run_id')}"),
    ]
    if a.get("vehicle_id"):  # a command center's store: which vehicle raised it
        rows.insert(0, ("vehicle", str(a["vehicle_id"])))
    if baseline is not None and a.get("center_hz") is not None:
        from dashboards.environment import baseline_at

        b = baseline_at(baseline, float(a["center_hz"]))
        rows.append(("survey at this frequency",
                     "not surveyed" if b["p99_db"] is None else
                     f"median {b['median_db']:.1f}, p99 {b['p99_db']:.1f} {baseline.unit}, occupancy {100 * b['occupancy']:.1f} %"))
    return rows


def _location_rows(loc: Mapping | None) -> list[tuple[str, str]]:
    if not isinstance(loc, Mapping) or loc.get("lat") is None:
        return [("location", "not estimated")]
    ell = loc.get("error_ellipse_m") or {}
    rows = [
        ("position", f"{float(loc['lat']):.6f}, {float(loc['lon']):.6f}"),
        ("status", str(loc.get("status"))),
        ("95 % ellipse", f"{_num(ell.get('semi_major'), '{:.0f}')} × {_num(ell.get('semi_minor'), '{:.0f}')} m, "
                         f"major axis bearing {_num(ell.get('angle_deg'), '{:.0f}')}°"),
        ("CEP50", _num(loc.get("cep50_m"), "{:.0f}", "m")),
        ("CRLB RMSE", _num(loc.get("crlb_rmse_m"), "{:.0f}", "m")),
        ("method / readings", f"{loc.get('method') or '—'} / {loc.get('n_readings') or '—'}"),
    ]
    if loc.get("reason"):
        rows.append(("note", str(loc["reason"])))
    return rows


def _title(rep: Report) -> str:
    return f"examwatch report — site {rep.site.name}"


def _range_text(rep: Report) -> str:
    tz = rep.tz
    a = _fmt_time(rep.t_from, tz) if rep.t_from else "the first alert"
    b = _fmt_time(rep.t_to, tz) if rep.t_to else "the last alert"
    return f"{a} to {b}"


# --- HTML ----------------------------------------------------------------------------------------
def _template():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("dashboards", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html")


def render_html(rep: Report) -> str:
    """The report as one self-contained HTML document (figures as base64 PNG data URIs)."""
    tz = rep.tz
    sections = []
    for sec in rep.sections:
        figs = {k: _png_data_uri(f) for k, f in _session_figures(rep, sec).items()}
        alerts = []
        for a in sec.alerts:
            afigs = {k: _png_data_uri(f) for k, f in _alert_figures(rep, a).items()}
            alerts.append({
                "id": a["id"], "label": alert_label(a), "severity": a.get("severity") or "medium", "status": a.get("status"),
                "rows": _alert_rows(a, tz, rep.baseline), "location_rows": _location_rows(a.get("location")),
                "reasons": a.get("reasons") or [], "figures": afigs,
                "evidence": [e if isinstance(e, Mapping) else e.model_dump() for e in a.get("evidence") or []],
                "history": [{"version": h.get("version"), "status": h.get("status"), "cause": h.get("cause"),
                             "reason": h.get("reason") or "", "actor": h.get("actor") or "",
                             "at": _fmt_time(h.get("at"), tz)} for h in rep.histories.get(a["id"], [])],
            })
        counts: dict[str, int] = {}
        for a in sec.alerts:
            counts[a.get("severity") or "medium"] = counts.get(a.get("severity") or "medium", 0) + 1
        sections.append({"name": sec.name, "start": _fmt_time(sec.start, tz) if sec.start is not None else None,
                         "end": _fmt_time(sec.end, tz) if sec.end is not None else None, "in_session": sec.in_session,
                         "figures": figs, "alerts": alerts, "counts": counts})
    b = rep.baseline
    baseline_info = None
    if b is not None:
        import numpy as np

        baseline_info = [
            ("site", str(b.site)), ("band", f"{fmt_mhz(b.freqs_hz[0], 3)} – {fmt_mhz(b.freqs_hz[-1], 3)} ({b.n_bins} bins)"),
            ("RBW", f"{b.rbw_hz:.0f} Hz"), ("frames", str(int(np.max(b.frames)))), ("span", f"{b.span_s:.0f} s"),
            ("survey time", f"{_fmt_time(b.first_start, tz) if b.first_start else '—'} to "
                            f"{_fmt_time(b.last_end, tz) if b.last_end else '—'}"),
            ("bins occupied > 10 %", str(int((np.nan_to_num(b.occupancy) > 0.1).sum()))),
        ]
    site = rep.site
    return _template().render(
        title=_title(rep), site=site, range_text=_range_text(rep), sections=sections, baseline_info=baseline_info,
        runs=_runs_view(rep),
        n_alerts=len(rep.alerts), generated=_fmt_time(rep.generated_at, tz),
        site_info=[("name", site.name), ("position", f"{site.lat:.6f}, {site.lon:.6f}" if site.lat is not None else "—"),
                   ("time zone", site.timezone), ("buildings", str(len(site.buildings))),
                   ("sessions", str(len(site.sessions) or len(site.session_seconds)))],
    )


# --- what was watched --------------------------------------------------------------------------------
def _pct(p: Any) -> str:
    return "—" if not isinstance(p, (int, float)) else f"{100 * p:.1f} %"


def _runs_view(rep: Report) -> list[dict]:
    """Per run: its times, plan, receivers and per band the catch rate, nominal and achieved."""
    tz = rep.tz
    out = []
    for r in rep.runs:
        ic = r.get("intercept") or {}
        bands = [{"name": b.get("name"), "priority": b.get("priority"), "nominal": _pct(b.get("p_burst_nominal")),
                  "achieved": _pct(b.get("p_burst_achieved")),
                  "revisit": "—" if b.get("revisit_achieved_s") is None else f"{b['revisit_achieved_s']:.1f} s",
                  "low": isinstance(b.get("p_burst_achieved"), (int, float)) and isinstance(b.get("p_burst_nominal"), (int, float))
                  and b["p_burst_achieved"] < 0.8 * b["p_burst_nominal"]} for b in ic.get("bands") or []]
        rx = [{"name": e.get("name"), "status": e.get("status"), "source": e.get("source"),
               "bands": ", ".join(e.get("bands") or []), "blocks": e.get("blocks_read"), "reopens": e.get("reopen_count"),
               "dropped": e.get("frames_dropped"), "error": e.get("last_error") or ""} for e in r.get("receivers") or []]
        out.append({"run_id": r.get("run_id"), "plan": r.get("plan") or "—",
                    "start": _fmt_time(to_utc(r.get("started_at")), tz),
                    "end": _fmt_time(to_utc(r.get("ended_at") or r.get("updated_at")), tz),
                    "ended": r.get("ended_at") is not None, "burst_s": ic.get("burst_s"),
                    "log_min": round((ic.get("log_s") or 0) / 60), "bands": bands, "receivers": rx})
    return out


def _runs_lines(rep: Report) -> list[str]:
    lines = []
    for r in _runs_view(rep):
        lines.append(f"run {r['run_id']}: {r['start']} – {r['end']}{'' if r['ended'] else ' (last update)'}, plan {r['plan']}")
        for x in r["receivers"]:
            lines.append(f"   receiver {x['name']}: {x['status']}, {x['source']}, bands {x['bands'] or '—'}, "
                         f"{x['blocks']} blocks, {x['reopens']} reopens {x['error']}")
        if r["bands"]:
            lines.append(f"   catch rate of a {r['burst_s']} s burst (plan / achieved over the last {r['log_min']} min, revisit):")
            lines += [f"     {b['name']:<14} {b['nominal']:>8} {b['achieved']:>8}  {b['revisit']}" for b in r["bands"]]
    return lines


# --- PDF -----------------------------------------------------------------------------------------
def _text_page(title: str, lines: list[str]) -> Figure:
    fig = new_figure(8.27, 11.69)  # A4 portrait
    fig.text(0.06, 0.95, title, fontsize=16, fontweight="bold", va="top")
    fig.text(0.06, 0.90, "\n".join(lines), fontsize=9.5, va="top", family="monospace", wrap=True)
    return fig


def render_pdf(rep: Report, path: str | Path) -> Path:
    """The report as a PDF at exactly ``path`` (matplotlib ``PdfPages``): a summary page, then per
    session its figures and per alert a page of details followed by its figures."""
    from matplotlib.backends.backend_pdf import PdfPages

    from dashboards._common import RENDER_LOCK

    path = Path(path)
    tz = rep.tz
    with RENDER_LOCK, PdfPages(path, metadata={"Title": _title(rep), "Creator": "examwatch"}) as pdf:
        lines = [f"time range: {_range_text(rep)}", f"generated: {_fmt_time(rep.generated_at, tz)}",
                 f"alerts: {len(rep.alerts)}", ""]
        for sec in rep.sections:
            lines.append(f"{sec.name}: {_fmt_time(sec.start, tz)} – {_fmt_time(sec.end, tz)}, {len(sec.alerts)} alert(s)")
            lines += [f"   {a['id']}  {alert_label(a)}  [{a.get('severity')}, {a.get('status')}]" for a in sec.alerts]
        pdf.savefig(_text_page(_title(rep), lines))
        if rep.runs:
            pdf.savefig(_text_page("What was watched", _runs_lines(rep)))
        for sec in rep.sections:
            for fig in _session_figures(rep, sec).values():
                pdf.savefig(fig)
            for a in sec.alerts:
                rows = _alert_rows(a, tz, rep.baseline) + [("", "")] + _location_rows(a.get("location"))
                text = [f"{k:<26} {v}" for k, v in rows]
                text += ["", "reasons:"] + [f"  - {r}" for r in a.get("reasons") or []]
                text += ["", "handling history:"] + [
                    f"  v{h.get('version')} {h.get('status'):<12} {h.get('cause'):<14} {_fmt_time(h.get('at'), tz)}"
                    f"  {h.get('actor') or ''} {h.get('reason') or ''}" for h in rep.histories.get(a["id"], [])]
                text += ["", "evidence (SHA-256):"] + [
                    f"  {e['name']}  {e['sha256']}" for e in (x if isinstance(x, Mapping) else x.model_dump()
                                                               for x in a.get("evidence") or [])]
                pdf.savefig(_text_page(f"{a['id']}: {alert_label(a)}", text))
                for fig in _alert_figures(rep, a).values():
                    pdf.savefig(fig)
    return path


def write_report(store: Any, site: Any, out: str | Path, *, t_from: datetime | None = None, t_to: datetime | None = None,
                 baseline: Any = None, pdf: bool = False, runs: list[dict] | None = None) -> Report:
    """Collect and write the report to exactly ``out`` (HTML, or PDF with ``pdf=True``); ``runs``:
    the monitor runs' records (:func:`detector.app.run_record.load_runs`)."""
    rep = collect_report(store, site, t_from=t_from, t_to=t_to, baseline=baseline, runs=runs)
    out = Path(out)
    if pdf:
        render_pdf(rep, out)
    else:
        out.write_text(render_html(rep), encoding="utf-8")
    return rep
