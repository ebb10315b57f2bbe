"""Push: alerts from vehicles to the command center, nothing lost, plus the live SSE stream.

Vehicle side
    :class:`Outbox` (table ``push_outbox``, written in each alert change's own transaction through
    ``AlertStore.on_change``) and a sender thread (:class:`HttpPushSender`, webhook with idempotency
    keys; :class:`MqttPushSender`, QoS 1 over a persistent session) that drains it in order with
    capped exponential backoff. :func:`attach_push` wires both, and the SSE route, into
    ``examwatch monitor`` (``--push URL --vehicle-id ID --push-token-file F``).
Center side
    :class:`CenterStore` (its own tables; the vehicle's alert ids and versions kept),
    :func:`build_center_app` (the vehicle's read API over the center store, plus ingest, overview,
    vehicles and the SSE stream), :class:`MqttCenterSubscriber`; ``examwatch serve`` runs them.

Importing this package declares the outbox table on :class:`detector.alerts.Base` (so
``open_store`` creates it) and registers :func:`attach_push` in
``detector.cli.monitor._extra_hooks``. See ``docs/command-center.md``.
"""

from __future__ import annotations

import importlib

from detector.push._models import OutboxRow
from detector.push.center import CenterAlert, CenterStore, IngestError, load_vehicle_tokens, open_center_store
from detector.push.hook import attach_push, spectrum_summary
from detector.push.outbox import Outbox
from detector.push.sender import HttpPushSender, MqttPushSender, PushSender, idempotency_key, make_sender
from detector.push.stream import build_stream_router

__all__ = [
    "CenterAlert",
    "CenterStore",
    "HttpPushSender",
    "IngestError",
    "MqttPushSender",
    "Outbox",
    "OutboxRow",
    "PushSender",
    "attach_push",
    "build_center_app",
    "build_stream_router",
    "idempotency_key",
    "load_vehicle_tokens",
    "make_sender",
    "open_center_store",
    "spectrum_summary",
]


def __getattr__(name: str):
    if name == "build_center_app":  # FastAPI app of the center, imported on demand
        from detector.push.center_app import build_center_app

        return build_center_app
    raise AttributeError(name)


def _register_monitor_hook() -> None:
    # detector.cli.monitor imports this package at its end (after _extra_hooks exists); importing
    # it from here first is fine too: the circular import finds the half-initialised module.
    mon = importlib.import_module("detector.cli.monitor")
    hooks = getattr(mon, "_extra_hooks", None)
    if hooks is not None and attach_push not in hooks:
        hooks.append(attach_push)


_register_monitor_hook()
