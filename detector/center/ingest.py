"""The command center's MQTT subscriber (topics and sessions: :mod:`detector.push.mqtt`)."""

from __future__ import annotations

import json
import logging
import threading
import time


from detector.push.mqtt import MqttUrl

__all__ = ["MqttCenterSubscriber"]

log = logging.getLogger("examwatch.mqtt")


class MqttCenterSubscriber:
    """The command center's MQTT client: subscribes to every vehicle's topics and ingests.

    ``store`` is a :class:`~detector.center.store.CenterStore`; ``known`` (optional) the vehicle ids
    allowed to push. Messages are acknowledged after the store committed them.
    """

    def __init__(self, store, url: str | MqttUrl, *, known: set[str] | None = None, client_id: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.store = store
        self.url = url if isinstance(url, MqttUrl) else MqttUrl.parse(url)
        self.known = known
        self.connected = threading.Event()
        self.received = 0
        self.dropped = 0
        self._stop = threading.Event()
        cid = client_id or self.url.client_id or "examwatch-center"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False, protocol=mqtt.MQTTv311,
                        manual_ack=True)
        if self.url.username:
            c.username_pw_set(self.url.username, self.url.password)
        c.reconnect_delay_set(1, 10)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self._client = c

    def start(self) -> MqttCenterSubscriber:
        self._client.connect_async(self.url.host, self.url.port, keepalive=30)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._client.disconnect()
            self._client.loop_stop()
        except Exception:  # noqa: BLE001
            pass

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the center: %s", reason_code)
            return
        p = self.url.prefix
        client.subscribe([(f"{p}/+/+/alerts", 1), (f"{p}/+/+/spectrum", 1), (f"{p}/+/+/status", 1)])
        self.connected.set()
        log.info("center subscribed to %s/+/+/{alerts,spectrum,status} on %s:%d", p, self.url.host, self.url.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT connection lost (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self._handle(msg)
        except Exception:  # noqa: BLE001 - never kill the network thread
            log.exception("MQTT message on %s could not be handled", msg.topic)
            return  # not acknowledged: the broker sends it again after a reconnect
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)

    def _handle(self, msg) -> None:
        from detector.center.store import IngestError

        parts = msg.topic.split("/")
        prefix_len = len(self.url.prefix.split("/"))
        if len(parts) != prefix_len + 3:
            self.dropped += 1
            return
        site, vehicle, kind = parts[prefix_len:]
        if self.known is not None and vehicle not in self.known:
            self.dropped += 1
            log.warning("MQTT message from unknown vehicle %r dropped", vehicle)
            return
        try:
            body = json.loads(msg.payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.dropped += 1
            log.warning("MQTT message on %s is not a JSON object; dropped", msg.topic)
            return
        if body.get("vehicle_id") not in (None, vehicle):
            self.dropped += 1
            log.warning("MQTT message on %s names vehicle %r; dropped", msg.topic, body.get("vehicle_id"))
            return
        if kind == "alerts":
            key = str(body.pop("idempotency_key", "") or "")
            body["vehicle_id"] = vehicle
            delay = 0.5
            while True:
                try:
                    self.store.ingest(vehicle, body, key, transport="mqtt")
                    break
                except IngestError as exc:
                    self.dropped += 1
                    log.warning("MQTT alert from %s refused: %s", vehicle, exc)
                    return
                except Exception:  # noqa: BLE001 - the database is away: keep the message, retry
                    if self._stop.is_set():
                        raise
                    log.exception("center store failed; retrying in %.1f s", delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)
            self.received += 1
        elif kind in ("spectrum", "status"):
            from detector.center.store import Heartbeat

            try:
                hb = Heartbeat.parse(body)
            except IngestError as exc:
                self.dropped += 1
                log.warning("MQTT %s of %s dropped: %s", kind, vehicle, exc)
                return
            if kind == "spectrum":
                self.store.touch(vehicle, transport="mqtt", site=hb.site or site, spectrum=hb.spectrum_dict())
            else:
                self.store.touch(vehicle, transport="mqtt", site=hb.site or site, health=hb.status())
        else:
            self.dropped += 1
