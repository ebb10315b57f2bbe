"""``POST /api/v1/bearings`` (issue #22 item 1): 201 with what was kept, 401 without the write
token (before the body is read), 422 naming the field or item of a malformed bearing (nothing of
it kept); the bearings reach the app's store and ``/health`` → ``bearings``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from detector.alerts import open_store
from detector.api import ApiContext, create_app
from detector.app.bearings import BearingStore

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ONE = {"time": "2026-06-07T09:00:00Z", "lat": 50.0005, "lon": 10.0003, "heading": 90.0, "bearing_deg": 200.0,
       "confidence": 0.8, "frequency": 446_081_250}


@pytest.fixture
def api(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    bearings = BearingStore()
    with TestClient(create_app(ApiContext(store=store, token=TOKEN, bearings=bearings))) as c:
        c.bearings = bearings
        yield c
    store.close()


def test_one_bearing_or_a_list_is_kept(api):
    r = api.post("/api/v1/bearings", json=ONE, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 1, "received": 1, "kept": 1, "without_frequency": 0}
    two = [{**ONE, "time": 1780822801.5, "heading": None, "bearing_deg": 10.0, "frequency": None},
           {**ONE, "time": "2026-06-07T11:00:02+02:00", "confidence": None}]
    r = api.post("/api/v1/bearings", json=two, headers=AUTH)
    assert r.status_code == 201 and r.json() == {"accepted": 2, "received": 3, "kept": 3, "without_frequency": 1}
    t0 = 1780822800.0  # 2026-06-07T09:00:00Z
    got = api.bearings.query(t0 - 1, t0 + 10, 446.08e6, 446.09e6)
    # heading + bearing for the relative ones; the one without a frequency is never selected
    assert got.time_s.tolist() == [t0, t0 + 2] and got.true_bearing_deg().tolist() == [290.0, 290.0]
    assert got.quality.tolist() == [0.8, 1.0]


def test_without_the_token_401_before_the_body(api):
    assert api.post("/api/v1/bearings", json=ONE).status_code == 401
    assert api.post("/api/v1/bearings", content=b"{not json", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert len(api.bearings) == 0


@pytest.mark.parametrize("bad, where", [
    ({**ONE, "lat": 95.0}, "lat"),
    ({k: v for k, v in ONE.items() if k != "bearing_deg"}, "bearing_deg"),
    ({**ONE, "confidence": 12.0}, "confidence"),
    ({**ONE, "bearng": 3.0}, "bearng"),
    ([ONE, {**ONE, "frequency": -5}], "frequency"),
])
def test_a_malformed_bearing_is_422_naming_the_field_and_nothing_is_kept(api, bad, where):
    r = api.post("/api/v1/bearings", json=bad, headers=AUTH)
    assert r.status_code == 422
    assert any(where in [str(x) for x in e["loc"]] for e in r.json()["detail"]), r.json()
    assert len(api.bearings) == 0


@pytest.mark.parametrize("bad, msg", [
    ({**ONE, "time": "2026-06-07T09:00:00"}, "body:1: time '2026-06-07T09:00:00' has no time zone"),
    ([ONE, {**ONE, "time": "yesterday"}], "body:2: time 'yesterday' is neither ISO 8601"),
    ([], "no bearing"),
])
def test_a_bad_time_is_422_with_the_item(api, bad, msg):
    r = api.post("/api/v1/bearings", json=bad, headers=AUTH)
    assert r.status_code == 422 and msg in r.json()["detail"]
    assert len(api.bearings) == 0


def test_health_reports_the_bearings_of_a_monitor(tmp_path):
    from detector.app.monitor_app import AppSettings, MonitorApp
    from tests.pipeline.test_bearings_inputs import _Quiet

    app = MonitorApp.build(AppSettings(data_dir=tmp_path / "d", token=TOKEN), source_factory=_Quiet(), site="S")
    try:
        c = TestClient(app.api)
        assert c.post("/api/v1/bearings", json=[ONE, ONE], headers=AUTH).status_code == 201
        assert c.post("/api/v1/bearings", json={**ONE, "time": "soon"}, headers=AUTH).status_code == 422
        h = c.get("/api/v1/health").json()["bearings"]
        assert h["received"] == 2 and h["rejected"] == 1 and h["kept"] == 2 and h["source"] is None
        assert "time 'soon'" in h["last_error"] and h["last_at"].endswith("Z")
    finally:
        app.stop()
