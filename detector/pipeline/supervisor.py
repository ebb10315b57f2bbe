"""Supervised workers: no thread of the monitor stops, or stalls, silently.

A :class:`Supervisor` owns named :class:`Component` s. A component is either a thread the
supervisor runs (:meth:`Supervisor.spawn`: its target is called again after an exception, with an
exponential backoff of 0.5 s doubling to 10 s) or a worker started elsewhere that reports to its
handle (:meth:`Supervisor.component`: ``beat()``, ``error(exc)``, ``ok()``; a ``restart``
callable, if given, is called by the supervisor after the backoff).

Every component counts its progress (``beat()``, or a ``progress`` callable). One with a
``waiting`` callable (input is waiting for it) whose progress does not move for ``stall_s`` is
*stalled*. States: ``running``, ``stalled``, ``restarting``, ``failed`` (will not be restarted),
``finished`` (its target returned), ``stopped``; only the first, ``finished`` and ``stopped`` are
healthy. :meth:`Supervisor.health` is ``/health`` → ``components``; each distinct error is logged
once, with its cause.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Callable

__all__ = ["Supervisor", "Component", "HEALTHY_STATES", "INITIAL_BACKOFF_S", "MAX_BACKOFF_S"]

log = logging.getLogger("examwatch.monitor")

INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
#: states of a component that do not degrade ``/health``
HEALTHY_STATES = frozenset({"running", "finished", "stopped"})


class Component:
    """One supervised worker: its state, progress, last error and restarts (thread-safe enough:
    single writes of plain attributes)."""

    def __init__(self, name: str, *, stall_s: float | None = None, waiting: Callable[[], bool] | None = None,
                 progress: Callable[[], int] | None = None, restart: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.stall_s = stall_s
        self.waiting = waiting
        self.progress_fn = progress
        self.restart_fn = restart
        self.clock = clock
        self.state = "running"
        self.last_error: str | None = None
        self.error_at: float | None = None
        self.restarts = 0
        self.backoff = INITIAL_BACKOFF_S
        self.restart_due: float | None = None
        self._beats = 0
        self._seen = -1
        self._moved_at = clock()
        self._logged: set[str] = set()

    # ---- reports from the worker ------------------------------------------------------------------
    @property
    def progress(self) -> int:
        if self.progress_fn is not None:
            try:
                return int(self.progress_fn())
            except Exception:  # noqa: BLE001 - a report must not fail
                return self._beats
        return self._beats

    def beat(self, n: int = 1) -> None:
        """Progress: ``n`` more units of work done."""
        self._beats += n

    def error(self, exc: BaseException | str, *, restarting: bool = True) -> None:
        """The worker failed (``exc``); logged once per distinct error, with its traceback."""
        why = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.last_error = why
        self.error_at = self.clock()
        self.state = "restarting" if restarting else "failed"
        if why not in self._logged:
            self._logged.add(why)
            if isinstance(exc, BaseException):
                log.error("%s failed: %s%s", self.name, why, "; restarting with backoff" if restarting else "",
                          exc_info=(type(exc), exc, exc.__traceback__))
            else:
                log.error("%s failed: %s", self.name, why)

    def ok(self) -> None:
        """The worker works again (after an error or a stall)."""
        if self.state not in ("running", "finished", "stopped"):
            log.info("%s works again (after: %s)", self.name, self.last_error)
            self.state = "running"
        self.backoff = INITIAL_BACKOFF_S

    def note(self, why: str) -> None:
        """A problem the worker handles itself (it keeps running): kept as ``last_error``."""
        self.last_error = why

    # ---- the supervisor's look ------------------------------------------------------------------------
    def check(self) -> None:
        """Stall detection (and the end of a stall)."""
        now = self.clock()
        p = self.progress
        if p != self._seen:
            self._seen, self._moved_at = p, now
            if self.state == "stalled":
                self.ok()
            return
        if self.stall_s is None or self.waiting is None or self.state not in ("running", "stalled"):
            return
        try:
            waiting = bool(self.waiting())
        except Exception:  # noqa: BLE001
            waiting = False
        if not waiting:
            self._moved_at = now
            if self.state == "stalled":
                self.ok()
            return
        idle = now - self._moved_at
        if idle > self.stall_s and self.state == "running":
            why = f"no progress for {idle:.1f} s while input waits (stalled)"
            self.state = "stalled"
            self.last_error = why
            self.error_at = now
            if "stalled" not in self._logged:
                self._logged.add("stalled")
                log.error("%s: %s", self.name, why)
            else:
                log.warning("%s: %s", self.name, why)

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY_STATES

    def as_dict(self) -> dict:
        return {"state": self.state, "last_error": self.last_error, "restarts": self.restarts,
                "progress": self.progress}


class Supervisor:
    """Named workers under watch (see the module docstring)."""

    def __init__(self, *, check_s: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self.check_s = check_s
        self.clock = clock
        self.components: dict[str, Component] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- components ---------------------------------------------------------------------------------
    def component(self, name: str, **kw) -> Component:
        """The handle of a worker started elsewhere (created on first use; see :class:`Component`)."""
        with self._lock:
            c = self.components.get(name)
            if c is None:
                c = self.components[name] = Component(name, clock=self.clock, **kw)
            else:
                for k, v in kw.items():
                    if v is not None:
                        setattr(c, {"progress": "progress_fn", "restart": "restart_fn"}.get(k, k), v)
            return c

    def spawn(self, name: str, target: Callable[[], object], *, restart: bool = True, thread_name: str | None = None,
              stall_s: float | None = None, waiting: Callable[[], bool] | None = None,
              progress: Callable[[], int] | None = None) -> threading.Thread:
        """Run ``target`` in a daemon thread as the component ``name``: an exception is reported and
        ``target`` is called again after the backoff (``restart``) or the component has ``failed``;
        a return ends it (``finished``)."""
        c = self.component(name, stall_s=stall_s, waiting=waiting, progress=progress)

        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                except Exception as exc:  # noqa: BLE001 - that is the point: report, back off, restart
                    if self._stop.is_set():
                        c.state = "stopped"
                        return
                    c.error(exc, restarting=restart)
                    if not restart:
                        return
                    wait = c.backoff
                    c.backoff = min(c.backoff * 2, MAX_BACKOFF_S)
                    if self._stop.wait(wait):
                        c.state = "stopped"
                        return
                    c.restarts += 1
                    c.state = "running"
                    c._moved_at = self.clock()  # noqa: SLF001 - a fresh start is not a stall
                    continue
                c.state = "finished"
                return
            c.state = "stopped"

        t = threading.Thread(target=run, name=thread_name or f"examwatch-{name}", daemon=True)
        t.start()
        self._ensure_watcher()
        return t

    # ---- the watcher --------------------------------------------------------------------------------
    def _ensure_watcher(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="examwatch-supervisor", daemon=True)
                self._watcher.start()

    def start(self) -> "Supervisor":
        self._ensure_watcher()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.check_s):
            self.check()

    def check(self) -> None:
        """One look at every component: stalls, and restarts due of external workers."""
        now = self.clock()
        for c in list(self.components.values()):
            try:
                c.check()
                if c.state == "restarting" and c.restart_fn is not None:
                    if c.restart_due is None:
                        c.restart_due = now + c.backoff
                        c.backoff = min(c.backoff * 2, MAX_BACKOFF_S)
                    elif now >= c.restart_due:
                        c.restart_due = None
                        c.restarts += 1
                        c.state = "running"
                        c._moved_at = now  # noqa: SLF001
                        c.restart_fn()
            except Exception:  # noqa: BLE001 - the watcher itself must not die
                log.error("supervisor check of %s failed:\n%s", c.name, traceback.format_exc())

    def stop(self) -> None:
        self._stop.set()
        for c in self.components.values():
            if c.state in ("running", "stalled", "restarting"):
                c.state = "stopped"

    # ---- reports ----------------------------------------------------------------------------------
    def health(self) -> dict:
        """``{name: {"state", "last_error", "restarts", "progress"}}`` (``/health`` → ``components``)."""
        return {name: c.as_dict() for name, c in sorted(self.components.items())}

    def unhealthy(self) -> list[Component]:
        return [c for c in self.components.values() if not c.healthy]
