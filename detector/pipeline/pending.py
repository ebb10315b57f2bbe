"""Alert changes the store cannot take now: a bounded in-order queue, and the writer that drains it.

:class:`PendingWrites` is how the processing writes every alerting event to the store. While the
store works, an event is written at once, by the processing thread (the store first, then the
callbacks). When a write fails because the store is unavailable (SQLite locked, read-only or full,
PostgreSQL away: :class:`~detector.core.errors.StoreUnavailable`, or the database error itself),
detection goes on: the event waits in a queue (at most ``limit``; beyond, new events are refused,
counted and logged, the queued ones kept), every later event waits behind it (so the changes of
an alert keep their order), and :meth:`run` (a supervised thread) writes the queue in order, with
a backoff of 0.5 s doubling to 5 s, when the store is back. Writing an event twice changes nothing
(``AlertStore.apply`` with the same event and the same ``when`` bumps no version), so a write
whose commit was not acknowledged can be retried.

:meth:`health` is ``/health`` → ``store``: ``{"ok", "pending", "dropped", "last_error", "since"}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable

from detector.core.errors import StoreUnavailable
from detector.core.timefmt import utc_iso

__all__ = ["PendingWrites", "PENDING_LIMIT", "unavailable"]

log = logging.getLogger("examwatch.store")

#: bound of the queue of alert changes waiting for the store
PENDING_LIMIT = 10_000
#: a single write taking longer than this already shows in ``/health`` (the database is locked)
SLOW_WRITE_S = 2.0
#: how long a write of the processing thread waits for a locked SQLite database before the event
#: is queued (the writer thread then waits the full busy timeout, the processing does not)
PROCESSING_PATIENCE_S = 0.5


def unavailable(exc: BaseException) -> str | None:
    """Why the store cannot be written, when ``exc`` says so; None for any other error."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    try:
        from detector.alerts.db import unavailable_reason
    except ImportError:  # pragma: no cover - the alerts layer is always there with a store
        return None
    why = unavailable_reason(exc)
    return None if why is None else f"the alert store cannot be written: {why}"


class PendingWrites:
    """The queue of alert changes waiting for the store (see the module docstring).

    ``on_stored(event, alert)`` is called (by the writer thread) for each queued event once it is
    in the store.
    """

    def __init__(self, store, *, limit: int = PENDING_LIMIT, on_stored: Callable[[object, object], None] | None = None,
                 initial_backoff_s: float = 0.5, max_backoff_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.limit = int(limit)
        self.on_stored = on_stored
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._q: deque = deque()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()  # one drainer at a time (the writer thread, or flush at stop)
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._backoff = initial_backoff_s
        #: events refused because the queue was full (logged)
        self.dropped = 0
        #: queued events the store refused for another reason than being unavailable (logged)
        self.failed = 0
        #: queued events written once the store was back
        self.written_late = 0
        self.last_error: str | None = None
        self._down_since: datetime | None = None
        self._in_flight: float | None = None
        self._logged: set[str] = set()
        #: progress for the supervisor: writes done
        self.writes = 0

    # ---- the processing side ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._q)

    def write(self, event, **kw):
        """``store.apply(event, **kw)`` now, or queued: the alert as stored, or None when queued."""
        with self._lock:
            if self._q:
                self._enqueue(event, kw)
                return None
        try:
            db = getattr(self.store, "db", None)
            if db is not None and hasattr(db, "patience"):
                with db.patience(PROCESSING_PATIENCE_S):
                    alert = self._apply(event, kw)
            else:
                alert = self._apply(event, kw)
        except Exception as exc:
            why = unavailable(exc)
            if why is None:
                raise
            with self._lock:
                self._enqueue(event, kw)
            self._down(why)
            self.wake.set()
            return None
        self._up()
        return alert

    def _apply(self, event, kw):
        self._in_flight = self.clock()
        try:
            alert = self.store.apply(event, **kw)
        finally:
            self._in_flight = None
        self.writes += 1
        return alert

    def _enqueue(self, event, kw) -> None:
        if len(self._q) >= self.limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("%d alert change(s) waiting for the store: the queue is full; %d newer change(s) "
                          "refused so far (track %s)", len(self._q), self.dropped, getattr(event, "track_id", "?"))
            return
        self._q.append((event, kw))

    def _down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = datetime.now(timezone.utc)
        if why not in self._logged:
            self._logged.add(why)
            log.error("%s; alert changes wait in memory (%d) and are written in order when it is back", why, len(self._q))
        self.last_error = why

    def _up(self) -> None:
        if self._down_since is not None and not self._q:
            log.info("the alert store works again (down since %s); %d queued change(s) written",
                     utc_iso(self._down_since), self.written_late)
            self._down_since = None
            self.last_error = None
            self._logged.clear()
        self._backoff = self.initial_backoff_s

    # ---- the writer thread ------------------------------------------------------------------------
    def run(self) -> None:
        """Write the queue in order while the store takes it; back off while it does not. Until
        :meth:`stop`."""
        while not self._stop.is_set():
            self.wake.wait(0.5)
            self.wake.clear()
            if not self.drain():
                self._stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, self.max_backoff_s)

    def drain(self) -> bool:
        """Write queued events in order until the queue is empty (True) or the store fails (False)."""
        with self._drain_lock:
            return self._drain()

    def _drain(self) -> bool:
        while True:
            with self._lock:
                if not self._q:
                    break
                event, kw = self._q[0]
            try:
                alert = self._apply(event, kw)
            except Exception as exc:  # noqa: BLE001 - sorted below: unavailable → retry; else dropped, logged
                why = unavailable(exc)
                if why is not None:
                    self._down(why)
                    return False
                self.failed += 1
                log.exception("a queued alert change (track %s) was refused by the store and is dropped",
                              getattr(event, "track_id", "?"))
                alert = None
            with self._lock:
                self._q.popleft()
            if alert is not None:
                self.written_late += 1
                if self.on_stored is not None:
                    self.on_stored(event, alert)
        self._up()
        return True

    def flush(self, timeout: float) -> int:
        """Give the queue up to ``timeout`` to be written (at stop); returns what is left (logged)."""
        end = time.monotonic() + timeout
        while self._q and time.monotonic() < end:
            if not self.drain():
                time.sleep(min(0.2, max(0.0, end - time.monotonic())))
        if self._q:
            log.error("%d alert change(s) could not be written to the store before stopping (%s); they are lost",
                      len(self._q), self.last_error)
        return len(self._q)

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    # ---- reports ----------------------------------------------------------------------------------
    def health(self) -> dict:
        """``/health`` → ``store``."""
        why = self.last_error
        ok = self._down_since is None and not self._q
        t = self._in_flight
        if t is not None and self.clock() - t > SLOW_WRITE_S:
            ok = False
            why = why or f"a write has waited {self.clock() - t:.1f} s for the store (locked?)"
        return {"ok": ok, "pending": len(self._q), "dropped": self.dropped, "failed": self.failed,
                "last_error": None if ok else why,
                "since": None if self._down_since is None else utc_iso(self._down_since)}
