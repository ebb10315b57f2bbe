"""Push (vehicle side): alert changes from a vehicle to the command center, nothing lost.

:class:`Outbox` (table ``push_outbox`` of the vehicle's store, written in each alert change's own
transaction through ``AlertStore.on_change``) and a sender thread (:class:`HttpPushSender`,
webhook with idempotency keys; :class:`MqttPushSender`, QoS 1 over a persistent session) that
drains it in order with capped exponential backoff. The monitor's composition root
(:mod:`detector.app`) creates and starts them for ``examwatch monitor --push URL``.

The command center (its store, app and MQTT ingest) is :mod:`detector.center`; the SSE stream
is :mod:`detector.api.stream`. See ``docs/command-center.md``.
"""

from __future__ import annotations

from detector.alerts._models import OutboxRow
from detector.push.outbox import Outbox
from detector.push.sender import HttpPushSender, MqttPushSender, PushSender, idempotency_key, make_sender

__all__ = [
    "HttpPushSender",
    "MqttPushSender",
    "Outbox",
    "OutboxRow",
    "PushSender",
    "idempotency_key",
    "make_sender",
]
