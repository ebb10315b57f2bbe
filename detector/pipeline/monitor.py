"""The monitor loop: capture → processing → store → callbacks, in threads, with a watchdog.

:class:`Monitor` is the façade the API and the commands use; the work is done by its stages:

* :mod:`~detector.pipeline.capture`: the capture thread (open/reopen with backoff, hops through the
  watch plan, repeated-buffer detection, real-time drop vs wait) and the watchdog (a source silent
  for ``watchdog_s`` is degraded and reopened);
* :mod:`~detector.pipeline.processing`: coalescing, the detection engine, the store first, then the
  callbacks;
* :mod:`~detector.pipeline.evidence`: SigMF snippets and audio of alerts from the recent blocks;
* :mod:`~detector.pipeline.live`: the latest spectrum (and its JSON) and the waterfall for the API;
* :mod:`~detector.pipeline.supervisor`: every thread (capture, processing, the store's writer, the
  watchdog; GPS and push report to it too) is supervised: an exception or a stall (``stall_s``
  without progress while blocks wait) degrades ``/health`` naming the component, and the worker
  is restarted with backoff;
* :mod:`~detector.pipeline.pending`: alert changes the store cannot take now wait, in order, in a
  bounded queue (``/health`` → ``store``) and are written when it is back; what is still queued
  at :meth:`Monitor.stop` is saved to a spill file and written first at the next
  :meth:`Monitor.start` with the same store.

When a finite source ends the monitor keeps serving (``finished``) until stopped. The clock is
injected (``clock``) so tests can run it fast.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from detector.config.plan import Scheduler
from detector.detection.engine import DetectionEngine
from detector.pipeline._threads import END
from detector.pipeline.capture import Capture, PositionProvider, Watchdog
from detector.pipeline.evidence import EvidenceRecorder
from detector.pipeline.live import LiveView
from detector.pipeline.pending import default_state_dir, spill_paths
from detector.pipeline.processing import Processing
from detector.pipeline.status import MonitorState, MonitorStatus
from detector.pipeline.supervisor import Supervisor

__all__ = ["Monitor", "MonitorStatus", "MonitorState"]


class Monitor:
    """The capture/processing loop of ``examwatch monitor`` (see the module docstring).

    Parameters
    ----------
    source_factory : callable
        Returns a fresh :class:`~detector.sources.IQSource` (called at start and on every reopen).
    engine : DetectionEngine
    store : AlertStore or None
        Where every alert change is written first.
    site, run_id : str
        Keys of the alerts in the store.
    scheduler : Scheduler, optional
        Hop plan for tunable sources; None dwells where the source is tuned.
    realtime : bool
        The source delivers at its own pace (drop blocks when behind) rather than on demand.
    watchdog_s : float
        A source silent for this long is degraded and reopened.
    block_samples : int
    coalesce_samples : int
        When the processing falls behind (blocks waiting in the queue), sources that are read (a
        dongle, the simulated SDR) are read in blocks of this many samples, and contiguous blocks
        waiting in the queue are joined up to it (0: neither), so that a loop that fell behind
        catches up with fewer, larger stacks.
    queue_blocks : int
        Bound of the capture → processing queue.
    worker_nice : int
        Niceness added to the capture and processing threads (0: none), so that the API answers
        first when the CPU is short.
    repeat_limit : int
        This many identical blocks in a row mean a stuck source.
    evidence : bool
        Attach evidence (SigMF snippet, audio) to alerts in the store.
    resume : iterable of str
        Ids of open alerts an earlier run of this site left in the store (a restart). A track of
        this run on the same frequency continues such an alert rather than raising a second one
        (``AlertStore.apply``).
    positions : callable, optional
        The receiver's position for a block that carries none (``--gps``; see
        :mod:`detector.app.gps`).
    supervisor : Supervisor, optional
        Where the loop's threads are supervised (the app's, shared with GPS and push); a new one
        when None.
    stall_s : float
        The processing is *stalled* (``/health`` degraded) when blocks wait and it has not finished
        one for this long.
    pending_limit : int, optional
        Bound of the queue of alert changes waiting for an unavailable store (default 10 000).
    spill : bool
        Save the changes still queued at :meth:`stop` to a spill file, and write those of an
        earlier stop first at :meth:`start` (:func:`~detector.pipeline.pending.spill_paths`).
    state_dir : Path, optional
        The spill file's folder when the store's own folder cannot take it, or for PostgreSQL
        (default :func:`~detector.pipeline.pending.default_state_dir`, read here).
    receiver : str, optional
        This loop's receiver, when a monitor has several (:class:`~detector.pipeline.receivers.ReceiverGroup`):
        its own spill file, and its index ``receiver_index`` in the shared dwell log.
    on_alert, on_event : list, optional
        The callback lists to use (a receiver group shares one of each between its loops).
    """

    def __init__(self, source_factory: Callable[[], object], engine: DetectionEngine, *, store=None, site: str = "site",
                 run_id: str = "run", scheduler: Scheduler | None = None, realtime: bool = False, watchdog_s: float = 5.0,
                 block_samples: int = 1 << 16, queue_blocks: int = 16, repeat_limit: int = 3,
                 coalesce_samples: int = 1 << 19, worker_nice: int = 5,
                 evidence: bool = True, clock: Callable[[], float] = time.monotonic, resume: Iterable[str] = (),
                 positions: PositionProvider | None = None, supervisor: Supervisor | None = None,
                 stall_s: float = 4.0, pending_limit: int | None = None, spill: bool = True,
                 state_dir: Path | None = None, receiver: str | None = None, receiver_index: int = 0,
                 on_alert: list | None = None, on_event: list | None = None) -> None:
        self.engine = engine
        self.store = store
        self.site = site
        self.run_id = run_id
        self.scheduler = scheduler
        self.realtime = realtime
        self.clock = clock
        self.status = MonitorStatus()
        self.receiver = receiver
        self.on_alert: list[Callable[[dict, object], None]] = on_alert if on_alert is not None else []
        self.on_event: list[Callable[[dict], None]] = on_event if on_event is not None else []
        #: more sections of :meth:`health` (e.g. ``"push"`` → the push sender's state)
        self.health_sections: dict[str, Callable[[], dict]] = {}
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._q: queue.Queue = queue.Queue(maxsize=queue_blocks)

        def frames_of(n_samples: int) -> int:
            stream = engine._stream  # noqa: SLF001 - frames per block for the count
            return n_samples // (stream.advance if stream is not None else 1 << 14)

        self.capture = Capture(source_factory, self._q, self.status, self._stop, frames_of=frames_of,
                               threads=self._threads, scheduler=scheduler, realtime=realtime, block_samples=block_samples,
                               coalesce_samples=coalesce_samples, repeat_limit=repeat_limit, worker_nice=worker_nice,
                               clock=clock, positions=positions, receiver_index=receiver_index)
        self.watchdog = Watchdog(self.capture, self.status, self._stop, watchdog_s=watchdog_s, clock=clock)
        self.live = LiveView(engine)
        self.processing = Processing(engine, self._q, self.status, live=self.live,
                                     evidence=EvidenceRecorder(store) if evidence and store is not None else None,
                                     store=store, site=site, run_id=run_id, scheduler=scheduler,
                                     coalesce_samples=coalesce_samples, worker_nice=worker_nice, clock=clock,
                                     resume=resume, on_event=self.on_event, on_alert=self.on_alert,
                                     pending_limit=pending_limit,
                                     spill_to=spill_paths(store, state_dir if state_dir is not None else default_state_dir(),
                                                          tag=receiver)
                                     if spill and store is not None else ())
        self.stall_s = stall_s
        #: the loop's workers under watch (``/health`` → ``components``)
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        cap = self.supervisor.component("capture", progress=lambda: self.status.blocks_read, restart=self.capture.spawn)
        self.capture.on_crash = cap.error

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Monitor":
        """Start the threads; changes saved at an earlier stop with this store are queued first."""
        sup = self.supervisor
        if self.processing.pending is not None:
            self.processing.pending.restore()  # before any new event
        self.capture.spawn()
        self._threads.append(sup.spawn("processing", lambda: self.processing.run(self.finished),
                                       thread_name="examwatch-process", stall_s=self.stall_s,
                                       waiting=lambda: self._q.qsize() > 0, progress=lambda: self.processing.blocks_done))
        pending = self.processing.pending
        if pending is not None:
            self._threads.append(sup.spawn("store_writer", pending.run, thread_name="examwatch-store-writer",
                                           progress=lambda: pending.writes))
        self._threads.append(sup.spawn("watchdog", self.watchdog.run, thread_name="examwatch-watchdog"))
        sup.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop capture, end open tracks, write the queued alert changes into the store (for the rest
        of ``timeout``, seconds) and save to the spill file what it could not take. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.capture.retire()
        try:
            self._q.put(END, timeout=timeout)
        except queue.Full:
            pass
        end = time.monotonic() + timeout
        for t in list(self._threads):
            if t.name == "examwatch-process":
                t.join(max(0.0, end - time.monotonic()))
        pending = self.processing.pending
        if pending is not None:  # what waits for an unavailable store gets the rest of the timeout
            pending.flush(max(0.0, end - time.monotonic()))
            pending.stop()
        self.supervisor.stop()
        # the capture threads end after their current read; joining them keeps a thread from being
        # inside a native call (an FFT, a USB transfer) while the interpreter shuts down
        for t in list(self._threads):
            if t.name.startswith("examwatch-capture"):
                t.join(max(0.0, min(2.0, end - time.monotonic())))
        if self.status.source_state is not MonitorState.FINISHED:
            self.status.source_state = MonitorState.STOPPED

    def threads_alive(self) -> list[str]:
        """Names of the loop's threads still running (after :meth:`stop`: a read stuck in a driver)."""
        return [t.name for t in self._threads
                if t.is_alive() and t.name not in ("examwatch-watchdog", "examwatch-store-writer")]

    # ---- views for the API ----------------------------------------------------------------------
    @property
    def latest(self) -> dict | None:
        """``{"spectrum": Spectrum, "result": FrameResult}`` of the last frame, or None."""
        return self.live.latest

    def health(self) -> dict:
        d = self.status.as_dict()
        corr = self.engine.correct
        status = getattr(corr, "status", None)  # a calibration correction reports itself; a bare callable not
        d["calibration"] = status() if status is not None else None
        fe = getattr(self.engine, "frequency_error", None)
        if fe is not None and fe.source is not None:
            # the receiver's frequency error estimated from known stations (issue #18)
            cal = dict(d["calibration"] or {})
            cal["ppm_estimated"] = fe.status()["ppm_estimated"]
            cal["frequency_error"] = fe.status()
            d["calibration"] = cal
        # the level step common to the covered bins, measured and compensated (a gain change; a
        # jammer is told apart by the surveyed carriers: a ``jamming`` event), dB; None without a baseline
        d["gain_offset_db"] = getattr(self.engine, "gain_offset_db", None)
        # receiver overload (issue #18 item 1): state, rails share, the strong emissions, advice
        ov = getattr(self.engine, "overload", None)
        d["overload"] = ov.status() if ov is not None else None
        stream = self.engine._stream  # noqa: SLF001
        d["fft_backend"] = stream.backend if stream is not None else self.engine.config.fft_backend
        d["psd_kernel"] = stream.kernel if stream is not None else None
        for name, fn in self.health_sections.items():
            try:
                d[name] = fn()
            except Exception as exc:  # noqa: BLE001 - /health must answer
                d[name] = {"error": f"{type(exc).__name__}: {exc}"}
        self._supervision_health(d)
        return d

    def _supervision_health(self, d: dict) -> None:
        """``components`` and ``store`` of ``/health``; ``status`` degraded, and ``last_error``
        naming the component, while one of them is not healthy."""
        d["components"] = self.supervisor.health()
        bad = [(c.name, c.last_error or c.state) for c in self.supervisor.unhealthy()]
        pending = self.processing.pending
        if pending is not None:
            store = d["store"] = pending.health()
            if not store["ok"]:
                bad.append(("store", store["last_error"] or "unavailable"))
        if bad:
            if self.status.status != "degraded" or not d.get("last_error"):
                d["last_error"] = "; ".join(f"{name}: {why}" for name, why in bad)
            d["status"] = "degraded"

    def latest_spectrum_json(self) -> bytes | None:
        """:meth:`latest_spectrum` serialised, cached per frame (the API's hot path)."""
        return self.live.spectrum_json()

    def latest_spectrum(self) -> dict | None:
        return self.live.spectrum()

    def waterfall(self, seconds: float | None = None) -> dict | None:
        """Recent frames on the current grid: ``{"times_s": (n,), "freqs_hz": (m,), "power_db": (n, m)}``
        (frames of another tuning are left out); None before the first frame."""
        return self.live.waterfall.view(seconds)

    def tracks(self) -> list[dict]:
        """The confirmed open tracks as JSON objects (``GET /tracks``)."""
        return [ev.to_json() for ev in self.engine.open_tracks()]
