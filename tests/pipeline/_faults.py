"""Helpers of the fault-injection tests (issue 24): a paced live-like source, a scripted engine
whose alerts are known in advance, and a wait."""

from __future__ import annotations

import threading
import time

import numpy as np

from detector.core.types import IQBlock
from detector.detection.engine import DetectionEngine, EngineConfig
from detector.detection.events import event_from_json
from detector.sources import IQSource, SourceInfo
from tests.push import track_event as track_json

FS = 250e3
CENTER = 446.05e6
BS = 1 << 12


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


class PacedSource(IQSource):
    """Noise blocks of ``BS`` samples, one every ``pace_s`` (a live source); ``stall`` (an Event,
    cleared = stalled) holds the reads."""

    readable = True

    def __init__(self, shared: dict, pace_s: float = 0.005) -> None:
        self.shared = shared
        self.pace_s = pace_s
        self.info = SourceInfo(kind="fake", name="paced", center_hz=CENTER, sample_rate_hz=FS, n_samples=None)
        self.rng = np.random.default_rng(shared.setdefault("opens", 0))
        shared["opens"] += 1

    def _read_block(self, n):
        gate = self.shared.get("flowing")
        if gate is not None:
            gate.wait()
        t = self.shared.get("t", 0.0)
        self.shared["t"] = t + BS / FS
        time.sleep(self.pace_s)
        x = (self.rng.standard_normal(BS) + 1j * self.rng.standard_normal(BS)).astype(np.complex64) * 1e-3
        return IQBlock(x, CENTER, FS, offset_s=t)


class ScriptedEngine(DetectionEngine):
    """Frames are counted as the real engine would; every ``every``-th block emits an alerting
    update of track ``T{k % tracks}`` (a later ``last_seen_s`` each time, so each one is a new
    version). ``emitted`` records them; ``hold`` (an Event, cleared = blocked) blocks processing;
    ``raise_at`` raises once at that block."""

    def __init__(self, *, every: int = 4, tracks: int = 3, limit: int | None = None) -> None:
        super().__init__(EngineConfig())
        self.every = every
        self.tracks = tracks
        self.limit = limit
        self.blocks = 0
        self.emitted: dict[str, list[float]] = {}
        self.hold = threading.Event()
        self.hold.set()
        self.raise_at: int | None = None

    def process_block(self, block):
        self.hold.wait()
        self.blocks += 1
        self.frames_processed += max(1, block.samples.size // 1024)
        if self.raise_at is not None and self.blocks == self.raise_at:
            self.raise_at = None
            raise RuntimeError("injected worker fault")
        if self.blocks % self.every or (self.limit is not None and sum(map(len, self.emitted.values())) >= self.limit):
            return []
        k = self.blocks // self.every
        tid = f"T{k % self.tracks}"
        last = round(block.offset_s + block.duration_s, 6)
        self.emitted.setdefault(tid, []).append(last)
        return [event_from_json(track_json(tid, last, snr=20.0, center_hz=CENTER + 25e3 * (k % self.tracks)))]

    def finish(self):
        return []


def assert_every_alert_survived(store, engine: ScriptedEngine, *, site="site", run_id="run"):
    """Every scripted track has its alert, with one version per emitted event (1..k, in order:
    nothing lost, nothing twice) and the last event's ``last_seen_s``."""
    assert engine.emitted
    for tid, seen in engine.emitted.items():
        a = store.find_by_track(site, run_id, tid)
        assert a is not None, f"track {tid} has no alert"
        hist = store.history(a.id)
        assert [h.version for h in hist] == list(range(1, len(seen) + 1)), (tid, [h.version for h in hist], len(seen))
        assert a.version == len(seen) and a.last_seen_s == seen[-1]
        lasts = [h.changes.get("last_seen_s", [None, None])[1] for h in hist[1:]]
        assert lasts == seen[1:], (tid, lasts, seen)
