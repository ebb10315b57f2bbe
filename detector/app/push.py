"""Attaching push and the SSE stream to a vehicle (``examwatch monitor``).

:func:`attach_push` is one of ``detector.cli.monitor._extra_hooks``: called with the API context,
the monitor and the settings before the app is built, it

* always adds the SSE router (``GET /api/v1/alerts/stream``) to ``ctx.extra_routers``;
* when ``settings.push_url`` is set (``--push URL``), attaches the outbox to the store and starts a
  sender for that URL (``http(s)://`` → webhook with the token of ``--push-token-file``;
  ``mqtt://`` → MQTT), with heartbeats carrying the monitor's health and a spectrum summary. The
  sender is stopped (after up to 2 s of draining) when the store is closed at shutdown; whatever
  is still pending stays in the outbox for the next start.
"""

from __future__ import annotations

import logging
import socket

import numpy as np

from detector.core.errors import InputError

__all__ = ["attach_push", "spectrum_summary"]

log = logging.getLogger("examwatch.push")

#: senders started by attach_push (the last one is the monitor's), for tests and diagnostics
SENDERS: list = []


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


def attach_push(ctx, monitor, settings) -> None:
    """The monitor hook (see the module docstring)."""
    from detector.api.stream import build_stream_router

    if not any(getattr(r, "_examwatch_stream", False) for r in ctx.extra_routers):
        router = build_stream_router()
        router._examwatch_stream = True
        ctx.extra_routers.append(router)
    url = getattr(settings, "push_url", None)
    if not url:
        return
    from detector.push.sender import make_sender

    vehicle_id = getattr(settings, "vehicle_id", None) or socket.gethostname()
    token_file = getattr(settings, "push_token_file", None)
    token = _read_token(token_file) if token_file else None
    site = getattr(monitor, "site", None) or getattr(getattr(ctx, "site", None), "name", None) or "site"
    sender = make_sender(url, ctx.store, vehicle_id=vehicle_id, token=token, site=site,
                         status=monitor.health if monitor is not None else None,
                         spectrum=(lambda: spectrum_summary(monitor)) if monitor is not None else None)
    store = ctx.store
    orig_close = store.close

    def close_with_sender() -> None:
        sender.stop(timeout=5.0, drain_s=2.0)
        orig_close()

    store.close = close_with_sender
    sender.start()
    SENDERS.append(sender)
    if monitor is not None and hasattr(monitor, "health_sections"):
        monitor.health_sections["push"] = sender.health  # /health → push: pending, failures, last error
    log.info("pushing alert changes of vehicle %s to %s (%s)", vehicle_id, url, sender.transport)
    try:
        from detector.cli._common import console_err

        console_err.print(f"pushing alerts as vehicle {vehicle_id!r} to {url} ({sender.pending()} change(s) pending)")
    except Exception:  # noqa: BLE001 - printing is a courtesy
        pass
