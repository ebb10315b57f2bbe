"""Supervised workers (issue 24): a worker that raises is restarted, a stalled one is reported,
both within 5 s in ``/health`` (``Monitor.health()``), then ok again."""

from __future__ import annotations

import threading
import time

from detector.pipeline import Monitor
from detector.pipeline.supervisor import Supervisor
from tests.pipeline._faults import PacedSource, ScriptedEngine, wait_for


def test_a_raising_thread_is_restarted_with_backoff_and_logged_once(caplog):
    sup = Supervisor(check_s=0.05)
    calls = []

    def work():
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise ValueError("boom")
        sup.components["w"].beat()

    with caplog.at_level("ERROR", logger="examwatch.monitor"):
        sup.spawn("w", work)
        assert wait_for(lambda: sup.components["w"].state == "finished", 10)
    c = sup.components["w"]
    assert c.restarts == 3 and c.last_error == "ValueError: boom" and c.progress == 1
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert 0.45 <= gaps[0] < 0.9 and 0.95 <= gaps[1] < 1.5 and 1.9 <= gaps[2] < 2.8  # 0.5 s doubling
    assert sum("w failed: ValueError: boom" in r.getMessage() for r in caplog.records) == 1
    sup.stop()


def test_a_stall_is_reported_only_while_input_waits():
    sup = Supervisor(check_s=0.05)
    waiting = {"v": False}
    c = sup.component("p", stall_s=0.3, waiting=lambda: waiting["v"])
    sup.start()
    time.sleep(0.6)
    assert c.state == "running"  # idle without input is no stall
    waiting["v"] = True
    assert wait_for(lambda: c.state == "stalled", 1.0) and "stalled" in c.last_error
    c.beat()
    assert wait_for(lambda: c.state == "running", 1.0)
    sup.stop()


def _monitor(engine, shared, **kw):
    return Monitor(lambda: PacedSource(shared), engine, block_samples=1 << 12, coalesce_samples=0, watchdog_s=2.0,
                   **kw).start()


def test_processing_raising_is_degraded_within_5s_restarted_then_ok():
    eng = ScriptedEngine(every=1000)
    shared: dict = {}
    mon = _monitor(eng, shared)
    try:
        assert wait_for(lambda: mon.health()["frames_processed"] > 20, 10)
        assert mon.health()["status"] == "ok" and mon.health()["components"]["processing"]["state"] == "running"
        # an error outside the engine's own guard: a callback raising kills the loop's step
        boom = {"armed": True}

        def bad(ev):
            if boom.pop("armed", False):
                raise RuntimeError("injected worker fault")

        mon.on_event.append(bad)
        eng.every = 1
        t0 = time.monotonic()
        assert wait_for(lambda: mon.health()["status"] == "degraded", 5.0), mon.health()
        h = mon.health()
        took = time.monotonic() - t0
        assert took < 5.0
        assert h["components"]["processing"]["state"] == "restarting"
        assert h["last_error"].startswith("processing: RuntimeError: injected worker fault")
        assert wait_for(lambda: mon.health()["status"] == "ok", 5.0), mon.health()
        h = mon.health()
        assert h["components"]["processing"]["restarts"] == 1 and h["last_error"] is None
        f = h["frames_processed"]
        assert wait_for(lambda: mon.health()["frames_processed"] > f + 20, 5)
        assert "examwatch-process" in mon.threads_alive()
    finally:
        mon.stop()


def test_stalled_processing_is_degraded_within_5s_then_ok():
    eng = ScriptedEngine(every=1000)
    shared: dict = {}
    mon = _monitor(eng, shared, stall_s=2.0)
    try:
        assert wait_for(lambda: mon.health()["frames_processed"] > 20, 10)
        eng.hold.clear()  # the engine blocks (a native call that does not return)
        t0 = time.monotonic()
        assert wait_for(lambda: mon.health()["status"] == "degraded", 5.0), mon.health()
        assert time.monotonic() - t0 < 5.0
        h = mon.health()
        assert h["components"]["processing"]["state"] == "stalled"
        assert "processing: no progress" in h["last_error"] and h["source_state"] == "running"
        eng.hold.set()
        assert wait_for(lambda: mon.health()["status"] == "ok", 5.0), mon.health()
    finally:
        eng.hold.set()
        mon.stop()


def test_a_stalled_source_is_still_reopened_by_the_watchdog():
    eng = ScriptedEngine(every=1000)
    shared: dict = {"flowing": threading.Event()}
    shared["flowing"].set()
    mon = _monitor(eng, shared)
    try:
        assert wait_for(lambda: mon.health()["frames_processed"] > 20, 10)
        shared["flowing"].clear()
        t0 = time.monotonic()
        assert wait_for(lambda: mon.health()["status"] == "degraded", 5.0)
        assert time.monotonic() - t0 < 5.0 and "stalled source" in mon.health()["last_error"]
        # the processing has no input: it is idle, not stalled
        assert mon.health()["components"]["processing"]["state"] == "running"
        shared["flowing"].set()
        assert wait_for(lambda: mon.health()["status"] == "ok", 10.0), mon.health()
        assert mon.health()["reopen_count"] >= 1
    finally:
        shared["flowing"].set()
        mon.stop()


def test_capture_crash_is_restarted():
    eng = ScriptedEngine(every=1000)
    shared: dict = {}
    calls = {"n": 0}

    def positions(block):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("gps provider broke")
        return None

    mon = Monitor(lambda: PacedSource(shared), eng, block_samples=1 << 12, coalesce_samples=0, watchdog_s=30.0,
                  positions=positions).start()
    try:
        assert wait_for(lambda: mon.health()["components"]["capture"]["restarts"] == 1, 5.0), mon.health()
        assert mon.health()["components"]["capture"]["last_error"] == "RuntimeError: gps provider broke"
        b = mon.health()["blocks_read"]
        assert wait_for(lambda: mon.health()["blocks_read"] > b + 20, 5.0)
        assert mon.health()["status"] == "ok"
    finally:
        mon.stop()
