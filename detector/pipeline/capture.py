"""Capture: read blocks from the source into the bounded queue, with a watchdog.

* :class:`Capture` opens the source (and reopens it with exponential backoff, 0.5 s doubling to
  10 s), hops a tunable source through the watch plan, gives blocks without a position the
  receiver's (a :data:`PositionProvider`), counts the retunes (``retunes``) and the NaN/inf
  samples (``nonfinite_samples``), recognises a source that returns the same buffer again
  and again, and puts blocks on the queue: a real-time source is never blocked by a slow consumer
  (a full queue drops the block and counts it), a source that runs as fast as the CPU allows waits.
* :class:`Watchdog` marks a source silent for ``watchdog_s`` degraded and starts a fresh capture
  thread (the stuck one is abandoned; it exits when its read returns).

Each capture thread has a *generation*; a thread whose generation is no longer current stops.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from dataclasses import replace
from typing import Callable

import numpy as np

from detector.config.plan import Scheduler
from detector.core.errors import SourceEnded
from detector.core.types import IQBlock, Position
from detector.dsp import count_nonfinite
from detector.pipeline._threads import END, lower_priority
from detector.pipeline.status import MonitorState, MonitorStatus
from detector.sources import IQSource, as_source

__all__ = ["Capture", "Watchdog", "PositionProvider", "block_digest"]

#: the receiver's position for a block that carries none (None: unknown)
PositionProvider = Callable[[IQBlock], "Position | None"]


def block_digest(x: np.ndarray) -> bytes:
    """A cheap fingerprint of a block: its length and 3 slices of 4 kB."""
    b = x.view(np.uint8)
    n = b.size
    parts = [b[:4096], b[n // 2:n // 2 + 4096], b[-4096:]] if n > 12288 else [b]
    h = hashlib.blake2b(digest_size=16)
    h.update(n.to_bytes(8, "little"))
    for p in parts:
        h.update(p.tobytes())
    return h.digest()


class Capture:
    """The capture side of the monitor (see the module docstring).

    Parameters
    ----------
    source_factory : callable
        Returns a fresh source (an :class:`~detector.sources.IQSource`; other objects with
        ``info``/``blocks``/``close`` are adapted), called at start and on every reopen.
    out : queue.Queue
        The capture → processing queue.
    status : MonitorStatus
    stop : threading.Event
        Set when the monitor stops.
    frames_of : callable
        Frames in a block of that many samples (for ``frames_dropped``).
    threads : list
        Where the capture threads are recorded (the monitor's list).
    """

    def __init__(self, source_factory: Callable[[], object], out: queue.Queue, status: MonitorStatus, stop: threading.Event,
                 *, frames_of: Callable[[int], int], threads: list, scheduler: Scheduler | None = None,
                 realtime: bool = False, block_samples: int = 1 << 16, coalesce_samples: int = 1 << 19,
                 repeat_limit: int = 3, worker_nice: int = 5, clock: Callable[[], float],
                 positions: PositionProvider | None = None, receiver_index: int = 0) -> None:
        self.source_factory = source_factory
        self.out = out
        self.status = status
        self.stop_event = stop
        self.frames_of = frames_of
        self.threads = threads
        self.scheduler = scheduler
        self.realtime = realtime
        self.block_samples = block_samples
        self.coalesce_samples = coalesce_samples
        self.repeat_limit = repeat_limit
        self.worker_nice = worker_nice
        self.clock = clock
        self.positions = positions
        self.backoff = 0.5
        #: the windows actually observed, for the catch rate of ``/health`` → ``intercept`` (issue #19;
        #: a :class:`~detector.config.dwell_log.DwellLog` set by the composition, None: not kept)
        self.dwell_log = None
        #: this receiver in the dwell log (a monitor with several receivers shares one log)
        self.receiver_index = receiver_index
        #: the dwell log's time of a block: its ``offset_s`` (the source's sample clock; a
        #: simulated site's scene time) when None, else this callable of the block (the monotonic
        #: clock at its arrival, for dongles, whose sample clocks start at each open)
        self.dwell_time: Callable[[IQBlock], float] | None = None
        self._lock = threading.Lock()
        self._generation = 0

    # ---- generations ------------------------------------------------------------------------------
    def spawn(self) -> threading.Thread:
        """Start a capture thread of a new generation (the previous one stops at its next step)."""
        gen = self.retire()
        t = threading.Thread(target=self._run, args=(gen,), name=f"examwatch-capture-{gen}", daemon=True)
        t.start()
        self.threads.append(t)
        return t

    def retire(self) -> int:
        """Make the running capture thread stale; returns the new generation."""
        with self._lock:
            self._generation += 1
            return self._generation

    #: called with the exception when a capture thread dies of an unexpected error (the monitor's
    #: supervisor: it is reported, and a fresh capture thread started after a backoff)
    on_crash: Callable[[BaseException], None] | None = None

    def _run(self, gen: int) -> None:
        try:
            self._loop(gen)
        except Exception as exc:
            if self.on_crash is None or not self._current(gen):
                raise
            self.on_crash(exc)

    def _current(self, gen: int) -> bool:
        return not self.stop_event.is_set() and gen == self._generation

    def _wait_backoff(self) -> None:
        self.stop_event.wait(self.backoff)
        self.backoff = min(self.backoff * 2, 10.0)

    # ---- the loop ---------------------------------------------------------------------------------
    def _open(self, gen: int) -> IQSource | None:
        while self._current(gen):
            try:
                src = as_source(self.source_factory())
                self.status.source = src.info.name
                return src
            except Exception as exc:  # noqa: BLE001 - any failure to open is reported and retried
                self.status.degrade(f"cannot open the source: {exc}")
                self.status.source_state = MonitorState.REOPENING
                self._wait_backoff()
        return None

    def _hop(self, src: IQSource, hop_until: float) -> float:
        """Retune a tunable source to the plan's next hop when its dwell is over."""
        sch = self.scheduler
        if sch is not None and sch.single and src.tunable and hop_until < 0:
            # one hop (a receiver of several that stares at its own span): tuned there once, at open
            hop = sch.hops[0]
            if abs(src.info.center_hz - hop.center_hz) > 1.0:
                src.tune(hop.center_hz)
                self.status.retunes += 1
            return 0.0
        if sch is None or sch.single or not src.tunable or self.clock() < hop_until:
            return hop_until
        hop = sch.next_hop(self.clock())
        src.tune(hop.center_hz)
        self.status.retunes += 1
        return self.clock() + sch.dwell_for(hop, self.clock())

    def _read(self, src: IQSource) -> IQBlock:
        """The next block; raises SourceEnded at the end of a finite source."""
        if src.ended:
            raise SourceEnded(src.info.name)
        # behind (blocks waiting): read larger blocks, so that the processing gets its stacks of
        # coalesce_samples without joining (copying) small ones
        behind = src.readable and self.coalesce_samples > self.block_samples and self.out.qsize() >= 2
        return src.read(self.coalesce_samples if behind else self.block_samples)

    def _finish(self) -> None:
        st = self.status
        st.source_state = MonitorState.FINISHED
        if st.status == "degraded" and st.last_error and "repeats" not in st.last_error:
            st.status = "ok"
        self.out.put(END)

    def _loop(self, gen: int) -> None:
        lower_priority(self.worker_nice)
        src: IQSource | None = None
        last_digest, repeats = None, 0
        hop_until = -1.0
        while self._current(gen):
            if src is None:
                src = self._open(gen)
                if src is None:
                    return
                hop_until = -1.0
                self.status.last_block_monotonic = self.clock()
            try:
                hop_until = self._hop(src, hop_until)
                block = self._read(src)
            except SourceEnded:
                self._finish()
                return
            except Exception as exc:  # noqa: BLE001 - a failing source is reported, reopened, never fatal
                self.status.degrade(f"source read failed: {exc}")
                try:
                    src.close()
                except Exception:  # noqa: BLE001
                    pass
                src = None
                self._wait_backoff()
                self.status.reopen_count += 1
                continue
            if gen != self._generation:  # a stalled read came back after the watchdog gave up on it
                return
            st = self.status
            st.last_block_monotonic = self.clock()
            st.blocks_read += 1
            st.nonfinite_samples += count_nonfinite(block.samples)
            d = block_digest(block.samples)
            if d == last_digest:
                repeats += 1
                st.repeated_blocks += 1
                if repeats >= self.repeat_limit - 1:
                    st.degrade(f"the source repeats the same buffer ({repeats + 1} times); its data is ignored")
                continue
            last_digest, repeats = d, 0
            st.recovered()
            self.backoff = 0.5
            st.center_hz = block.center_hz
            st.sample_rate_hz = block.sample_rate_hz
            if self._put(self._with_position(block)) and self.dwell_log is not None:
                dur = block.samples.size / block.sample_rate_hz
                t = block.offset_s if self.dwell_time is None else self.dwell_time(block)
                self.dwell_log.add_block(block.center_hz, t, dur, self.receiver_index)

    def _with_position(self, block: IQBlock) -> IQBlock:
        if block.position is None and self.positions is not None:
            pos = self.positions(block)
            if pos is not None:
                return replace(block, position=pos)
        return block

    def _put(self, block: IQBlock) -> bool:
        """Queue the block; False when it was dropped (or the monitor stopped)."""
        if self.realtime:
            try:
                self.out.put_nowait(block)
            except queue.Full:
                self.status.blocks_dropped += 1
                self.status.frames_dropped += max(1, self.frames_of(block.samples.size))
                return False
            return True
        while not self.stop_event.is_set():
            try:
                self.out.put(block, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False


class Watchdog:
    """Reopens a source silent for ``watchdog_s`` (see the module docstring)."""

    def __init__(self, capture: Capture, status: MonitorStatus, stop: threading.Event, *, watchdog_s: float,
                 clock: Callable[[], float]) -> None:
        self.capture = capture
        self.status = status
        self.stop_event = stop
        self.watchdog_s = watchdog_s
        self.clock = clock

    def check(self) -> bool:
        """One look; True when the source was found stalled (and a fresh capture started)."""
        st = self.status
        if st.source_state in (MonitorState.FINISHED, MonitorState.STOPPED):
            return False
        last = st.last_block_monotonic
        if last is None or self.clock() - last <= self.watchdog_s:
            return False
        st.degrade(f"no samples for {self.clock() - last:.1f} s (stalled source)")
        st.source_state = MonitorState.REOPENING
        st.reopen_count += 1
        st.last_block_monotonic = self.clock()
        self.capture.spawn()  # the stuck thread is abandoned; it exits when its read returns
        return True

    def run(self) -> None:
        while not self.stop_event.wait(min(0.5, self.watchdog_s / 4)):
            self.check()
