"""The senders' base, :class:`PushSender`: the outbox loop, retries and heartbeats, shared by the
HTTP (:mod:`detector.push._http`) and MQTT (:mod:`detector.push._mqtt_sender`) senders; the
idempotency key and the alert body they send.

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

import logging
import random
import threading
import time
from collections.abc import Callable

from detector.push.outbox import Outbox, OutboxItem

__all__ = ["PushSender", "idempotency_key"]


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
    #: the monitor's supervisor handle of this sender (``/health`` → ``components.push``), or None:
    #: ``error(exc)`` when the loop fails, ``note(why)`` for a transport failure it retries itself,
    #: ``ok()``/``beat(n)`` on delivery
    component = None

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
            self._thread = threading.Thread(target=self._run_supervised, name=f"examwatch-push-{self.vehicle_id}",
                                            daemon=True)
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
    def _run_supervised(self) -> None:
        """:meth:`_run`, started again (backoff up to ``max_backoff_s``) if it dies of an error."""
        backoff = self.initial_backoff_s
        while not self._stop.is_set():
            try:
                self._run()
                return
            except Exception as exc:  # noqa: BLE001 - the sender must not stop silently
                log.exception("push sender %s died; restarting in %.1f s", self.vehicle_id, backoff)
                if self.component is not None:
                    self.component.error(exc)
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff_s)
                if self.component is not None:
                    self.component.restarts += 1

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
                if self.component is not None:
                    self.component.error(exc)
                self._stop.wait(1.0)
                continue
            self._housekeeping()
            if sent == 0:
                self.outbox.wake.wait(self.poll_s)

    #: a failure that lasts is logged again this often (s), with how long and how much is queued
    REPEAT_LOG_S = 300.0

    def _note_failure(self, why: str) -> None:
        self.failures += 1
        if self.component is not None:
            self.component.note(why)
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
        if self.component is not None:
            self.component.ok()
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
