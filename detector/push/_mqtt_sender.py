"""MQTT sender, :class:`MqttPushSender`: the outbox published with QoS 1 over a persistent session,
a row delivered once the broker acknowledged it (see :mod:`detector.push.sender`)."""

from __future__ import annotations

import json
import threading
import time

from detector.push._base import PushSender, _body, _TransportDown, idempotency_key, log
from detector.push.mqtt import MqttUrl, topic_part

__all__ = ["MqttPushSender"]


class MqttPushSender(PushSender):
    """MQTT sender (see the module docstring): QoS 1, persistent session, PUBACK = delivered."""

    transport = "mqtt"

    def __init__(self, store, *, url: str | MqttUrl, vehicle_id: str, ack_timeout_s: float = 10.0, inflight: int = 100,
                 **kw) -> None:
        import paho.mqtt.client as mqtt

        super().__init__(store, vehicle_id=vehicle_id, **kw)
        self.url = url if isinstance(url, MqttUrl) else MqttUrl.parse(url)
        self.ack_timeout_s = ack_timeout_s
        self.inflight = inflight
        self._connected = threading.Event()
        cid = self.url.client_id or f"examwatch-vehicle-{vehicle_id}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False, protocol=mqtt.MQTTv311)
        if self.url.username:
            c.username_pw_set(self.url.username, self.url.password)
        c.reconnect_delay_set(1, max(1, int(self.max_backoff_s)))
        c.max_inflight_messages_set(inflight)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        self._client = c
        c.connect_async(self.url.host, self.url.port, keepalive=30)
        c.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not reason_code.is_failure:
            self._connected.set()
            self.outbox.wake.set()
            log.info("MQTT connected to %s:%d as %s", self.url.host, self.url.port, self.vehicle_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self._connected.clear()

    def topic(self, site: str, kind: str) -> str:
        return f"{self.url.prefix}/{topic_part(site)}/{topic_part(self.vehicle_id)}/{kind}"

    def _deliver(self, items, blocked):
        if not self._client.is_connected():
            raise _TransportDown(f"MQTT broker {self.url.host}:{self.url.port} not connected")
        items = [it for it in items if it.alert_id not in blocked][: self.inflight]
        infos = []
        for it in items:
            body = _body(it, self.vehicle_id)
            body["idempotency_key"] = idempotency_key(it.alert_id, it.version)
            infos.append((it, self._client.publish(self.topic(it.site, "alerts"), json.dumps(body), qos=1)))
        deadline = time.monotonic() + self.ack_timeout_s
        for it, info in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                raise _TransportDown(f"MQTT publish failed: {exc}") from None
            if not info.is_published():
                raise _TransportDown("MQTT broker did not acknowledge in time")
            yield it, True, None

    def _heartbeat(self) -> bool:
        if not self._client.is_connected():
            return False
        body = self._status_body()
        spectrum = body.pop("spectrum", None)
        self._client.publish(self.topic(self.site, "status"), json.dumps(body), qos=1)
        if spectrum is not None:
            self._client.publish(self.topic(self.site, "spectrum"), json.dumps(
                {"vehicle_id": self.vehicle_id, "site": self.site, "at": body["at"], "spectrum": spectrum}), qos=1)
        return True

    def _close(self) -> None:
        try:
            self._client.disconnect()
            self._client.loop_stop()
        except Exception:  # noqa: BLE001
            pass
