"""Senders: a thread per vehicle that drains the outbox to the command center.

:func:`make_sender` picks the sender for a push URL; the senders live in ``_base``
(:class:`PushSender`), ``_http`` (:class:`HttpPushSender`) and ``_mqtt_sender``
(:class:`MqttPushSender`) and are re-exported here.

:class:`HttpPushSender`
    ``POST {center}/api/v1/ingest`` with the alert (``AlertPublic`` JSON plus ``vehicle_id``),
    ``Idempotency-Key: {alert_id}:{version}`` and ``Authorization: Bearer <vehicle token>``; a row
    is marked delivered only on a 2xx answer. When several changes wait (a backlog after an
    outage, or more changes per second than round trips), up to ``max_batch`` of them go in one
    ``POST /api/v1/ingest/batch`` (each item with its own idempotency key, in order; the center
    answers per item), so that catching up does not take one round trip per change. When the answer lists evidence files the center does
    not have yet (``need_evidence``), they are uploaded from the vehicle's store
    (``PUT {center}/api/v1/ingest/evidence/{alert_id}/{name}``) before the row counts as delivered.
    Every ``heartbeat_s`` the sender also posts ``/api/v1/ingest/heartbeat`` (health and a spectrum
    summary), so the center knows the vehicle is alive when nothing alerts.
:class:`MqttPushSender`
    Publishes the same body (plus ``idempotency_key``) with QoS 1 on
    ``{prefix}/{site}/{vehicle}/alerts`` through a persistent session (``clean_session=False``);
    a row is delivered once the broker acknowledged it (PUBACK). Spectrum summaries go to
    ``…/spectrum`` and heartbeats to ``…/status`` every ``heartbeat_s``.

Retries: see :mod:`detector.push._base` (in ``seq`` order, capped exponential backoff, rows never
dropped).
"""

from __future__ import annotations

from detector.push._base import INITIAL_BACKOFF_S as INITIAL_BACKOFF_S
from detector.push._base import MAX_BACKOFF_S as MAX_BACKOFF_S
from detector.push._base import PushSender, idempotency_key
from detector.push._http import HttpPushSender
from detector.push._mqtt_sender import MqttPushSender

__all__ = ["HttpPushSender", "MqttPushSender", "PushSender", "make_sender", "idempotency_key"]


def make_sender(url: str, store, *, vehicle_id: str, token: str | None = None, **kw) -> PushSender:
    """A sender for a push URL: ``http(s)://center`` (webhook, needs ``token``) or ``mqtt://broker``."""
    from detector.core.errors import InputError

    low = url.lower()
    if low.startswith(("mqtt://", "mqtts://", "tcp://")):
        return MqttPushSender(store, url=url, vehicle_id=vehicle_id, **kw)
    if low.startswith(("http://", "https://")):
        if not token:
            raise InputError("--push to an http(s) center needs the vehicle's token (--push-token-file).")
        return HttpPushSender(store, center_url=url, token=token, vehicle_id=vehicle_id, **kw)
    raise InputError(f"--push {url!r}: use http(s)://CENTER[:PORT] or mqtt://BROKER[:PORT].")
