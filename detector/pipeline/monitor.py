"""The monitor loop: capture → processing → store → callbacks, in threads, with a watchdog.

:class:`Monitor` is the façade the API and the commands use; the work is done by its stages:

* :mod:`~detector.pipeline.capture`: the capture thread (open/reopen with backoff, hops through the
  watch plan, repeated-buffer detection, real-time drop vs wait) and the watchdog (a source silent
  for ``watchdog_s`` is degraded and reopened);
* :mod:`~detector.pipeline.processing`: coalescing, the detection engine, the store first, then the
  callbacks;
* :mod:`~detector.pipeline.evidence`: SigMF snippets and audio of alerts from the recent blocks;
* :mod:`~detector.pipeline.live`: the latest spectrum (and its JSON) and the waterfall for the API.

When a finite source ends the monitor keeps serving (``finished``) until stopped. The clock is
injected (``clock``) so tests can run it fast.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable

from detector.config.plan import Scheduler
from detector.detection.engine import DetectionEngine
from detector.pipeline._threads import END
from detector.pipeline.capture import Capture, PositionProvider, Watchdog
from detector.pipeline.evidence import EvidenceRecorder
from detector.pipeline.live import LiveView
from detector.pipeline.processing import Processing
from detector.pipeline.status import MonitorState, MonitorStatus

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
    """

    def __init__(self, source_factory: Callable[[], object], engine: DetectionEngine, *, store=None, site: str = "site",
                 run_id: str = "run", scheduler: Scheduler | None = None, realtime: bool = False, watchdog_s: float = 5.0,
                 block_samples: int = 1 << 16, queue_blocks: int = 16, repeat_limit: int = 3,
                 coalesce_samples: int = 1 << 19, worker_nice: int = 5,
                 evidence: bool = True, clock: Callable[[], float] = time.monotonic, resume: Iterable[str] = (),
                 positions: PositionProvider | None = None) -> None:
        self.engine = engine
        self.store = store
        self.site = site
        self.run_id = run_id
        self.scheduler = scheduler
        self.realtime = realtime
        self.clock = clock
        self.status = MonitorStatus()
        self.on_alert: list[Callable[[dict, object], None]] = []
        self.on_event: list[Callable[[dict], None]] = []
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
                               clock=clock, positions=positions)
        self.watchdog = Watchdog(self.capture, self.status, self._stop, watchdog_s=watchdog_s, clock=clock)
        self.live = LiveView(engine)
        self.processing = Processing(engine, self._q, self.status, live=self.live,
                                     evidence=EvidenceRecorder(store) if evidence and store is not None else None,
                                     store=store, site=site, run_id=run_id, scheduler=scheduler,
                                     coalesce_samples=coalesce_samples, worker_nice=worker_nice, clock=clock,
                                     resume=resume, on_event=self.on_event, on_alert=self.on_alert)

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Monitor":
        self.capture.spawn()
        for target, name in ((lambda: self.processing.run(self.finished), "examwatch-process"),
                             (self.watchdog.run, "examwatch-watchdog")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop capture, drain the queue into the store, end open tracks. Idempotent."""
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
        # the capture threads end after their current read; joining them keeps a thread from being
        # inside a native call (an FFT, a USB transfer) while the interpreter shuts down
        for t in list(self._threads):
            if t.name.startswith("examwatch-capture"):
                t.join(max(0.0, min(2.0, end - time.monotonic())))
        if self.status.source_state is not MonitorState.FINISHED:
            self.status.source_state = MonitorState.STOPPED

    def threads_alive(self) -> list[str]:
        """Names of the loop's threads still running (after :meth:`stop`: a read stuck in a driver)."""
        return [t.name for t in self._threads if t.is_alive() and t.name != "examwatch-watchdog"]

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
        stream = self.engine._stream  # noqa: SLF001
        d["fft_backend"] = stream.backend if stream is not None else self.engine.config.fft_backend
        d["psd_kernel"] = stream.kernel if stream is not None else None
        for name, fn in self.health_sections.items():
            try:
                d[name] = fn()
            except Exception as exc:  # noqa: BLE001 - /health must answer
                d[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return d

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
