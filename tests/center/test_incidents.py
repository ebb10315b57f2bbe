"""Cross-site incidents (issue #22 item 4): the same emission at several sites is one incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from detector.alerts import open_store
from detector.center import open_center_store
from detector.center.app import build_center_app
from detector.center.incidents import link_incidents
from tests.push import track_event

T0 = datetime(2026, 6, 7, 9, 30, tzinfo=timezone.utc)


@dataclass
class A:
    id: str
    site: str
    center_hz: float
    first_s: float
    classification: str | None = "nfm_voice"
    vehicle_id: str = "v"

    @property
    def first_seen(self):
        return T0 + timedelta(seconds=self.first_s)

    @property
    def last_seen(self):
        return self.first_seen + timedelta(seconds=60)


def test_the_same_emission_at_two_sites_is_one_incident():
    alerts = [A("A-1", "school-1", 446.08125e6, 0.0), A("A-2", "school-2", 446.0830e6, 4.0),
              A("A-3", "school-2", 433.92e6, 2.0),                       # another frequency
              A("A-4", "school-3", 446.0812e6, 40.0),                    # 40 s later
              A("A-5", "school-3", 446.0813e6, 3.0, "fsk_data")]         # another class
    inc = link_incidents(alerts)
    assert len(inc) == 1
    i = inc[0]
    assert i.id == "I-1" and i.sites == ("school-1", "school-2")
    assert [m["alert_id"] for m in i.alerts] == ["A-1", "A-2"]
    assert i.spread_hz == pytest.approx(1750.0) and i.onset_spread_s == pytest.approx(4.0)
    assert i.center_hz == pytest.approx((446.08125e6 + 446.0830e6) / 2)


def test_tolerances_decide_and_links_are_transitive():
    # 446 MHz: 5 kHz + 5 ppm = 7.23 kHz
    assert len(link_incidents([A("A-1", "s1", 446e6, 0), A("A-2", "s2", 446e6 + 7.2e3, 0)])) == 1
    assert link_incidents([A("A-1", "s1", 446e6, 0), A("A-2", "s2", 446e6 + 7.3e3, 0)]) == []
    assert link_incidents([A("A-1", "s1", 446e6, 0), A("A-2", "s2", 446e6, 10.5)]) == []
    assert len(link_incidents([A("A-1", "s1", 446e6, 0), A("A-2", "s2", 446e6, 10.5)], onset_tol_s=11)) == 1
    # a chain s1–s2–s3, each link within tolerance, the ends 12 s apart: one incident of three sites
    chain = link_incidents([A("A-1", "s1", 446e6, 0), A("A-2", "s2", 446e6 + 4e3, 6), A("A-3", "s3", 446e6 + 8e3, 12)])
    assert len(chain) == 1 and chain[0].sites == ("s1", "s2", "s3")
    # one site alone (two vehicles seeing one transmitter) is no incident
    assert link_incidents([A("A-1", "s1", 446e6, 0, vehicle_id="v1"), A("A-2", "s1", 446e6, 1, vehicle_id="v2")]) == []
    # unknown links only with unknown
    assert link_incidents([A("A-1", "s1", 446e6, 0, None), A("A-2", "s2", 446e6, 1, "nfm_voice")]) == []
    with pytest.raises(ValueError):
        link_incidents([], onset_tol_s=-1)


def test_many_alerts_link_in_time():
    import time

    alerts = [A(f"A-{k}", f"s{k % 50}", 400e6 + (k % 997) * 25e3, k * 0.5) for k in range(20000)]
    t = time.perf_counter()
    link_incidents(alerts)
    assert time.perf_counter() - t < 5.0  # sorted by onset: only the neighbours within 10 s are compared


def _pushed(store, site, track, center_hz, first_seen, vehicle):
    a = store.apply_event(track_event(track, 5.0, snr=20.0, center_hz=center_hz), site=site, run_id="r")
    body = a.model_dump(mode="json")
    body["first_seen"] = first_seen.isoformat()
    return {**body, "vehicle_id": vehicle}


def test_incidents_route_links_pushed_alerts_of_two_sites(tmp_path):
    center = open_center_store(None, data_dir=tmp_path / "c")
    v1, v2 = open_store(None, data_dir=tmp_path / "v1"), open_store(None, data_dir=tmp_path / "v2")
    try:
        a = _pushed(v1, "school-1", "T1", 446.08125e6, T0, "car-1")
        b = _pushed(v2, "school-2", "T1", 446.0825e6, T0 + timedelta(seconds=3), "car-2")
        c = _pushed(v2, "school-2", "T2", 433.92e6, T0, "car-2")
        for body in (a, b, c):
            assert center.ingest(body["vehicle_id"], body, f"{body['id']}:{body['version']}").status == "stored"
        app = build_center_app(center, token="t" * 32, vehicle_tokens={"k" * 16: "car-1", "j" * 16: "car-2"})
        client = TestClient(app)
        r = client.get("/api/v1/incidents")
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["count"] == 1
        inc = page["data"][0]
        assert inc["sites"] == ["school-1", "school-2"]
        assert sorted(m["alert_id"] for m in inc["alerts"]) == sorted([a["id"], b["id"]])
        assert {m["vehicle_id"] for m in inc["alerts"]} == {"car-1", "car-2"}
        assert inc["onset_spread_s"] == pytest.approx(3.0)
        assert client.get("/api/v1/incidents", params={"onset_tol_s": 2}).json()["count"] == 0
        assert client.get("/api/v1/incidents", params={"freq_tol_hz": -1}).status_code == 422
        assert "/api/v1/incidents" in client.get("/openapi.json").json()["paths"]
    finally:
        v1.close()
        v2.close()
        center.close()
