"""Processing, stage by stage: coalescing, the store first, resumed alerts, failures."""

from __future__ import annotations

from dataclasses import replace

import queue

import numpy as np

from detector.core.types import IQBlock
from detector.pipeline._threads import END
from detector.pipeline.live import LiveView
from detector.pipeline.processing import Processing, contiguous
from detector.pipeline.status import MonitorStatus
from detector.detection.events import event_from_json
from tests.push import track_event as track_json


def track_event(*a, **kw):
    """A typed alerting track event (the engine's output)."""
    return event_from_json(track_json(*a, **kw))

FS = 1e3


def blk(offset_s, n=100, *, center=1e6, retuned=False):
    return IQBlock(np.full(n, offset_s + 1, np.complex64), center, FS, offset_s=offset_s, retuned=retuned)


class FakeEngine:
    """Records the blocks it gets; returns the scripted events of each call."""

    last_spectrum = None
    baseline = None

    def __init__(self, script=(), fail_at=()):
        self.script = list(script)
        self.fail_at = set(fail_at)
        self.sizes: list[int] = []
        self.frames_processed = 0

    def process_block(self, block):
        k = len(self.sizes)
        self.sizes.append(block.samples.size)
        if k in self.fail_at:
            raise ValueError("the baseline does not fit this grid")
        self.frames_processed += block.samples.size // 10
        return self.script.pop(0) if self.script else []

    def finish(self):
        return []


class FakeStore:
    def __init__(self, log):
        self.log = log
        self.alerts = {}

    def apply(self, ev, *, site, run_id, resume, **kw):
        self.log.append(("store", ev.track_id))
        aid = "A-" + ev.track_id if ev.track_id != "T9" else "OLD"
        a = self.alerts.get(aid) or type("Alert", (), {"id": aid, "evidence": ["x"] if aid == "OLD" else [], "version": 0})()
        a.version += 1
        self.alerts[aid] = a
        return a

    def get(self, aid):
        return self.alerts[aid]


def run(engine, items, **kw):
    q: queue.Queue = queue.Queue()
    for it in items:
        q.put(it)
    q.put(END)
    st = MonitorStatus()
    p = Processing(engine, q, st, live=LiveView(engine), evidence=None, clock=lambda: 0.0, worker_nice=0, **kw)
    p.run()
    return p, st


def test_contiguous_blocks_waiting_are_processed_as_one():
    eng = FakeEngine()
    items = [blk(0.0), blk(0.1), blk(0.2), blk(0.3, retuned=True), blk(0.4), blk(0.6)]  # a retune, then a gap
    p, st = run(eng, items, coalesce_samples=1000)
    assert eng.sizes == [300, 200, 100]
    assert st.blocks_coalesced == 3 and st.frames_processed == 60


def test_coalescing_stops_at_its_size_and_can_be_off():
    eng = FakeEngine()
    run(eng, [blk(i * 0.1) for i in range(5)], coalesce_samples=200)
    assert eng.sizes == [200, 200, 100]
    eng = FakeEngine()
    _, st = run(eng, [blk(i * 0.1) for i in range(3)], coalesce_samples=0)
    assert eng.sizes == [100, 100, 100] and st.blocks_coalesced == 0


def test_contiguous():
    assert contiguous(blk(0.0), blk(0.1)) and not contiguous(blk(0.0), blk(0.2))
    assert not contiguous(blk(0.0), blk(0.1, center=2e6)) and not contiguous(blk(0.0), blk(0.1, retuned=True))


def test_alerts_are_stored_before_anyone_is_told_and_counted():
    log = []
    ev1 = track_event("T1", 1.0, snr=20.0, center_hz=1e6)
    quiet = replace(ev1, alert=False, track_id="T2")
    eng = FakeEngine(script=[[ev1, quiet], [replace(ev1, last_seen_s=2.0)]])
    store = FakeStore(log)
    q: queue.Queue = queue.Queue()
    st = MonitorStatus()
    p = Processing(eng, q, st, live=LiveView(eng), evidence=None, store=store, clock=lambda: 0.0, worker_nice=0,
                   coalesce_samples=0)
    p.on_event.append(lambda ev: log.append(("event", ev.track_id)))
    p.on_alert.append(lambda ev, alert: log.append(("alert", alert.id, alert.version)))
    for b in (blk(0.0), blk(0.1)):
        q.put(b)
    q.put(END)
    p.run()
    assert log == [("event", "T1"), ("store", "T1"), ("alert", "A-T1", 1), ("event", "T2"),
                   ("event", "T1"), ("store", "T1"), ("alert", "A-T1", 2)]
    assert st.alerts_stored == 2 and st.alerts_raised == 1


def test_an_alert_of_an_earlier_run_is_continued_once():
    log = []
    ev = track_event("T9", 1.0, snr=20.0, center_hz=1e6)
    eng = FakeEngine(script=[[ev], [ev]])
    p, st = run(eng, [blk(0.0), blk(0.5)], store=FakeStore(log), coalesce_samples=0, resume=["OLD"])
    assert p.alerts.resumable == set() and p.alerts.raised == {"OLD"} and st.alerts_raised == 1


def test_a_failing_step_degrades_and_the_loop_goes_on():
    eng = FakeEngine(fail_at={0})
    p, st = run(eng, [blk(0.0), blk(0.5)], coalesce_samples=0)
    assert eng.sizes == [100, 100] and st.status == "degraded"
    assert st.last_error == "processing failed: the baseline does not fit this grid"
    assert st.frames_processed == 10 and st.scene_time_s == 0.6


def test_an_alert_extends_the_dwell_of_a_hopping_plan():
    from detector.config.plan import Scheduler, default_plan

    extended = []

    class Spy(Scheduler):
        def extend(self, center_hz, until):
            extended.append((center_hz, until))

    sch = Spy(default_plan(), 2.4e6)
    eng = FakeEngine(script=[[track_event("T1", 1.0, snr=20.0, center_hz=446.05e6)]])
    run(eng, [blk(0.0)], coalesce_samples=0, scheduler=sch)
    assert extended == [(446.05e6, 30.0)]


def test_the_frames_the_engine_left_out_reach_the_status():
    from detector.detection.engine import DetectionEngine

    eng = DetectionEngine()
    x = (np.random.default_rng(1).standard_normal(50_000) * 0.01).astype(np.complex64)
    x[10_000:12_000] = np.nan  # inside frames 3 and 4 (frames start every 2560 samples, span 2688)
    _, st = run(eng, [IQBlock(x, 446e6, 250e3, offset_s=0.0, retuned=True)], coalesce_samples=0)
    assert (eng.frames_excluded, eng.frames_processed) == (2, 17) and st.frames_excluded == 2
    assert st.as_dict()["frames_excluded"] == eng.frames_excluded and st.frames_processed == eng.frames_processed
