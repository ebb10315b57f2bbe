"""The command center (``examwatch serve``): every vehicle's alerts in one store, served live.

:class:`CenterStore` (its own tables, :mod:`detector.center._models`; the vehicles' alert ids and
versions kept), :func:`build_center_app` (the vehicle's read API over the center store, plus
ingest, overview, vehicles and the SSE stream) and :class:`MqttCenterSubscriber` (ingest over
MQTT). See ``docs/command-center.md``.
"""

from __future__ import annotations

from detector.center.schemas import CenterAlert, IngestError, load_vehicle_tokens
from detector.center.store import CenterStore, open_center_store

__all__ = [
    "CenterAlert",
    "CenterStore",
    "IngestError",
    "MqttCenterSubscriber",
    "build_center_app",
    "load_vehicle_tokens",
    "open_center_store",
]


def __getattr__(name: str):
    # the FastAPI app and the MQTT subscriber are imported on demand (the store alone needs neither)
    if name == "build_center_app":
        from detector.center.app import build_center_app

        return build_center_app
    if name == "MqttCenterSubscriber":
        from detector.center.ingest import MqttCenterSubscriber

        return MqttCenterSubscriber
    raise AttributeError(name)
