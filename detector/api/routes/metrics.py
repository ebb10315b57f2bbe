"""``GET /metrics``: Prometheus text. Always open (outside ``/api/``).

An app adds gauges of its own with ``app.state.metrics_hooks`` (callables returning exposition
text), as the command center does for the versions it received.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from detector.api.deps import Ctx

log = logging.getLogger("examwatch.api")

__all__ = ["PROMETHEUS_MEDIA_TYPE", "metrics_text", "router"]

PROMETHEUS_MEDIA_TYPE = "text/plain; version=0.0.4"
router = APIRouter(tags=["metrics"])


def metrics_text(ctx) -> str:
    """The gauges of a vehicle (capture loop, push) and of every store (alerts, open alerts)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    reg = CollectorRegistry()
    if ctx.monitor is not None:
        h = ctx.monitor.health()
        for key, help_ in (("frames_processed", "Frames through detection"),
                           ("frames_dropped", "Frames dropped when processing fell behind"),
                           ("blocks_read", "IQ blocks read from the source"), ("repeated_blocks", "Identical blocks ignored"),
                           ("reopen_count", "Source reopen attempts"),
                           ("alerts_stored", "Alerting track events written to the store"),
                           ("alerts_raised", "Distinct alerts raised")):
            Gauge(f"examwatch_{key}", help_, registry=reg).set(h.get(key) or 0)
        for key, help_ in (("retunes", "Retunes of the source by the watch plan"),
                           ("nonfinite_samples", "IQ samples with a NaN or infinite I or Q (left out of the spectra)"),
                           ("frames_excluded", "Frames left out of detection because their samples held a NaN or infinite "
                                               "value (a gap, not silence)")):
            Counter(f"examwatch_{key}", help_, registry=reg).inc(max(h.get(key) or 0, 0))  # exposed as examwatch_<key>_total
        Gauge("examwatch_source_degraded", "1 while the source is degraded", registry=reg).set(1 if h.get("status") == "degraded" else 0)
        push = h.get("push")
        if isinstance(push, dict):
            Gauge("examwatch_push_pending", "Alert changes queued for the command center",
                  registry=reg).set(max(push.get("pending") or 0, 0))
            Gauge("examwatch_push_failing", "1 while pushes to the command center fail", registry=reg).set(
                1 if push.get("failing_for_s") is not None else 0)
        gain = h.get("gain_offset_db")
        if isinstance(gain, (int, float)):
            Gauge("examwatch_gain_offset_db", "Level step common to the baseline-covered bins, measured and compensated (dB)",
                  registry=reg).set(float(gain))
        ov = h.get("overload")
        if isinstance(ov, dict):  # issue #18 item 1
            Gauge("examwatch_overload", "1 while the receiver is overloaded (ADC rails or an emission near full scale)",
                  registry=reg).set(1 if ov.get("state") == "overload" else 0)
            Gauge("examwatch_rails_share", "Share of the last block's I/Q values at the ADC rails (0-1)",
                  registry=reg).set(float(ov.get("rails_share") or 0.0))
            Counter("examwatch_overloaded_blocks", "IQ blocks processed while the receiver was overloaded",
                    registry=reg).inc(max(ov.get("overloaded_blocks") or 0, 0))
        _supervision_metrics(reg, h)
        _receiver_metrics(reg, h)
    try:
        _, total = ctx.store.list(limit=1)
        open_ = len(ctx.store.open_alerts())
    except Exception:  # noqa: BLE001 - metrics must answer even when the store hiccups
        total = open_ = 0
    Gauge("examwatch_alerts_total", "Alerts in the store", registry=reg).set(total)
    Gauge("examwatch_alerts_open", "Alerts not dismissed or closed", registry=reg).set(open_)
    return generate_latest(reg).decode()


def _receiver_metrics(reg, h: dict) -> None:
    """Issue 19: per receiver of a monitor with several (``/health`` → ``receivers``)."""
    from prometheus_client import Counter, Gauge

    entries = h.get("receivers")
    if not isinstance(entries, list) or not entries:
        return
    counters = {key: Counter(f"examwatch_receiver_{key}", help_, ["receiver"], registry=reg) for key, help_ in (
        ("blocks_read", "IQ blocks read from the receiver"), ("frames_processed", "Frames through detection"),
        ("frames_dropped", "Frames dropped when processing fell behind"), ("reopen_count", "Receiver reopen attempts"),
        ("retunes", "Retunes of the receiver by the watch plan"))}
    degraded = Gauge("examwatch_receiver_degraded", "1 while the receiver is degraded (lost, stalled, repeating)",
                     ["receiver"], registry=reg)
    center = Gauge("examwatch_receiver_center_hz", "Where the receiver is tuned (Hz)", ["receiver"], registry=reg)
    for e in entries:
        name = str(e.get("name"))
        for key, c in counters.items():
            c.labels(receiver=name).inc(max(e.get(key) or 0, 0))
        degraded.labels(receiver=name).set(0 if e.get("status") == "ok" else 1)
        if isinstance(e.get("center_hz"), (int, float)):
            center.labels(receiver=name).set(float(e["center_hz"]))


def _supervision_metrics(reg, h: dict) -> None:
    """Issue 24: per-stage progress and health of the supervised workers, and the store's queue."""
    from prometheus_client import Counter, Gauge

    comps = h.get("components")
    if isinstance(comps, dict) and comps:
        # running totals of this run: counters (exposed with ``_total``), set from the totals
        progress = Counter("examwatch_stage_progress", "Units of work done per stage (blocks read, blocks processed, "
                         "writes, ...)", ["stage"], registry=reg)
        healthy = Gauge("examwatch_component_healthy", "1 while the worker runs normally", ["component"], registry=reg)
        restarts = Counter("examwatch_component_restarts", "Restarts of the worker after an error", ["component"],
                         registry=reg)
        for name, c in comps.items():
            progress.labels(stage=name).inc(max(c.get("progress") or 0, 0))
            healthy.labels(component=name).set(1 if c.get("state") in ("running", "finished", "stopped") else 0)
            restarts.labels(component=name).inc(max(c.get("restarts") or 0, 0))
    store = h.get("store")
    if isinstance(store, dict):
        Gauge("examwatch_store_ok", "1 while the alert store takes writes", registry=reg).set(1 if store.get("ok") else 0)
        Gauge("examwatch_store_pending", "Alert changes waiting in memory for the store", registry=reg).set(
            store.get("pending") or 0)
        Counter("examwatch_store_dropped", "Alert changes refused because the waiting queue was full",
                registry=reg).inc(max(store.get("dropped") or 0, 0))


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"content": {PROMETHEUS_MEDIA_TYPE: {}}, "description": "Prometheus text exposition"}})
def metrics(request: Request, ctx: Ctx) -> PlainTextResponse:
    text = metrics_text(ctx)
    for hook in getattr(request.app.state, "metrics_hooks", ()):
        try:
            text += hook()
        except Exception:
            log.debug("metrics hook %r failed", hook, exc_info=True)
    return PlainTextResponse(text, media_type=PROMETHEUS_MEDIA_TYPE)
