"""The capture loop survives failing, stalling and repeating sources (watchdog, reopen, health)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from detector.detection.engine import DetectionEngine, EngineConfig
from detector.pipeline import Monitor
from detector.sim import awgn, gate, nfm
from detector.sources import IQSource, SourceInfo
from detector.core.types import IQBlock
from tests._helpers import recording_of as _recording_of

FS = 250e3
CENTER = 446.05e6


class FaultySource(IQSource):
    """A live-like source of noise with a burst; failure switches: raise, stall, repeat."""

    readable = True

    def __init__(self, mode: str, shared: dict) -> None:
        self.mode = mode
        self.shared = shared
        self.info = SourceInfo(kind="fake", name=f"fake-{mode}", center_hz=CENTER, sample_rate_hz=FS, n_samples=None)
        self.rng = np.random.default_rng(shared.setdefault("opens", 0))
        shared["opens"] += 1

    def _read_block(self, n):
        self.shared.setdefault("sizes", set()).add(n)
        k = self.shared.setdefault("reads", 0)
        self.shared["reads"] = k + 1
        broken = self.shared.get("broken", False)
        if broken and self.mode == "raise":
            raise OSError("LIBUSB_ERROR_NO_DEVICE")
        if broken and self.mode == "stall":
            self.shared["stall"].wait()
        if broken and self.mode == "repeat":
            return self.shared.setdefault("same", IQBlock(awgn(n, -30.0, np.random.default_rng(9)), CENTER, FS, offset_s=0.0))
        x = awgn(n, -30.0, self.rng)
        b = IQBlock(x, CENTER, FS, offset_s=self.shared.get("t", 0.0))
        self.shared["t"] = self.shared.get("t", 0.0) + n / FS
        time.sleep(n / FS / 20)  # 20× real time: a paced source
        return b


def recording_of(x: np.ndarray):
    """A finite source class (a recording) of the samples ``x`` at this module's center and rate."""
    return _recording_of(x, FS, CENTER)


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["raise", "stall", "repeat"])
def test_degraded_within_5s_and_recovers(mode):
    shared = {"stall": threading.Event()}
    mon = Monitor(lambda: FaultySource(mode, shared), DetectionEngine(EngineConfig()), realtime=True,
                  watchdog_s=1.0, block_samples=1 << 14).start()
    try:
        assert wait_for(lambda: mon.health()["frames_processed"] > 20, 10)
        assert mon.health()["status"] == "ok"
        shared["broken"] = True
        t0 = time.monotonic()
        assert wait_for(lambda: mon.health()["status"] == "degraded", 5.0), mon.health()
        assert time.monotonic() - t0 <= 5.0
        frames_at_fault = mon.health()["frames_processed"]
        if mode == "repeat":
            time.sleep(0.5)
            # the repeated buffer is not processed: no frames (and so no alert) come from it
            assert mon.health()["frames_processed"] - frames_at_fault <= 200
            assert mon.health()["repeated_blocks"] >= 2
        shared["broken"] = False
        shared["stall"].set()
        assert wait_for(lambda: mon.health()["status"] == "ok", 15.0), mon.health()
        assert wait_for(lambda: mon.health()["frames_processed"] > frames_at_fault + 50, 10)
        if mode in ("raise", "stall"):
            assert mon.health()["reopen_count"] >= 1
    finally:
        shared["stall"].set()
        mon.stop()
    alerts = [t for t in mon.engine.all_tracks.values() if t.alert]
    assert alerts == []


def test_slow_consumer_drops_and_counts_frames_without_blocking_capture():
    shared = {"stall": threading.Event()}

    class SlowEngine(DetectionEngine):
        def process_block(self, block):
            time.sleep(0.05 * block.samples.size / (1 << 14))  # far slower than the source, at any block size
            return super().process_block(block)

    mon = Monitor(lambda: FaultySource("none", shared), SlowEngine(EngineConfig()), realtime=True,
                  watchdog_s=2.0, block_samples=1 << 14, queue_blocks=4).start()
    try:
        assert wait_for(lambda: mon.health()["blocks_dropped"] > 5, 10), mon.health()
        h = mon.health()
        assert h["frames_dropped"] > 0 and h["status"] == "ok"
        assert h["blocks_read"] > h["blocks_dropped"]
        assert shared["sizes"] == {1 << 14, 1 << 19}  # behind: the source is read in larger blocks
    finally:
        mon.stop()


def test_finite_source_finishes_and_stops_cleanly():
    rng = np.random.default_rng(1)
    n = int(2 * FS)
    x = awgn(n, -30.0, rng) + gate(nfm(n, FS, 20e3, -30.0, rng), FS, [(0.5, 1.5)])

    Recording = recording_of(x)

    seen = []
    mon = Monitor(Recording, DetectionEngine(EngineConfig()), block_samples=1 << 14)
    mon.on_alert.append(lambda ev, alert: seen.append(ev))
    mon.start()
    assert mon.finished.wait(20)
    assert mon.health()["source_state"] == "finished"
    assert seen and abs(seen[0].center_hz - CENTER - 20e3) < 2e3
    mon.stop()


def test_health_over_http_turns_degraded_and_back(tmp_path):
    from fastapi.testclient import TestClient

    from detector.alerts import open_store
    from detector.api import ApiContext, create_app

    shared = {"stall": threading.Event()}
    store = open_store(None, data_dir=tmp_path)
    mon = Monitor(lambda: FaultySource("raise", shared), DetectionEngine(EngineConfig()), store=store, realtime=True,
                  watchdog_s=1.0, block_samples=1 << 14).start()
    client = TestClient(create_app(ApiContext(store=store, token="t", monitor=mon)))
    try:
        assert wait_for(lambda: client.get("/api/v1/health").json()["frames_processed"] > 20, 10)
        assert client.get("/api/v1/health").json()["status"] == "ok"
        shared["broken"] = True
        t0 = time.monotonic()
        assert wait_for(lambda: client.get("/api/v1/health").json()["status"] == "degraded", 5.0)
        body = client.get("/api/v1/health").json()
        assert time.monotonic() - t0 <= 5.0 and "LIBUSB_ERROR_NO_DEVICE" in body["last_error"]
        assert client.get("/api/v1/health").status_code == 200
        shared["broken"] = False
        assert wait_for(lambda: client.get("/api/v1/health").json()["status"] == "ok", 15.0)
        metrics = client.get("/metrics").text
        assert "examwatch_reopen_count" in metrics
    finally:
        mon.stop()
        store.close()


@pytest.mark.parametrize("coalesce", [0, 1 << 17])
def test_queued_blocks_are_processed_as_one_with_the_same_frames(coalesce):
    """A loop behind its source joins the queued contiguous blocks: the same frames, the same
    alert, fewer processing calls."""
    rng = np.random.default_rng(5)
    n = int(3 * FS)
    x = awgn(n, -30.0, rng) + gate(nfm(n, FS, -40e3, -30.0, rng), FS, [(1.0, 2.0)])
    gate_open = threading.Event()

    Recording = recording_of(x)

    class HeldEngine(DetectionEngine):
        calls = 0

        def process_block(self, block):
            gate_open.wait(10)  # the first block waits until the queue is full
            HeldEngine.calls += 1
            return super().process_block(block)

    seen = []
    mon = Monitor(Recording, HeldEngine(EngineConfig()), block_samples=1 << 13, queue_blocks=64, coalesce_samples=coalesce)
    mon.on_alert.append(lambda ev, alert: seen.append(ev))
    mon.start()
    assert wait_for(lambda: mon._q.full(), 10)  # noqa: SLF001
    gate_open.set()
    assert mon.finished.wait(30)
    mon.stop()
    h = mon.health()
    spf_samples = mon.engine._stream.advance  # noqa: SLF001
    assert h["frames_processed"] == n // spf_samples
    assert seen and abs(seen[0].center_hz - CENTER + 40e3) < 2e3
    blocks = -(-n // (1 << 13))
    if coalesce:
        assert h["blocks_coalesced"] > 0 and HeldEngine.calls == blocks - h["blocks_coalesced"]
    else:
        assert h["blocks_coalesced"] == 0 and HeldEngine.calls == blocks
