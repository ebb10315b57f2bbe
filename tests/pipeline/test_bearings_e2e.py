"""End to end (issue #22 item 1): a running monitor on a simulated site with a hidden
transmitter, located from received power along the route; with two bearings posted from two
places pointing at the true transmitter, the alert's location is closer to it, its ``method`` says
"gls+bearings", ``n_bearings`` 2, and the CRLB (of the combination) is smaller."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.app.bearings import BearingStore
from detector.app.monitor_app import AppSettings, MonitorApp
from detector.localization import LocalFrame
from detector.localization.tracks import track_locator
from detector.sim.scene import Scene
from detector.sim.sdr import SimSDR

ORIGIN = LocalFrame(50.0, 10.0)
TX = (40.0, 20.0)  # ENU m: inside the loop, off its centre
F = 446.08125e6


def scene() -> Scene:
    """40 s of a 120 m × 100 m loop at 10 m/s around one transmitter, 250 kS/s (≈ 3 s to run)."""
    return Scene.model_validate({
        "name": "bearings-e2e", "seed": 1, "site": {"name": "S", "lat0": 50.0, "lon0": 10.0},
        "timeline": {"survey": [0.0, 1.0], "exam": [[0.0, 40.0]]},
        "receiver": {"center_hz": 446.0e6, "sample_rate_hz": 250e3, "gain_db": 30.0, "drop_probability": 0.0},
        "route": {"waypoints": [[-60, -50], [60, -50], [60, 50], [-60, 50], [-60, -50]], "speed_mps": 10.0,
                  "stop_s": 0.0},
        "emitters": [{"id": "T1", "kind": "target", "f_c_hz": F, "modulation": "nfm", "bandwidth_hz": 11e3,
                      "eirp_dbm": 13.0, "position": list(TX), "indoor": True, "schedule": [[1.0, 39.0]]}],
    })


def bearings_to_target() -> list[dict]:
    """Two bearings from true north (no heading), from two corners of the loop, during the burst.
    The sim source has no wall-clock start: its timeline is taken from the epoch (POSIX t = scene t)."""
    out = []
    for (px, py), t in (((-60.0, -50.0), 10.0), ((60.0, 50.0), 25.0)):
        lat, lon = ORIGIN.to_geodetic(np.array([px]), np.array([py]))
        out.append({"time": t, "lat": float(lat[0]), "lon": float(lon[0]),
                    "bearing_deg": math.degrees(math.atan2(TX[0] - px, TX[1] - py)) % 360.0,
                    "confidence": 1.0, "frequency": F})
    return out


def run(tmp_path, with_bearings: bool) -> dict:
    sc = scene()
    store = BearingStore()
    app = MonitorApp.build(AppSettings(data_dir=tmp_path / ("b" if with_bearings else "a")),
                           source_factory=lambda: SimSDR(sc, window="exam"), site="S",
                           locate=track_locator(50.0, 10.0, bearings=store.timeline(None)), bearing_store=store,
                           # blocks neither joined nor read larger when the processing falls behind:
                           # the same stacks, so the same readings, whatever the machine's load
                           monitor_options={"coalesce_samples": 0})
    try:
        if with_bearings:
            r = TestClient(app.api).post("/api/v1/bearings", json=bearings_to_target(),
                                         headers={"Authorization": f"Bearer {app.token}"})
            assert r.status_code == 201 and r.json()["accepted"] == 2
        app.start()
        assert app.monitor.finished.wait(60)
        alerts, _ = app.store.list(site="S")
        target = [a for a in alerts if abs(a.center_hz - F) < 5e3 and a.location]
        assert len(target) == 1
        return target[0].location
    finally:
        app.stop()


def error_m(loc: dict) -> float:
    x, y = ORIGIN.to_enu(np.array([loc["lat"]]), np.array([loc["lon"]]))
    return float(math.hypot(x[0] - TX[0], y[0] - TX[1]))


def test_bearings_posted_to_a_running_monitor_bring_the_alert_closer(tmp_path):
    plain = run(tmp_path, False)
    fused = run(tmp_path, True)
    assert plain["status"] == fused["status"] == "located"
    assert plain["method"] == "gls" and plain["n_bearings"] == 0
    assert fused["method"] == "gls+bearings" and fused["n_bearings"] == 2 and fused["n_bearing_outliers"] == 0
    e0, e1 = error_m(plain), error_m(fused)
    print(f"error {e0:.1f} m without bearings, {e1:.1f} m with; CRLB {plain['crlb_rmse_m']} → {fused['crlb_rmse_m']} m")
    # seed 1: 33.7 m from received power alone, 21.4 m with the two bearings
    assert e0 == pytest.approx(33.7, abs=2.0) and e1 == pytest.approx(21.4, abs=2.0)
    assert e1 < e0 - 8.0
    assert fused["crlb_rmse_m"] < plain["crlb_rmse_m"]  # 11.59 → 11.29 m: the combination's bound
