"""Capture and watchdog, stage by stage, with fake sources and a fake clock."""

from __future__ import annotations

import queue
import threading

import numpy as np

from detector.core.types import IQBlock, Position
from detector.pipeline._threads import END
from detector.pipeline.capture import Capture, Watchdog, block_digest
from detector.pipeline.status import MonitorState, MonitorStatus
from detector.sources import IQSource, SourceInfo

FS = 250e3
CENTER = 446e6


class Scripted(IQSource):
    """A source read on demand that plays a script: an int n (n distinct samples), "raise",
    "same" (the same buffer again), then ends."""

    readable = True
    tunable = True

    def __init__(self, script, log):
        self.script = list(script)
        self.log = log
        self.info = SourceInfo(kind="fake", name="scripted", center_hz=CENTER, sample_rate_hz=FS)
        self.t = 0.0
        self.same = None

    def _exhausted(self):
        return not self.script

    def tune(self, center_hz):
        self.log.append(("tune", center_hz))

    def _read_block(self, n):
        step = self.script.pop(0)
        self.log.append(("read", n))
        if step == "raise":
            raise OSError("LIBUSB_ERROR_NO_DEVICE")
        if step == "same":
            self.same = self.same or IQBlock(np.ones(n, np.complex64), CENTER, FS, offset_s=0.0)
            return self.same
        x = np.random.default_rng(len(self.log)).standard_normal(n).astype(np.complex64)
        b = IQBlock(x, CENTER, FS, offset_s=self.t)
        self.t += n / FS
        return b


def make(factory, *, realtime=False, qsize=16, positions=None, block=1 << 10, coalesce=0, scheduler=None):
    q: queue.Queue = queue.Queue(maxsize=qsize)
    st = MonitorStatus()
    threads: list = []
    cap = Capture(factory, q, st, threading.Event(), frames_of=lambda n: n // 256, threads=threads, realtime=realtime,
                  block_samples=block, coalesce_samples=coalesce, worker_nice=0, clock=lambda: 0.0,
                  positions=positions, scheduler=scheduler)
    return cap, q, st, threads


def drain(q):
    out = []
    while True:
        item = q.get(timeout=10)
        if item is END:
            return out
        out.append(item)


def test_blocks_flow_then_the_source_finishes():
    log = []
    cap, q, st, threads = make(lambda: Scripted([1024, 1024, 1024], log))
    cap.spawn()
    blocks = drain(q)
    threads[0].join(5)
    assert [b.samples.size for b in blocks] == [1024] * 3
    assert st.source_state is MonitorState.FINISHED and st.as_dict()["source_state"] == "finished"
    assert st.blocks_read == 3 and st.status == "ok" and st.source == "scripted"


def test_a_failing_read_is_reported_and_the_source_reopened():
    log, opened = [], []

    def factory():
        opened.append(1)
        return Scripted(["raise"] if len(opened) == 1 else [1024, 1024], log)

    cap, q, st, threads = make(factory)
    cap.backoff = 0.01
    cap.spawn()
    blocks = drain(q)
    assert len(opened) == 2 and st.reopen_count == 1 and len(blocks) == 2
    assert st.status == "ok" and st.last_error is None  # recovered when blocks flowed again


def test_a_repeated_buffer_degrades_and_is_not_queued():
    log = []
    cap, q, st, threads = make(lambda: Scripted([1024, "same", "same", "same"], log))
    cap.spawn()
    blocks = drain(q)
    assert len(blocks) == 2  # the first block and the first "same"; the repeats are dropped
    assert st.repeated_blocks == 2 and st.status == "degraded" and "repeats the same buffer" in st.last_error


def test_realtime_drops_and_counts_when_the_queue_is_full():
    log = []
    cap, q, st, threads = make(lambda: Scripted([1024] * 5, log), realtime=True, qsize=2)
    cap.spawn()
    threads[0].join(5)
    assert st.blocks_dropped == 3 and st.frames_dropped == 3 * (1024 // 256) and q.qsize() == 2


def test_behind_a_readable_source_is_read_in_larger_blocks():
    log = []
    cap, q, st, threads = make(lambda: Scripted([1] * 4, log), block=1 << 10, coalesce=1 << 12)
    cap.spawn()
    threads[0].join(5)
    sizes = [n for k, n in log if k == "read"]
    assert sizes == [1 << 10, 1 << 10, 1 << 12, 1 << 12]  # two blocks waiting: the stacks get larger


def test_blocks_without_a_position_get_the_providers():
    log = []
    cap, q, st, threads = make(lambda: Scripted([1024, 1024], log), positions=lambda b: Position(50.0, 10.0))
    cap.spawn()
    assert [b.position for b in drain(q)] == [Position(50.0, 10.0)] * 2


def test_a_tunable_source_hops_through_the_plan():
    from detector.config.plan import Scheduler, default_plan

    log = []
    sch = Scheduler(default_plan(), 2.4e6)
    assert not sch.single
    cap, q, st, threads = make(lambda: Scripted([1024] * 3, log), scheduler=sch)
    cap.spawn()
    drain(q)
    tunes = [c for k, c in log if k == "tune"]
    assert len(tunes) >= 1 and all(c in [h.center_hz for h in sch.hops] for c in tunes)


def test_the_watchdog_reopens_a_silent_source():
    now = [0.0]
    st = MonitorStatus()
    spawned = []

    class FakeCapture:
        def spawn(self):
            spawned.append(now[0])

    dog = Watchdog(FakeCapture(), st, threading.Event(), watchdog_s=5.0, clock=lambda: now[0])
    st.last_block_monotonic = 0.0
    now[0] = 4.0
    assert not dog.check() and st.status == "ok"
    now[0] = 6.0
    assert dog.check() and spawned == [6.0]
    assert st.status == "degraded" and st.source_state is MonitorState.REOPENING and st.reopen_count == 1
    assert "no samples for 6.0 s" in st.last_error
    st.source_state = MonitorState.FINISHED
    now[0] = 100.0
    assert not dog.check()  # a finished source is not watched


def test_digest_tells_buffers_apart():
    a = np.arange(10000, dtype=np.complex64)
    assert block_digest(a) == block_digest(a.copy()) and block_digest(a) != block_digest(a[:-1])


def test_retunes_are_counted_in_the_status():
    from detector.config.plan import Scheduler, default_plan

    log = []
    sch = Scheduler(default_plan(), 2.4e6)
    cap, q, st, threads = make(lambda: Scripted([1024] * 4, log), scheduler=sch)
    cap.spawn()
    drain(q)
    tunes = [c for k, c in log if k == "tune"]
    assert st.retunes == len(tunes) >= 1
    assert st.as_dict()["retunes"] == st.retunes


class NanBursts(Scripted):
    """Blocks of 1024 samples, the second with a burst of 37 NaN and one ±inf sample."""

    def _read_block(self, n):
        b = super()._read_block(n)
        if sum(1 for k, _ in self.log if k == "read") == 2:
            b.samples[100:137] = np.nan
            b.samples[500] = complex(0, np.inf)
        return b


def test_nonfinite_samples_are_counted_in_the_status():
    log = []
    cap, q, st, threads = make(lambda: NanBursts([1024] * 3, log))
    cap.spawn()
    blocks = drain(q)
    assert len(blocks) == 3
    assert st.nonfinite_samples == 38 and st.as_dict()["nonfinite_samples"] == 38
