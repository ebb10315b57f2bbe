"""Push and the SSE stream of a vehicle (``examwatch monitor``), as parts the app composes.

* :func:`stream_router` is the SSE router (``GET /api/v1/alerts/stream``) for ``ctx.extra_routers``;
* :func:`make_push` (``--push URL``: :class:`PushSettings`) attaches the outbox to the store and
  makes a sender for that URL (``http(s)://`` → webhook with the token of ``--push-token-file``;
  ``mqtt://`` → MQTT), with heartbeats carrying the monitor's health and a spectrum summary. The
  app (:class:`~detector.app.monitor_app.MonitorApp`) starts it, and at shutdown stops it (after
  up to 2 s of draining) before it closes the store; whatever is still pending stays in the
  outbox for the next start.
* :func:`attach_push` does both for an API context and a monitor (the app's way, and tests').
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from detector.core.errors import InputError

__all__ = ["PushSettings", "attach_push", "make_push", "stream_router", "spectrum_summary", "PUSH_DRAIN_S"]

log = logging.getLogger("examwatch.push")

#: at shutdown the sender drains for up to this long before the store is closed
PUSH_DRAIN_S = 2.0


@dataclass(frozen=True)
class PushSettings:
    """Where and as whom a vehicle pushes its alert changes (``--push``, ``--vehicle-id``,
    ``--push-token-file``)."""

    url: str
    vehicle_id: str | None = None
    token_file: Path | None = None


def spectrum_summary(monitor, max_points: int = 256) -> dict | None:
    """A small summary of the monitor's latest spectrum: grid, noise floor, max-decimated power
    (at most ``max_points`` values) and the open emissions; ``None`` before the first frame."""
    snap = getattr(monitor, "latest", None)
    if not snap:
        return None
    spec, res = snap["spectrum"], snap.get("result")
    p = np.asarray(spec.power, dtype=np.float64)
    f = np.asarray(spec.freqs_hz, dtype=np.float64)
    step = max(1, int(np.ceil(p.size / max_points)))
    n = (p.size // step) * step
    dec = p[:n].reshape(-1, step).max(axis=1) if n else p
    return {"center_hz": float(spec.center_hz) if spec.center_hz is not None else float(f.mean()),
            "f_min_hz": float(f[0]), "f_max_hz": float(f[-1]), "rbw_hz": float(spec.rbw_hz), "unit": spec.unit,
            "offset_s": float(spec.offset_s) if getattr(spec, "offset_s", None) is not None else None,
            "noise_floor_dbfs": None if res is None or not np.isfinite(res.noise_floor_dbfs) else float(res.noise_floor_dbfs),
            "power_max": [round(float(v), 1) if np.isfinite(v) else None for v in dec], "decimation": step,
            "emissions": [] if res is None else [
                {"center_hz": float(e.center_hz), "bandwidth_hz": float(e.bandwidth_hz), "snr_db": float(e.snr_db)}
                for e in list(res.emissions)[:20] if np.isfinite([e.center_hz, e.bandwidth_hz, e.snr_db]).all()]}


def _warn_if_readable(path) -> None:
    """A secret file others can read gets a warning (as the API token file does)."""
    import os
    import stat

    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning("--push-token-file %s has mode %04o: other users can read the push token (chmod 600 %s)", path, mode, path)


def _read_token(path) -> str:
    from detector.api.auth import MIN_TOKEN_CHARS
    from detector.core.textfile import read_text

    tok = read_text(path, "--push-token-file").strip()
    if not tok:
        raise InputError(f"--push-token-file {path} is empty")
    tok = tok.split()[-1] if len(tok.split()) == 2 else tok  # also accepts a 'vehicle_id token' line
    if len(tok) < MIN_TOKEN_CHARS or len(tok.split()) != 1:
        raise InputError(f"--push-token-file {path} must hold one token of at least {MIN_TOKEN_CHARS} characters "
                         f"(or one 'vehicle_id token' line)")
    _warn_if_readable(path)
    return tok


def stream_router():
    """The SSE router of the vehicle's API (``GET /api/v1/alerts/stream``)."""
    from detector.api.stream import build_stream_router

    return build_stream_router()


def make_push(push: PushSettings, store, monitor=None, *, site: str = "site"):
    """A sender of ``store``'s alert changes to ``push.url`` (not started), with heartbeats of
    ``monitor``'s health and spectrum, registered as the ``push`` section of its ``/health``.

    Raises InputError for a bad URL or token file."""
    from detector.push.sender import make_sender

    vehicle_id = push.vehicle_id or socket.gethostname()
    token = _read_token(push.token_file) if push.token_file else None
    sender = make_sender(push.url, store, vehicle_id=vehicle_id, token=token, site=site,
                         status=monitor.health if monitor is not None else None,
                         spectrum=(lambda: spectrum_summary(monitor)) if monitor is not None else None)
    if monitor is not None:
        monitor.health_sections["push"] = sender.health  # /health → push: pending, failures, last error
    return sender


def attach_push(ctx, monitor, push: PushSettings | None, *, say: Callable[[str], None] | None = None):
    """The SSE router into ``ctx.extra_routers`` and, with ``push``, a started sender of
    ``ctx.store`` (returned; the caller stops it, ``sender.stop(timeout=5.0, drain_s=PUSH_DRAIN_S)``,
    before closing the store). ``say`` gets the line announcing the push."""
    ctx.extra_routers.append(stream_router())
    if push is None or not push.url:
        return None
    site = getattr(monitor, "site", None) or getattr(ctx.site, "name", None) or "site"
    sender = make_push(push, ctx.store, monitor, site=site)
    sender.start()
    log.info("pushing alert changes of vehicle %s to %s (%s)", sender.vehicle_id, push.url, sender.transport)
    if say is not None:
        say(f"pushing alerts as vehicle {sender.vehicle_id!r} to {push.url} ({sender.pending()} change(s) pending)")
    return sender
