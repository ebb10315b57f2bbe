"""The monitor loop: capture → detection → alerts, in threads, with a watchdog.

Three threads share one :class:`Monitor`:

* **capture** reads blocks from the source (hopping a tunable source through the watch plan) and
  puts them on a bounded queue. A real-time source (an RTL-SDR, a paced simulation) is never
  blocked by a slow consumer: when the queue is full the block is dropped and counted. A source
  that runs as fast as the CPU allows (a recording, an unpaced simulation) waits instead.
* **processing** takes blocks off the queue, runs the detection engine, stores every alert change
  (``AlertStore.apply_event``) *before* telling anyone (the ``on_alert`` callbacks: SSE, push),
  attaches evidence (a SigMF snippet, and the demodulated audio for narrowband alerts) and keeps the
  latest spectrum for the API.
* **watchdog** marks the source ``degraded`` when it raises, stalls (no block for
  ``watchdog_s``), or returns the same buffer again and again, and has it reopened with
  exponential backoff (0.5 s doubling to 10 s); the loop keeps going and turns ``ok`` again when
  blocks flow.

When a finite source ends the monitor keeps serving (``finished``) until stopped. The clock is
injected (``clock``) so tests can run it fast.
"""

from __future__ import annotations

import hashlib
import os
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

import numpy as np

from detector.detection.engine import DetectionEngine
from detector.detection.events import DetectionEvent
from detector.config.plan import Scheduler
from detector.core.types import IQBlock

__all__ = ["Monitor", "MonitorStatus"]

log = logging.getLogger("examwatch.monitor")

_SENTINEL = object()


@dataclass
class MonitorStatus:
    """What ``GET /health`` reports about the loop."""

    status: str = "ok"  # ok | degraded
    source_state: str = "starting"  # starting | running | degraded | reopening | finished | stopped
    source: str = ""
    frames_processed: int = 0
    frames_dropped: int = 0
    blocks_dropped: int = 0
    blocks_read: int = 0
    repeated_blocks: int = 0
    blocks_coalesced: int = 0
    reopen_count: int = 0
    last_frame_time: str | None = None
    last_block_monotonic: float | None = None
    last_error: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))
    #: alerting track events written to the store this run (also those that changed nothing;
    #: evidence files are not counted)
    alerts_stored: int = 0
    #: distinct alerts raised this run
    alerts_raised: int = 0
    center_hz: float | None = None
    sample_rate_hz: float | None = None
    scene_time_s: float | None = None

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("last_block_monotonic", None)
        return d


def _digest(x: np.ndarray) -> bytes:
    """A cheap fingerprint of a block: its length and 3 slices of 4 kB."""
    b = x.view(np.uint8)
    n = b.size
    parts = [b[:4096], b[n // 2:n // 2 + 4096], b[-4096:]] if n > 12288 else [b]
    h = hashlib.blake2b(digest_size=16)
    h.update(n.to_bytes(8, "little"))
    for p in parts:
        h.update(p.tobytes())
    return h.digest()


class Monitor:
    """The capture/processing loop of ``examwatch monitor`` (see the module docstring).

    Parameters
    ----------
    source_factory : callable
        Returns a fresh source (called at start and on every reopen).
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
    resume : iterable of str
        Ids of open alerts an earlier run of this site left in the store (a restart). A track of
        this run on the same frequency continues such an alert rather than raising a second one
        (``AlertStore.apply_event``).
    """

    def __init__(self, source_factory: Callable[[], object], engine: DetectionEngine, *, store=None, site: str = "site",
                 run_id: str = "run", scheduler: Scheduler | None = None, realtime: bool = False, watchdog_s: float = 5.0,
                 block_samples: int = 1 << 16, queue_blocks: int = 16, repeat_limit: int = 3,
                 coalesce_samples: int = 1 << 19, worker_nice: int = 5,
                 evidence: bool = True, clock: Callable[[], float] = time.monotonic, resume: Iterable[str] = ()) -> None:
        self.source_factory = source_factory
        self.engine = engine
        self.store = store
        self.site = site
        self.run_id = run_id
        self.scheduler = scheduler
        self.realtime = realtime
        self.watchdog_s = watchdog_s
        self.block_samples = block_samples
        self.coalesce_samples = coalesce_samples
        self.worker_nice = worker_nice
        self.repeat_limit = repeat_limit
        self.evidence = evidence
        self.clock = clock
        self.status = MonitorStatus()
        self.on_alert: list[Callable[[DetectionEvent, object], None]] = []
        self.on_event: list[Callable[[DetectionEvent], None]] = []
        self._q: queue.Queue = queue.Queue(maxsize=queue_blocks)
        self._stop = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._recent: deque[IQBlock] = deque(maxlen=32)
        self._evidence_stage: dict[str, int] = {}
        self._raised: set[str] = set()  # alert ids raised this run
        self._resumable: set[str] = set(resume)  # open alerts of an earlier run not yet continued
        #: more sections of :meth:`health` (e.g. ``"push"`` → the push sender's state)
        self.health_sections: dict[str, Callable[[], dict]] = {}
        self.latest: dict | None = None
        self._backoff = 0.5
        #: recent frames for waterfalls: (offset_s, center_hz, power dB float32) of one frame in
        #: ``waterfall_every`` (about 5 minutes at 10 ms frames and every 10th frame)
        self.waterfall_every = 10
        self._waterfall: deque = deque(maxlen=3000)

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Monitor":
        self._spawn_capture()
        for target, name in ((self._process_loop, "examwatch-process"), (self._watchdog_loop, "examwatch-watchdog")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop capture, drain the queue into the store, end open tracks. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._lock:
            self._generation += 1
        try:
            self._q.put(_SENTINEL, timeout=timeout)
        except queue.Full:
            pass
        end = time.monotonic() + timeout
        for t in self._threads:
            if t.name == "examwatch-process":
                t.join(max(0.0, end - time.monotonic()))
        # the capture threads end after their current read; joining them keeps a thread from being
        # inside a native call (an FFT, a USB transfer) while the interpreter shuts down
        for t in self._threads:
            if t.name.startswith("examwatch-capture"):
                t.join(max(0.0, min(2.0, end - time.monotonic())))
        self.status.source_state = "stopped" if self.status.source_state != "finished" else "finished"

    def threads_alive(self) -> list[str]:
        """Names of the loop's threads still running (after :meth:`stop`: a read stuck in a driver)."""
        return [t.name for t in self._threads if t.is_alive() and t.name != "examwatch-watchdog"]

    def _spawn_capture(self) -> None:
        with self._lock:
            self._generation += 1
            gen = self._generation
        t = threading.Thread(target=self._capture_loop, args=(gen,), name=f"examwatch-capture-{gen}", daemon=True)
        t.start()
        self._threads.append(t)

    def _degrade(self, why: str) -> None:
        if self.status.last_error != why or self.status.status != "degraded":
            log.warning("source degraded: %s", why)
        self.status.status = "degraded"
        self.status.source_state = "degraded"
        self.status.last_error = why

    # ---- capture ----------------------------------------------------------------------------------
    def _open(self, gen: int):
        while not self._stop.is_set() and gen == self._generation:
            try:
                src = self.source_factory()
                self.status.source = getattr(getattr(src, "info", None), "name", str(src))
                return src
            except Exception as exc:  # noqa: BLE001 - any failure to open is reported and retried
                self._degrade(f"cannot open the source: {exc}")
                self.status.source_state = "reopening"
                self._stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, 10.0)
        return None

    def _capture_loop(self, gen: int) -> None:
        self._lower_priority()
        src = None
        blocks_iter = None
        last_digest, repeats = None, 0
        hop_until = -1.0
        while not self._stop.is_set() and gen == self._generation:
            if src is None:
                src = self._open(gen)
                if src is None:
                    return
                blocks_iter = None if hasattr(src, "read") else iter(src.blocks(self.block_samples))
                hop_until = -1.0
                self.status.last_block_monotonic = self.clock()
            try:
                if self.scheduler is not None and not self.scheduler.single and hasattr(src, "tune") and self.clock() >= hop_until:
                    hop = self.scheduler.next_hop(self.clock())
                    src.tune(hop.center_hz)
                    hop_until = self.clock() + self.scheduler.dwell_for(hop, self.clock())
                if blocks_iter is not None:
                    block = next(blocks_iter)
                else:
                    if getattr(src, "t", 0.0) >= getattr(src, "t_end", float("inf")) - 1e-9:
                        raise StopIteration
                    # behind (blocks waiting): read larger blocks, so that the processing gets its
                    # stacks of coalesce_samples without joining (copying) small ones
                    behind = self.coalesce_samples > self.block_samples and self._q.qsize() >= 2
                    block = src.read(self.coalesce_samples if behind else self.block_samples)
            except StopIteration:
                self.status.source_state = "finished"
                if self.status.status == "degraded" and self.status.last_error and "repeats" not in self.status.last_error:
                    self.status.status = "ok"
                self._q.put(_SENTINEL)
                return
            except Exception as exc:  # noqa: BLE001 - a failing source is reported, reopened, never fatal
                self._degrade(f"source read failed: {exc}")
                try:
                    src.close()
                except Exception:  # noqa: BLE001
                    pass
                src = None
                self._stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, 10.0)
                self.status.reopen_count += 1
                continue
            if gen != self._generation:  # a stalled read came back after the watchdog gave up on it
                return
            now = self.clock()
            self.status.last_block_monotonic = now
            self.status.blocks_read += 1
            d = _digest(block.samples)
            if d == last_digest:
                repeats += 1
                self.status.repeated_blocks += 1
                if repeats >= self.repeat_limit - 1:
                    self._degrade(f"the source repeats the same buffer ({repeats + 1} times); its data is ignored")
                continue
            last_digest, repeats = d, 0
            if self.status.status == "degraded":
                log.info("source recovered")
                self.status.status = "ok"
                self.status.last_error = None
            self.status.source_state = "running"
            self._backoff = 0.5
            self.status.center_hz = block.center_hz
            self.status.sample_rate_hz = block.sample_rate_hz
            if self.realtime:
                try:
                    self._q.put_nowait(block)
                except queue.Full:
                    self.status.blocks_dropped += 1
                    stream = self.engine._stream  # noqa: SLF001 - frames per block for the count
                    adv = stream.advance if stream is not None else 1 << 14
                    self.status.frames_dropped += max(1, block.samples.size // adv)
            else:
                while not self._stop.is_set():
                    try:
                        self._q.put(block, timeout=0.5)
                        break
                    except queue.Full:
                        continue

    # ---- watchdog ---------------------------------------------------------------------------------
    def _watchdog_loop(self) -> None:
        while not self._stop.wait(min(0.5, self.watchdog_s / 4)):
            if self.status.source_state in ("finished", "stopped"):
                continue
            last = self.status.last_block_monotonic
            if last is not None and self.clock() - last > self.watchdog_s:
                self._degrade(f"no samples for {self.clock() - last:.1f} s (stalled source)")
                self.status.source_state = "reopening"
                self.status.reopen_count += 1
                self.status.last_block_monotonic = self.clock()
                self._spawn_capture()  # the stuck thread is abandoned; it exits when its read returns

    # ---- processing -------------------------------------------------------------------------------
    def _lower_priority(self) -> None:
        """Run this (worker) thread at ``worker_nice`` above the process's niceness, so that under
        CPU contention the API threads answer first: the bounded queue absorbs the short delay of
        the workers, a command center waiting on a request cannot (Linux: per-thread niceness)."""
        if not self.worker_nice:
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.worker_nice))
        except (AttributeError, OSError):  # not Linux, or not permitted: run as is
            pass

    def _process_loop(self) -> None:
        self._lower_priority()
        pending = None
        while True:
            item = pending if pending is not None else self._q.get()
            pending = None
            if item is _SENTINEL:
                break
            block: IQBlock = item
            if self.coalesce_samples > block.samples.size:
                # blocks that queued up while the last one was processed are processed as one: the
                # per-block costs of detection are then shared by more frames (keeping up under load)
                parts = [block]
                n = block.samples.size
                while n < self.coalesce_samples:
                    try:
                        nxt = self._q.get_nowait()
                    except queue.Empty:
                        break
                    last = parts[-1]
                    if (nxt is _SENTINEL or nxt.retuned or nxt.center_hz != last.center_hz
                            or nxt.sample_rate_hz != last.sample_rate_hz
                            or abs(nxt.offset_s - (last.offset_s + last.duration_s)) > 0.5 / last.sample_rate_hz):
                        pending = nxt
                        break
                    parts.append(nxt)
                    n += nxt.samples.size
                if len(parts) > 1:
                    block = replace(block, samples=np.concatenate([b.samples for b in parts]),
                                    position=parts[-1].position or block.position)
                    self.status.blocks_coalesced += len(parts) - 1
            self._recent.append(block)
            try:
                events = self.engine.process_block(block)
            except Exception as exc:  # noqa: BLE001 - e.g. a baseline refusing this grid: report, keep going
                self._degrade(f"processing failed: {exc}")
                log.exception("processing failed")
                continue
            self._after(events, block)
        self._after(self.engine.finish(), None)
        self.finished.set()

    def _after(self, events: list[DetectionEvent], block: IQBlock | None) -> None:
        eng = self.engine
        self.status.frames_processed = eng.frames_processed
        if block is not None:
            self.status.scene_time_s = block.offset_s + block.duration_s
            wall = block.start + timedelta(seconds=block.duration_s) if block.start else datetime.now(timezone.utc)
            self.status.last_frame_time = wall.isoformat().replace("+00:00", "Z")
        if eng.last_spectrum is not None:
            # published in dBm when the calibration profile has a power table for this gain
            spec = eng.calibrated_spectrum()
            self.latest = {"spectrum": spec, "result": eng.last_result}
            if eng.frames_processed // self.waterfall_every != getattr(self, "_wf_mark", -1):
                self._wf_mark = eng.frames_processed // self.waterfall_every
                self._waterfall.append((spec.offset_s, spec.freqs_hz, spec.power))
        for ev in events:
            for cb in self.on_event:
                cb(ev)
            if not ev.alert:
                continue
            alert = None
            if self.store is not None:
                alert = self.store.apply(ev, site=self.site, run_id=self.run_id, resume=self._resumable)
                self.status.alerts_stored += 1
                if alert is not None and alert.id in self._resumable:
                    self._resumable.discard(alert.id)
                    log.info("alert %s of an earlier run continues with track %s", alert.id, ev.track_id)
                    if alert.evidence:  # the first detection's evidence stays as it was recorded
                        self._evidence_stage[alert.id] = 2
                if alert is not None and alert.id not in self._raised:
                    self._raised.add(alert.id)
                    self.status.alerts_raised = len(self._raised)
                if alert is not None and self.evidence and block is not None:
                    # evidence at the first alert, and once more when the track has been on the air
                    # for a second (the first snippet holds only the frames that triggered the alert)
                    stage = self._evidence_stage.get(alert.id, 0)
                    on_air = ev.last_seen_s - ev.first_seen_s
                    if stage == 0 or (stage == 1 and on_air >= 1.0):
                        self._evidence_stage[alert.id] = stage + 1
                        self._attach_evidence(alert, ev)
                        alert = self.store.get(alert.id)
            if self.scheduler is not None and not self.scheduler.single:
                self.scheduler.extend(ev.center_hz, self.clock() + 30.0)
            for cb in self.on_alert:
                cb(ev, alert)

    def _attach_evidence(self, alert, ev: DetectionEvent) -> None:
        """The last ~1 s of IQ around the detection as SigMF, and NFM audio for narrowband alerts."""
        try:
            from detector.alerts import nfm_audio_wav, sigmf_snippet
        except ImportError:
            return
        blocks = [b for b in self._recent if b.center_hz == self._recent[-1].center_hz]
        if not blocks:
            return
        fs = blocks[-1].sample_rate_hz
        keep = int(fs)  # one second
        x = np.concatenate([b.samples for b in blocks])[-keep:]
        start = blocks[-1].start
        try:
            meta, data = sigmf_snippet(x, sample_rate_hz=fs, center_hz=blocks[-1].center_hz, start=start, annotations=[{
                "core:sample_start": 0, "core:sample_count": int(x.size),
                "core:freq_lower_edge": ev.center_hz - ev.bandwidth_hz / 2,
                "core:freq_upper_edge": ev.center_hz + ev.bandwidth_hz / 2,
                "core:label": f"{ev.track_id} {ev.classification}"}])
            self.store.add_evidence(alert.id, "snippet.sigmf-meta", meta, "application/json")
            self.store.add_evidence(alert.id, "snippet.sigmf-data", data, "application/octet-stream")
            if ev.bandwidth_hz <= 30e3:
                wav = nfm_audio_wav(x, sample_rate_hz=fs, offset_hz=ev.center_hz - blocks[-1].center_hz,
                                    bandwidth_hz=max(ev.bandwidth_hz, 12.5e3))
                self.store.add_evidence(alert.id, "audio.wav", wav, "audio/wav")
        except Exception:  # noqa: BLE001 - evidence is best effort; the alert is already stored
            log.exception("evidence for %s failed", alert.id)

    # ---- views for the API ----------------------------------------------------------------------
    def health(self) -> dict:
        d = self.status.as_dict()
        corr = self.engine.correct
        d["calibration"] = corr.status() if hasattr(corr, "status") else None
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
        snap = self.latest
        if snap is None:
            return None
        key = id(snap["spectrum"])
        cached = getattr(self, "_spec_json", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        import json

        body = json.dumps(self.latest_spectrum(), separators=(",", ":")).encode()
        self._spec_json = (key, body)
        return body

    def latest_spectrum(self) -> dict | None:
        snap = self.latest
        if snap is None:
            return None
        spec, res = snap["spectrum"], snap["result"]
        off = spec.meta.get("dbm_offset_db") if spec.unit == "dBm" else None
        floor = None if res is None else res.noise_floor_dbfs
        out = {"freqs_hz": spec.freqs_hz.tolist(), "power": np.round(spec.power.astype(np.float64), 2).tolist(), "unit": spec.unit,
               "rbw_hz": spec.rbw_hz, "center_hz": spec.center_hz, "offset_s": spec.offset_s, "n_looks": spec.n_looks,
               "noise_floor_dbfs": floor,
               "noise_floor_dbm": None if off is None or floor is None or floor != floor else round(floor + float(np.median(off)), 2),
               "emissions": [] if res is None else [
                   {"center_hz": e.center_hz, "bandwidth_hz": e.bandwidth_hz, "peak_dbfs": e.peak_dbfs, "snr_db": e.snr_db,
                    "excess_db": e.excess_db} for e in res.emissions],
               "baseline": None}
        aligned = self.engine._aligned_for(spec.freqs_hz, spec.rbw_hz) if self.engine.baseline is not None else None  # noqa: SLF001
        if aligned is not None:
            def clean(a):
                a = np.asarray(a, dtype=np.float64) + (off if off is not None else 0.0)  # same unit as the spectrum
                a = np.round(a, 2)
                return [None if v != v else v for v in a.tolist()]
            out["baseline"] = {"median_db": clean(aligned.median_db), "p90_db": clean(aligned.p90_db),
                               "p99_db": clean(aligned.p99_db)}
        return out

    def waterfall(self, seconds: float | None = None) -> dict | None:
        """Recent frames on the current grid: ``{"times_s": (n,), "freqs_hz": (m,), "power_db": (n, m)}``
        (frames of another tuning are left out); None before the first frame."""
        rows = list(self._waterfall)
        if not rows:
            return None
        freqs = rows[-1][1]
        rows = [r for r in rows if r[1].size == freqs.size and r[1][0] == freqs[0]]
        if seconds is not None:
            rows = [r for r in rows if r[0] >= rows[-1][0] - seconds]
        return {"times_s": np.array([r[0] for r in rows]), "freqs_hz": freqs,
                "power_db": np.vstack([r[2] for r in rows]).astype(np.float32)}

    def tracks(self) -> list[dict]:
        """The confirmed open tracks as JSON objects (``GET /tracks``)."""
        return [ev.to_json() for ev in self.engine.open_tracks()]
