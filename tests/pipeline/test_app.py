"""The composition root: MonitorApp.build composes store, token, lock, engine, monitor, API; stop()
is the shutdown sequence."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.app.monitor_app import AppSettings, MonitorApp, build_engine
from detector.core.errors import InputError
from detector.core.types import IQBlock
from detector.sim import awgn, gate, nfm
from detector.sources import IQSource, SourceInfo

FS = 250e3
CENTER = 446.05e6


class Recording(IQSource):
    def __init__(self, x):
        self.x = x
        self.info = SourceInfo(kind="raw", name="rec", center_hz=CENTER, sample_rate_hz=FS, n_samples=x.size)

    def blocks(self, bs):
        for i in range(0, self.x.size, bs):
            yield IQBlock(self.x[i:i + bs], CENTER, FS, offset_s=i / FS, retuned=i == 0)


def signal(seconds=2.0):
    rng = np.random.default_rng(1)
    n = int(seconds * FS)
    return awgn(n, -30.0, rng) + gate(nfm(n, FS, 20e3, -30.0, rng), FS, [(0.5, 1.5)])


def test_build_composes_a_vehicle_that_stores_and_serves(tmp_path):
    x = signal()
    lines = []
    app = MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=lambda: Recording(x), site="S",
                           say=lines.append)
    try:
        assert (tmp_path / "d" / "monitor.lock").is_file() and app.token and len(app.token) >= 32
        assert any("api-token" in line for line in lines)  # where the write token is
        assert app.monitor.store is app.store and app.engine is app.monitor.engine
        app.start()
        assert app.monitor.finished.wait(30)
        alerts, n = app.store.list(site="S")
        assert n == 1 and abs(alerts[0].center_hz - CENTER - 20e3) < 2e3
        client = TestClient(app.api)
        h = client.get("/api/v1/health").json()
        assert h["source_state"] == "finished" and h["alerts_raised"] == 1
        with pytest.raises(InputError, match="another examwatch monitor"):  # one monitor per data folder
            MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=lambda: Recording(x), site="S")
    finally:
        app.stop()
    app.stop()  # idempotent
    again = MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=lambda: Recording(x), site="S",
                             say=lines.append)  # the lock was released; the open alert is reloaded
    try:
        assert [a.center_hz for a in again.reopened] == [alerts[0].center_hz]
        assert any("1 open alert(s) of site 'S' reloaded" in line for line in lines)
    finally:
        again.stop()


def test_channels_whitelisted_by_dismissals_are_reloaded(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "whitelist-added.csv").write_text("center_hz,bandwidth_hz,name,site\n446070000,12500,dismissed,S\n"
                                           "433000000,12500,other site,B\n")
    lines = []
    app = MonitorApp.build(AppSettings(data_dir=d), source_factory=lambda: Recording(signal(0.1)), site="S",
                           say=lines.append)
    try:
        assert [c.name for c in app.engine.whitelist.channels] == ["dismissed"]
        assert any("1 channel(s) whitelisted by dismissals reloaded" in line for line in lines)
        assert app.ctx.whitelist_file == d / "whitelist-added.csv"
    finally:
        app.stop()


def test_without_settings_there_is_no_store_and_no_api():
    app = MonitorApp.build(None, source_factory=lambda: Recording(signal(0.5)), site="S")
    assert app.store is None and app.api is None and app.monitor.store is None
    app.start()
    assert app.monitor.finished.wait(20)
    app.stop()


def test_stop_is_the_shutdown_sequence():
    log = []

    class Part:
        def __init__(self, name):
            self.name = name

        def stop(self, *a, **kw):
            log.append((self.name, "stop", kw.get("drain_s")))

        def close(self):
            log.append((self.name, "close", None))

    lock = Part("lock")
    app = MonitorApp(engine=None, monitor=Part("monitor"), store=Part("store"), sender=Part("sender"), _lock_file=lock)
    app.stop()
    assert log == [("monitor", "stop", None), ("sender", "stop", 2.0), ("store", "close", None), ("lock", "close", None)]


def test_a_failing_build_releases_what_it_opened(tmp_path):
    from detector.app.push import PushSettings

    bad = tmp_path / "empty-token"
    bad.write_text("")
    with pytest.raises(InputError, match="is empty"):
        MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=lambda: Recording(signal(0.1)), site="S",
                         push=PushSettings("http://127.0.0.1:1", "v", bad))
    app = MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=lambda: Recording(signal(0.1)), site="S")
    app.stop()  # the lock of the failed build was released


def test_build_engine_composes_the_engine():
    from detector.detection import Whitelist
    from detector.detection.engine import EngineConfig

    calib = lambda b: b  # noqa: E731
    eng = build_engine(EngineConfig(frame_s=0.02), whitelist=Whitelist(()), site="S", calibration=calib)
    assert eng.config.frame_s == 0.02 and eng.correct is calib and eng.site == "S"
