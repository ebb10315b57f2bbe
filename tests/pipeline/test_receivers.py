"""Several receivers in one monitor (issue #19 item 1): one store and one API, per-receiver health, a
lost receiver degrades only itself and is reopened while the others keep working."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.app.monitor_app import AppSettings, MonitorApp, ReceiverSpec
from detector.core.errors import DeviceError
from detector.core.types import IQBlock
from detector.pipeline.receivers import ReceiverGroup
from detector.sim import awgn, gate, nfm
from detector.sources import IQSource, SourceInfo

FS = 250e3


class Recording(IQSource):
    def __init__(self, x, center_hz, name="rec", pace_s=0.0):
        self.x, self.center_hz, self.pace_s = x, center_hz, pace_s
        self.info = SourceInfo(kind="raw", name=name, center_hz=center_hz, sample_rate_hz=FS, n_samples=x.size)

    def blocks(self, bs):
        for i in range(0, self.x.size, bs):
            if self.pace_s:
                time.sleep(self.pace_s)
            yield IQBlock(self.x[i:i + bs], self.center_hz, FS, offset_s=i / FS, retuned=i == 0)


def signal(offset_hz, seconds=2.0, seed=1):
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    return awgn(n, -30.0, rng) + gate(nfm(n, FS, offset_hz, -30.0, rng), FS, [(0.5, 1.5)])


def two_receivers(tmp_path, factories, **kw):
    specs = [ReceiverSpec(name, f, bands=(band,)) for name, f, band in factories]
    return MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=None, site="S", receivers=specs, **kw)


def test_two_receivers_write_into_one_store_with_their_own_tracks(tmp_path):
    a, b = signal(20e3, seed=1), signal(-40e3, seed=2)
    seen = []
    app = two_receivers(tmp_path, [("uhf", lambda: Recording(a, 446.05e6, "uhf"), "PMR446"),
                                   ("vhf", lambda: Recording(b, 150.1e6, "vhf"), "VHF")])
    try:
        assert isinstance(app.monitor, ReceiverGroup)
        app.monitor.on_alert.append(lambda ev, alert: seen.append((ev.track_id, alert.id if alert else None)))
        app.start()
        assert app.monitor.finished.wait(30)
        alerts, n = app.store.list(site="S")
        assert n == 2
        by_track = {x.track_id: x.center_hz for x in alerts}
        # the primary receiver keeps the single-receiver ids; the second one's are its own
        assert set(by_track) == {"T00001", "T1-00001"}
        assert by_track["T00001"] == pytest.approx(446.07e6, abs=2e3)
        assert by_track["T1-00001"] == pytest.approx(150.06e6, abs=2e3)
        assert {t for t, _ in seen} == {"T00001", "T1-00001"}  # one callback list for every receiver
        h = TestClient(app.api).get("/api/v1/health").json()
        assert [r["name"] for r in h["receivers"]] == ["uhf", "vhf"]
        assert [r["bands"] for r in h["receivers"]] == [["PMR446"], ["VHF"]]
        assert all(r["source_state"] == "finished" and r["blocks_read"] > 0 for r in h["receivers"])
        assert h["alerts_raised"] == 2 and h["status"] == "ok"
        assert {"uhf.capture", "vhf.capture", "uhf.processing", "vhf.processing"} <= set(h["components"])
        # the dashboard's track lookup sees both receivers' tracks
        assert {"T00001", "T1-00001"} <= set(app.monitor.engine.all_tracks)
        text = TestClient(app.api).get("/metrics").text
        assert 'examwatch_receiver_blocks_read_total{receiver="vhf"}' in text
        assert 'examwatch_receiver_degraded{receiver="uhf"} 0.0' in text
    finally:
        app.stop()


class FlakyFactory:
    """A dongle unplugged: the first ``fail`` opens raise, then it is back."""

    def __init__(self, x, center_hz, fail):
        self.x, self.center_hz, self.fail, self.calls = x, center_hz, fail, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.fail:
            raise DeviceError("usb_claim_interface error -6 (the dongle is gone)")
        return Recording(self.x, self.center_hz, "flaky")


def test_a_lost_receiver_degrades_only_itself_and_is_reopened(tmp_path):
    good = signal(20e3, seconds=6.0, seed=3)
    flaky = FlakyFactory(signal(-40e3, seconds=2.0, seed=4), 150.1e6, fail=2)
    app = two_receivers(tmp_path, [("good", lambda: Recording(good, 446.05e6, "good", pace_s=0.02), "PMR446"),
                                   ("flaky", flaky, "VHF")], watchdog_s=1.0)
    client = TestClient(app.api)
    try:
        app.start()
        deadline = time.monotonic() + 5
        bad = None
        while time.monotonic() < deadline:
            h = client.get("/api/v1/health").json()
            entries = {r["name"]: r for r in h["receivers"]}
            if entries["flaky"]["status"] == "degraded":
                bad = h
                break
            time.sleep(0.05)
        assert bad is not None, "the lost receiver never showed in /health"
        entries = {r["name"]: r for r in bad["receivers"]}
        assert "dongle is gone" in (entries["flaky"]["last_error"] or "")
        assert entries["good"]["status"] == "ok"  # the other receiver keeps working
        assert bad["status"] == "degraded" and "flaky" in bad["last_error"]
        assert app.monitor.finished.wait(40)
        alerts, n = app.store.list(site="S")
        assert sorted(round(a.center_hz / 1e6, 2) for a in alerts) == [150.06, 446.07]  # both found, once reopened
        h = client.get("/api/v1/health").json()
        entries = {r["name"]: r for r in h["receivers"]}
        assert flaky.calls == 3  # opened again with backoff until the dongle was back
        assert h["status"] == "ok" and entries["flaky"]["status"] == "ok"
    finally:
        app.stop()


def test_each_receiver_spills_its_own_queue(tmp_path):
    from detector.pipeline.pending import spill_paths

    class Store:
        class engine:
            from sqlalchemy.engine import make_url
            url = make_url(f"sqlite:///{tmp_path}/x.db")

    one = spill_paths(Store, tmp_path / "state")
    a = spill_paths(Store, tmp_path / "state", tag="rx0")
    b = spill_paths(Store, tmp_path / "state", tag="rx1")
    assert one[0].name == "x.db.pending.jsonl"
    assert a[0].name == "x.db.pending-rx0.jsonl" and b[0].name == "x.db.pending-rx1.jsonl"
    assert len({one[1], a[1], b[1]}) == 3


class Endless(IQSource):
    """Noise for ever, a block every ``pace_s``."""

    def __init__(self, center_hz, pace_s=0.01):
        self.center_hz, self.pace_s = center_hz, pace_s
        self.x = awgn(1 << 14, -40.0, np.random.default_rng(0))
        self.info = SourceInfo(kind="raw", name="endless", center_hz=center_hz, sample_rate_hz=FS, n_samples=None)

    def blocks(self, bs):
        i = 0
        while True:
            time.sleep(self.pace_s)
            yield IQBlock(np.roll(self.x, i), self.center_hz, FS, offset_s=i * self.x.size / FS, retuned=i == 0)
            i += 1


def test_the_group_stops_every_receiver_within_its_timeout(tmp_path):
    app = two_receivers(tmp_path, [("a", lambda: Endless(446.05e6), "A"), ("b", lambda: Endless(150.1e6), "B")])
    app.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    app.stop(timeout=3.0)
    assert time.monotonic() - t0 < 6.0
    assert not [t for t in threading.enumerate() if t.name == "examwatch-process" and t.is_alive()]
