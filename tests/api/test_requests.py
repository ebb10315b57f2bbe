"""HTTP API requests: auth before body, bad input → 4xx and nothing changed, OpenAPI fuzzing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from detector.alerts import open_store
from detector.api import ApiContext, create_app

TOKEN = "s3cret-token"


def event(track_id="T00001", kind="new", f=446.08e6, last=210.0, **kw):
    ev = {"event": kind, "track_id": track_id, "alert": True, "center_hz": f, "bandwidth_hz": 11000.0,
          "first_seen_s": 209.9, "last_seen_s": last, "peak_dbfs": -30.0, "snr_db": 40.0, "excess_db": 35.0,
          "classification": "nfm_voice", "bursts": 1, "reasons": ["persistent"], "location": None,
          "severity": "high", "score_terms": {"excess": 3.0}}
    ev.update(kw)
    return ev


@pytest.fixture
def client(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    a = store.apply_event(event(), site="S", run_id="r1")
    store.apply_event(event("T00002", f=433.92e6), site="S", run_id="r1")
    app = create_app(ApiContext(store=store, token=TOKEN))
    with TestClient(app) as c:
        c.alert_id = a.id
        c.store = store
        yield c
    store.close()


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_lists_and_get(client):
    r = client.get("/api/v1/alerts")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2 and len(body["data"]) == 2
    r = client.get("/api/v1/alerts", params={"f_min_hz": 440e6, "f_max_hz": 450e6})
    assert r.json()["count"] == 1
    assert client.get(f"/api/v1/alerts/{client.alert_id}").json()["center_hz"] == 446.08e6
    assert client.get("/api/v1/alerts/A-nope").status_code == 404
    assert client.get("/api/v1/health").json()["status"] == "ok"


@pytest.mark.parametrize("headers", [{}, auth("wrong"), {"Authorization": "Basic abc"}])
def test_writes_need_the_token_before_the_body(client, headers):
    before = client.get(f"/api/v1/alerts/{client.alert_id}").json()["version"]
    for body in ('{"status": "acknowledged"}', "{not json", '{"status": 12}'):
        r = client.patch(f"/api/v1/alerts/{client.alert_id}", content=body,
                         headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401, (headers, body, r.text)
    assert client.get(f"/api/v1/alerts/{client.alert_id}").json()["version"] == before


@pytest.mark.parametrize("body", [{"status": "located"}, {"status": "bogus"}, {"status": 3}, {"reason": "x"},
                                  {"status": "acknowledged", "extra": 1}, {"status": "closed", "reason": "x" * 5000}])
def test_bad_bodies_are_422_and_change_nothing(client, body):
    before = client.get(f"/api/v1/alerts/{client.alert_id}").json()
    r = client.patch(f"/api/v1/alerts/{client.alert_id}", json=body, headers=auth())
    assert r.status_code == 422
    assert client.get(f"/api/v1/alerts/{client.alert_id}").json() == before


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "abc"}, {"offset": -1},
                                    {"status": "nope"}, {"since": "yesterday"}, {"since": "2026-06-07T09:00:00"},
                                    {"f_min_hz": "x"}, {"f_min_hz": "nan"}, {"f_max_hz": "inf"}])
def test_bad_queries_are_422(client, params):
    r = client.get("/api/v1/alerts", params=params)
    assert r.status_code == 422
    if str(next(iter(params.values()))) in ("nan", "inf"):
        assert r.json()["detail"][0]["msg"] == "Input should be a finite number"  # not a misleading bound


def test_status_lifecycle_through_the_api(client):
    r = client.patch(f"/api/v1/alerts/{client.alert_id}", json={"status": "acknowledged", "reason": "team sent"}, headers=auth())
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    v = r.json()["version"]
    r = client.patch(f"/api/v1/alerts/{client.alert_id}", json={"status": "closed", "reason": "found"}, headers=auth())
    assert r.json()["status"] == "closed" and r.json()["version"] == v + 1
    r = client.patch(f"/api/v1/alerts/{client.alert_id}", json={"status": "acknowledged"}, headers=auth())
    assert r.status_code == 409
    hist = client.get(f"/api/v1/alerts/{client.alert_id}/history").json()
    assert [h["status"] for h in hist["data"]][-2:] == ["acknowledged", "closed"]
    assert client.patch("/api/v1/alerts/A-none", json={"status": "closed"}, headers=auth()).status_code == 404


def test_metrics_and_openapi(client):
    m = client.get("/metrics")
    assert m.status_code == 200 and "examwatch_alerts_total 2.0" in m.text
    spec = client.get("/openapi.json").json()
    assert "/api/v1/alerts/{alert_id}" in spec["paths"] and "patch" in spec["paths"]["/api/v1/alerts/{alert_id}"]


def test_schemathesis_bounded(tmp_path):
    """Fuzz every operation of the OpenAPI schema a bounded number of times: no 5xx, responses as documented."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    store = open_store(None, data_dir=tmp_path)
    store.apply_event(event(), site="S", run_id="r1")
    from detector.app.bearings import BearingStore

    app = create_app(ApiContext(store=store, token=TOKEN, bearings=BearingStore()))  # a vehicle: POST /bearings too
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, calls = [], []
    for op in schema.get_all_operations():
        operation = op.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            case.headers = {**(case.headers or {}), **auth()}
            response = case.call()
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text[:200]))

        check()
    store.close()
    assert failures == []
    assert len(calls) >= 100 and any(400 <= c < 500 for c in calls) and any(c == 200 for c in calls)


def test_docs_pages_load_their_assets_from_the_app_not_a_cdn(client):
    """A monitoring vehicle is often offline: /docs and /redoc reference only local assets, which
    the app serves."""
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html.text) + re.findall(r"url: '([^']+)'", html.text)
        assets = [u for u in urls if u.endswith((".js", ".css"))]
        assert assets and all(u.startswith("/") for u in assets), assets
        for u in assets:
            r = client.get(u)
            assert r.status_code == 200 and len(r.content) > 10_000, u
    assert client.get("/openapi.json").json()["info"]["title"] == "examwatch"


def test_every_list_pages_with_limit_and_offset(tmp_path):
    """DESIGN.md: lists are {"data", "count"} with limit (1–1000) and offset; count is the total."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.toml").write_text(f'name = "{name}"\n')
    store = open_store(None, data_dir=tmp_path / "d")

    class Mon:
        engine = None

        def tracks(self):
            return [{"track_id": f"T{i:05d}"} for i in range(5)]

        def health(self):
            return {}

    try:
        with TestClient(create_app(ApiContext(store=store, token=TOKEN, sites_dir=tmp_path, monitor=Mon()))) as c:
            assert [s["name"] for s in c.get("/api/v1/sites").json()["data"]] == ["a", "b", "c"]
            body = c.get("/api/v1/sites", params={"limit": 1, "offset": 1}).json()
            assert body["count"] == 3 and [s["name"] for s in body["data"]] == ["b"]
            body = c.get("/api/v1/tracks", params={"limit": 2, "offset": 4}).json()
            assert body["count"] == 5 and [t["track_id"] for t in body["data"]] == ["T00004"]
            for route in ("/api/v1/sites", "/api/v1/tracks"):
                for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
                    assert c.get(route, params=bad).status_code == 422
    finally:
        store.close()


def test_a_dismissal_with_add_to_whitelist_is_kept_and_listed(tmp_path):
    from detector.detection import load_whitelist
    from detector.config.site import SiteConfig

    store = open_store(None, data_dir=tmp_path / "d")
    a = store.apply_event(event(), site="S", run_id="r1")

    class Engine:
        whitelist = None

    class Mon:
        engine = Engine()

        def health(self):
            return {}

    wl_file = tmp_path / "d" / "whitelist-added.csv"
    ctx = ApiContext(store=store, token=TOKEN, monitor=Mon(), site=SiteConfig(name="S"), whitelist_file=wl_file)
    try:
        with TestClient(create_app(ctx)) as c:
            for _ in range(2):  # a repeated dismissal adds nothing twice
                r = c.patch(f"/api/v1/alerts/{a.id}", json={"status": "dismissed", "reason": "school radio",
                                                              "add_to_whitelist": True}, headers=auth())
                assert r.status_code == 200 and r.json()["status"] == "dismissed"
            # the running engine, the file (reloaded by the next monitor run) and /sites all have it,
            # with the level it was dismissed at (it alerts again only far above that)
            (ch,) = Mon.engine.whitelist.channels
            assert (ch.center_hz, ch.bandwidth_hz, ch.site, ch.level_dbfs) == (446.08e6, 12500.0, "S", -30.0)
            assert load_whitelist(wl_file).channels == (ch,)
            (site,) = c.get("/api/v1/sites").json()["data"]
            assert site["whitelist"] == [{"center_hz": 446.08e6, "bandwidth_hz": 12500.0, "name": f"dismissed {a.id}",
                                          "level_dbfs": -30.0, "added_by_dismissal": True}]
    finally:
        store.close()


def test_emissions_of_the_latest_frame(tmp_path):
    import numpy as np

    from detector.detection import Emission, FrameResult
    from detector.core.types import Spectrum

    def em(f, snr, excess):
        return Emission(center_hz=f, bandwidth_hz=11000.0, f_lo_hz=f - 6e3, f_hi_hz=f + 6e3, peak_hz=f, peak_dbfs=-40.0,
                        snr_db=snr, excess_db=excess, power_dbfs=-35.0, bins=np.array([], dtype=np.intp))

    class Mon:
        engine = None
        latest = None

        def health(self):
            return {}

    store = open_store(None, data_dir=tmp_path)
    mon = Mon()
    try:
        with TestClient(create_app(ApiContext(store=store, token=TOKEN, monitor=mon))) as c:
            assert c.get("/api/v1/emissions").status_code == 404  # no frame yet
            spec = Spectrum(freqs_hz=446e6 + np.arange(8) * 1e3, power=np.zeros(8, np.float32), rbw_hz=1500.0, n_looks=20.0,
                            offset_s=12.5, duration_s=0.01, center_hz=446e6)
            res = FrameResult(emissions=[em(446.02e6, 12.0, None), em(446.08e6, 30.0, 21.5)], floor_db=None,
                              noise_floor_dbfs=-60.0, gain_offset_db=0.0, n_flagged_bins=10, rejected={})
            mon.latest = {"spectrum": spec, "result": res}
            body = c.get("/api/v1/emissions").json()
            assert body["count"] == 2 and body["offset_s"] == 12.5 and body["center_hz"] == 446e6
            assert [(e["center_hz"], e["snr_db"], e["excess_db"]) for e in body["data"]] == [(446.08e6, 30.0, 21.5),
                                                                                             (446.02e6, 12.0, None)]
            assert c.get("/api/v1/emissions", params={"limit": 1, "offset": 1}).json()["data"][0]["center_hz"] == 446.02e6
        with TestClient(create_app(ApiContext(store=store, token=TOKEN))) as c:
            r = c.get("/api/v1/emissions")
            assert r.status_code == 404 and "command center" in r.json()["detail"]
    finally:
        store.close()
