"""Senders: a thread per vehicle that drains the outbox to the command center.

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

Retries
    Rows go out in ``seq`` order. A failure of the transport (connection refused, timeout, 5xx,
    401/403/429, broker away) stops the pass and the sender waits, 0.5 s doubling up to
    ``max_backoff_s`` (10 s), before trying again; a reachable center therefore gets a change
    within seconds. A refusal of one particular row (another 4xx) puts that row, and so every
    later version of the same alert, on its own backoff with the same cap; other alerts go on.
    Rows are never dropped: a row the center keeps refusing stays pending (and visible in
    ``pending()``/logs).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from detector.push.mqtt import MqttUrl, topic_part
from detector.push.outbox import Outbox, OutboxItem

__all__ = ["HttpPushSender", "MqttPushSender", "PushSender", "make_sender", "idempotency_key"]

log = logging.getLogger("examwatch.push")

#: retry delays: first, factor, cap (seconds)
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0


def idempotency_key(alert_id: str, version: int) -> str:
    return f"{alert_id}:{int(version)}"


def _body(item: OutboxItem, vehicle_id: str) -> dict:
    body = dict(item.payload)
    body["vehicle_id"] = vehicle_id
    return body


class _TransportDown(Exception):
    """The center or broker cannot be reached (or refuses everything): back off, retry later."""


class PushSender:
    """Base of the senders: the outbox loop, retries and heartbeats (see the module docstring).

    ``status`` (a callable returning a dict, e.g. the monitor's health) and ``spectrum`` (a callable
    returning a spectrum summary or ``None``) feed the heartbeats; ``site`` names the vehicle's site.
    """

    transport = "none"

    def __init__(self, store, *, vehicle_id: str, site: str = "site", outbox: Outbox | None = None,
                 max_backoff_s: float = MAX_BACKOFF_S, initial_backoff_s: float = INITIAL_BACKOFF_S,
                 heartbeat_s: float = 15.0, poll_s: float = 1.0, batch: int = 200,
                 status: Callable[[], dict] | None = None, spectrum: Callable[[], dict | None] | None = None,
                 prune_after_s: float = 86400.0) -> None:
        if not vehicle_id:
            raise ValueError("a sender needs a vehicle id")
        self.store = store
        self.vehicle_id = vehicle_id
        self.site = site
        self.outbox = (outbox or Outbox(store)).attach()
        self.max_backoff_s = float(max_backoff_s)
        self.initial_backoff_s = float(initial_backoff_s)
        self.heartbeat_s = float(heartbeat_s)
        self.poll_s = float(poll_s)
        self.batch = int(batch)
        self.status_fn = status
        self.spectrum_fn = spectrum
        self.prune_after_s = prune_after_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = self.initial_backoff_s
        self._failing_since: float | None = None  # monotonic time of the first failure of an outage
        self._logged_at = 0.0  # when that outage was last logged
        self._next_heartbeat = 0.0
        self._last_prune = time.monotonic()
        #: counters for health and tests
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_success: float | None = None
        #: optional ``f(item, seconds)`` called for each delivered row (latency measurement)
        self.on_delivered: Callable[[OutboxItem, float], None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> PushSender:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"examwatch-push-{self.vehicle_id}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0, drain_s: float = 0.0) -> None:
        """Stop the thread; with ``drain_s`` > 0, first give it that long to empty the outbox."""
        if drain_s > 0 and self._thread is not None:
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline and self.pending() > 0:
                time.sleep(0.05)
        self._stop.set()
        self.outbox.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        left = self.pending()
        if left > 0:
            log.warning("%d alert change(s) not yet delivered to the center stay queued; they go out at the next start", left)
        self._close()

    def pending(self) -> int:
        try:
            return self.outbox.pending_count()
        except Exception:  # noqa: BLE001 - e.g. a closed store
            return -1

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.1)
        return self.pending() == 0

    def health(self) -> dict:
        """``{"transport", "vehicle_id", "pending", "delivered", "failures", "last_error",
        "failing_for_s"}`` (the vehicle's ``/health`` → ``push``)."""
        since = self._failing_since
        return {"transport": self.transport, "vehicle_id": self.vehicle_id, "pending": self.pending(),
                "delivered": self.delivered, "failures": self.failures, "last_error": self.last_error,
                "failing_for_s": None if since is None else round(time.monotonic() - since, 1)}

    # --- the loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self.outbox.wake.clear()
            try:
                sent = self._pass()
            except _TransportDown as exc:
                self._note_failure(str(exc))
                wait = self._backoff * (0.8 + 0.4 * random.random())
                self._backoff = min(self._backoff * 2, self.max_backoff_s)
                self._stop.wait(min(wait, self.max_backoff_s))
                continue
            except Exception as exc:  # noqa: BLE001 - a store hiccup: log, wait, go on
                if getattr(self.store, "_closed", False):
                    log.info("push sender %s: the store is closed; stopping", self.vehicle_id)
                    return
                log.exception("push sender %s failed", self.vehicle_id)
                self._note_failure(f"{type(exc).__name__}: {exc}")
                self._stop.wait(1.0)
                continue
            self._housekeeping()
            if sent == 0:
                self.outbox.wake.wait(self.poll_s)

    #: a failure that lasts is logged again this often (s), with how long and how much is queued
    REPEAT_LOG_S = 300.0

    def _note_failure(self, why: str) -> None:
        self.failures += 1
        now = time.monotonic()
        auth = why.startswith(("HTTP 401", "HTTP 403"))
        if why != self.last_error:
            self._failing_since = self._failing_since or now
            self._logged_at = now
            if auth:
                log.error("the center refuses this vehicle's credentials (%s): check --push-token-file and the "
                          "center's --vehicle-tokens; alert changes stay queued (%d) and are retried", why, self.pending())
            else:
                log.warning("push to the center failed (%s); retrying with backoff", why)
        elif now - self._logged_at >= self.REPEAT_LOG_S:
            self._logged_at = now
            log.log(logging.ERROR if auth else logging.WARNING,
                    "push to the center still failing after %.0f s (%s)%s; %d alert change(s) queued",
                    now - (self._failing_since or now), why,
                    ": check --push-token-file and the center's --vehicle-tokens" if auth else "", self.pending())
        self.last_error = why

    def _pass(self) -> int:
        """Deliver what is ready; returns how many rows were delivered. Raises _TransportDown."""
        items = self.outbox.ready(self.batch)
        if not items:
            return 0
        blocked: set[str] = set()
        todo = []
        for it in items:
            if it.alert_id not in blocked:
                todo.append(it)
        delivered: list[OutboxItem] = []
        try:
            for it, ok, err in self._deliver(todo, blocked):
                if ok:
                    delivered.append(it)
                else:
                    blocked.add(it.alert_id)
                    retry = min(self.initial_backoff_s * 2 ** it.attempts, self.max_backoff_s)
                    self.outbox.mark_failed(it.seq, err or "refused", retry)
                    self.failures += 1
                    self.last_error = err
                    log.warning("center refused %s v%d: %s (retry in %.1f s)", it.alert_id, it.version, err, retry)
                if len(delivered) >= 50:
                    self._mark(delivered)
                    delivered = []
        finally:
            self._mark(delivered)
        return len(todo)

    def _mark(self, delivered: list[OutboxItem]) -> None:
        if not delivered:
            return
        self.outbox.mark_delivered([it.seq for it in delivered])
        self.delivered += len(delivered)
        self._backoff = self.initial_backoff_s
        if self._failing_since is not None:
            log.info("push to the center works again after %.0f s; %d alert change(s) still queued",
                     time.monotonic() - self._failing_since, self.pending())
            self._failing_since = None
        self.last_error = None
        self.last_success = time.monotonic()
        if self.on_delivered is not None:
            now = time.time()
            for it in delivered:
                self.on_delivered(it, now - it.created_at.timestamp())

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self.heartbeat_s > 0 and now >= self._next_heartbeat:
            try:
                ok = self._heartbeat() is not False
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is not an error worth more
                log.debug("heartbeat failed: %s", exc)
                ok = False
            self._next_heartbeat = now + (self.heartbeat_s if ok else min(self.heartbeat_s, 5.0))
        if now - self._last_prune >= 300:
            self._last_prune = now
            try:
                self.outbox.prune(self.prune_after_s)
            except Exception:  # noqa: BLE001
                log.exception("outbox prune failed")

    def _status_body(self) -> dict:
        health = None
        if self.status_fn is not None:
            try:
                health = self.status_fn()
            except Exception:  # noqa: BLE001
                health = None
        spectrum = None
        if self.spectrum_fn is not None:
            try:
                spectrum = self.spectrum_fn()
            except Exception:  # noqa: BLE001
                spectrum = None
        return {"vehicle_id": self.vehicle_id, "site": self.site, "at": time.time(), "health": health,
                "push": {"pending": self.pending(), "delivered": self.delivered}, "spectrum": spectrum}

    # --- transport ---------------------------------------------------------------------------------
    def _deliver(self, items: list[OutboxItem], blocked: set[str]):
        """Yield ``(item, ok, error)`` in order, skipping alerts in ``blocked``; raise
        :class:`_TransportDown` when the transport fails (after yielding what went through)."""
        raise NotImplementedError

    def _heartbeat(self) -> None:
        pass

    def _close(self) -> None:
        pass


class HttpPushSender(PushSender):
    """Webhook sender (see the module docstring). ``center_url`` is the center's base URL."""

    transport = "http"

    def __init__(self, store, *, center_url: str, token: str, vehicle_id: str, timeout_s: float = 10.0,
                 max_batch: int = 100, **kw) -> None:
        import httpx

        super().__init__(store, vehicle_id=vehicle_id, **kw)
        self.center_url = center_url.rstrip("/")
        #: changes per request when several wait (1: always one POST /ingest per change)
        self.max_batch = max(1, int(max_batch))
        self._batch_ok = True
        self.token = token
        if logging.getLogger("httpx").level == logging.NOTSET:  # one INFO line per request is too many
            logging.getLogger("httpx").setLevel(logging.WARNING)
        self._client = httpx.Client(base_url=self.center_url, timeout=timeout_s,
                                    headers={"Authorization": f"Bearer {token}", "User-Agent": "examwatch-vehicle"})

    def _post(self, path: str, method: str = "POST", **kw):
        import httpx

        try:
            r = self._client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise _TransportDown(f"{type(exc).__name__}: {exc}") from None
        if r.status_code >= 500 or r.status_code in (401, 403, 404, 408, 429):
            raise _TransportDown(f"HTTP {r.status_code}: {r.text[:200]}")
        return r

    def _deliver(self, items, blocked):
        i = 0
        while i < len(items):
            it = items[i]
            if it.alert_id in blocked:
                i += 1
                continue
            if self.max_batch > 1 and self._batch_ok and len(items) - i > 1:
                chunk = [x for x in items[i:i + self.max_batch]]
                i += len(chunk)
                yield from self._deliver_batch(chunk, blocked)
                continue
            i += 1
            yield self._deliver_one(it)

    def _deliver_one(self, it: OutboxItem):
        r = self._post("/api/v1/ingest", json=_body(it, self.vehicle_id),
                       headers={"Idempotency-Key": idempotency_key(it.alert_id, it.version)})
        if not 200 <= r.status_code < 300:
            return it, False, f"HTTP {r.status_code}: {r.text[:300]}"
        try:
            need = r.json().get("need_evidence") or []
        except ValueError:
            need = []
        for name in need:
            self._upload_evidence(it.alert_id, str(name))
        return it, True, None

    def _deliver_batch(self, chunk: list[OutboxItem], blocked: set[str]):
        """One ``POST /ingest/batch`` for a backlog; falls back to single posts on a center without it."""
        chunk = [it for it in chunk if it.alert_id not in blocked]
        if not chunk:
            return
        body = {"items": [{"idempotency_key": idempotency_key(it.alert_id, it.version), "alert": _body(it, self.vehicle_id)}
                          for it in chunk]}
        try:
            r = self._post("/api/v1/ingest/batch", json=body)
        except _TransportDown as exc:
            if "HTTP 404" in str(exc):  # an older center: one change per request
                self._batch_ok = False
                for it in chunk:
                    if it.alert_id not in blocked:
                        yield self._deliver_one(it)
                return
            raise
        if not 200 <= r.status_code < 300:
            for it in chunk:  # the whole batch refused: retry each alert's head later
                if it.alert_id not in blocked:
                    yield it, False, f"HTTP {r.status_code}: {r.text[:300]}"
            return
        try:
            results = r.json()["results"]
            if len(results) != len(chunk):
                raise ValueError("result count")
        except (ValueError, KeyError, TypeError):
            raise _TransportDown(f"the center's batch answer is not understood: {r.text[:200]}") from None
        uploaded: set[tuple[str, str]] = set()  # each version of an alert in the batch lists the same files
        for it, res in zip(chunk, results):
            status = res.get("status")
            if status in ("stored", "stale", "duplicate"):
                for name in res.get("need_evidence") or []:
                    if (it.alert_id, str(name)) not in uploaded:
                        self._upload_evidence(it.alert_id, str(name))
                        uploaded.add((it.alert_id, str(name)))
                yield it, True, None
            elif status == "error" and it.alert_id not in blocked:
                yield it, False, f"HTTP {res.get('code')}: {res.get('error')}"
            # "skipped": after a refused version of the same alert; stays pending

    def _upload_evidence(self, alert_id: str, name: str) -> None:
        got = self.store.evidence(alert_id, name)
        if got is None:
            return  # gone on the vehicle: nothing to send
        data, info = got
        r = self._post(f"/api/v1/ingest/evidence/{quote(alert_id, safe='')}/{quote(name, safe='')}", "PUT",
                       content=data, headers={"Content-Type": info.media_type, "X-Content-SHA256": info.sha256})
        if not 200 <= r.status_code < 300:  # refused for good (too big, bad name): the alert still goes
            log.warning("center refused evidence %s/%s: HTTP %d %s", alert_id, name, r.status_code, r.text[:200])

    def _heartbeat(self) -> None:
        self._post("/api/v1/ingest/heartbeat", json=self._status_body())

    def _close(self) -> None:
        self._client.close()


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
