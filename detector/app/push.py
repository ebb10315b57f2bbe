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


from detector.core.errors import InputError
from detector.push.messages import summarize_spectrum

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
    """The heartbeat's :class:`~detector.push.messages.SpectrumSummary` of the monitor's latest
    spectrum, as JSON (``None`` before the first frame)."""
    snap = getattr(monitor, "latest", None)
    if not snap:
        return None
    return summarize_spectrum(snap["spectrum"], snap.get("result"), max_points=max_points).model_dump()


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
