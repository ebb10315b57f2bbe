"""The capture's dwell log and ``/health`` → ``intercept`` (issue #19)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from detector.app.monitor_app import attach_intercept
from detector.config.plan import Band, Scheduler, WatchPlan
from detector.core.types import IQBlock
from tests.pipeline.test_capture import FS, Scripted, drain, make


class Hopping(Scripted):
    """Blocks at the center it was tuned to."""

    center = 446.1e6

    def tune(self, center_hz):
        super().tune(center_hz)
        self.center = center_hz

    def _read_block(self, n):
        b = super()._read_block(n)
        return IQBlock(b.samples, self.center, FS, offset_s=b.offset_s)


def test_the_capture_logs_the_windows_it_observed_and_health_reports_the_catch_rate():
    plan = WatchPlan(band=[Band(name="A", start_hz=446.0e6, stop_hz=446.2e6, priority=2, dwell_s=0.01, revisit_s=1.0),
                           Band(name="B", start_hz=433.8e6, stop_hz=434.0e6, priority=1, dwell_s=0.01, revisit_s=1.0)])
    sch = Scheduler(plan, FS)
    log = []
    cap, q, st, threads = make(lambda: Hopping([1024] * 40, log), scheduler=sch)
    ticks = itertools.count()
    cap.clock = lambda: 0.004 * next(ticks)  # a dwell of 0.01 s lasts a few blocks
    monitor = SimpleNamespace(capture=cap, health_sections={})
    attach_intercept(monitor, sch)
    cap.spawn()
    drain(q)
    dwells = cap.dwell_log.dwells()
    assert len(dwells) >= 4 and {d.center_hz for d in dwells} == {h.center_hz for h in sch.hops}
    assert sum(d.end_s - d.start_s for d in dwells) == pytest.approx(40 * 1024 / FS)  # every queued block, once
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(dwells, dwells[1:]))
    h = monitor.health_sections["intercept"]()
    assert {"burst_s", "min_on_s", "log_s", "dwells", "receivers", "bands"} <= set(h)
    a = next(b for b in h["bands"] if b["name"] == "A")
    assert {"p_burst_nominal", "p_burst_achieved", "revisit_nominal_s", "revisit_achieved_s", "revisit_s", "dwells"} <= set(a)
    assert a["dwells"] >= 2 and a["revisit_achieved_s"] is not None


def test_a_monitor_whose_plan_hops_reports_intercept_in_health():
    from detector.app.monitor_app import MonitorApp

    plan = WatchPlan(band=[Band(name="A", start_hz=446.0e6, stop_hz=446.2e6, priority=2, dwell_s=0.001, revisit_s=1.0),
                           Band(name="B", start_hz=433.8e6, stop_hz=434.0e6, priority=1, dwell_s=0.001, revisit_s=1.0)])
    sch = Scheduler(plan, FS)
    app = MonitorApp.build(None, source_factory=lambda: Hopping([1 << 14] * 12, []), site="S", scheduler=sch)
    try:
        app.start()
        assert app.monitor.finished.wait(30)
        h = app.monitor.health()
    finally:
        app.stop()
    ic = h["intercept"]
    assert [b["name"] for b in ic["bands"]] == ["A", "B"] and ic["dwells"] >= 2
    assert sum(b["dwells"] for b in ic["bands"]) == ic["dwells"] and h["retunes"] >= 2
    # a dwell plan (one hop) keeps no log and reports no intercept
    one = MonitorApp.build(None, source_factory=lambda: Hopping([1 << 14] * 2, []), site="S",
                           scheduler=Scheduler(WatchPlan(band=[plan.bands[0]]), FS))
    try:
        assert "intercept" not in one.monitor.health() and one.monitor.capture.dwell_log is None
    finally:
        one.stop()
