"""The center's store (SQLite and PostgreSQL) and its HTTP app: de-duplication by idempotency key,
the newest version kept, the vehicle's ids kept, authentication per vehicle token, reads open unless
a read token is configured, the overview."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from detector.alerts import open_store
from detector.core.errors import InputError
from detector.center import IngestError, load_vehicle_tokens, open_center_store
from detector.center.app import build_center_app
from tests.push import pg_base_url, pg_schema, track_event


@pytest.fixture(params=["sqlite", "postgresql"])
def center(request, tmp_path):
    if request.param == "sqlite":
        s = open_center_store(None, data_dir=tmp_path / "c")
        yield s
        s.close()
        return
    with pg_schema(pg_base_url()) as url:
        s = open_center_store(url, data_dir=tmp_path / "c")
        yield s
        s.close()


@pytest.fixture
def vehicle(tmp_path):
    """A vehicle store and the alert versions it produced (as pushed bodies)."""
    st = open_store(None, data_dir=tmp_path / "v")
    yield st
    st.close()


def versions_of(store, track="T1", n=3, site="S"):
    out = []
    for t in range(1, n + 1):
        a = store.apply_event(track_event(track, float(t), snr=10.0 + t, center_hz=446e6), site=site, run_id="r")
        out.append({**a.model_dump(mode="json"), "vehicle_id": "v1"})
    return out


def test_ingest_dedup_newest_version_and_history(center, vehicle):
    v1, v2, v3 = versions_of(vehicle)
    r = center.ingest("v1", v1, f"{v1['id']}:1")
    assert (r.status, r.version) == ("stored", 1)
    assert center.ingest("v1", v1, f"{v1['id']}:1").status == "duplicate"  # the same key again
    assert center.ingest("v1", v3, f"{v3['id']}:3").status == "stored"
    late = center.ingest("v1", v2, f"{v2['id']}:2")  # an older version arriving late
    assert late.status == "stale"
    a = center.get(v1["id"])
    assert a.id == v1["id"] and a.version == 3 and a.vehicle_id == "v1"  # the vehicle's id, the newest version
    assert {k: v for k, v in a.model_dump(mode="json").items() if k not in ("vehicle_id", "received_at")} == \
        {k: v for k, v in v3.items() if k != "vehicle_id"}
    assert center.ingest_count() == 3
    assert [h.version for h in center.history(v1["id"])] == [1, 2, 3]
    assert center.history(v1["id"])[1].reason.startswith("arrived after")
    assert [e["seq"] for e in center.events_after(0)] == sorted(e["seq"] for e in center.events_after(0))
    assert center.last_event_seq() == center.events_after(0)[-1]["seq"]
    page, total = center.list(status=["updated"], limit=10)
    assert total == 1 and page[0].id == v1["id"]
    assert center.list(site="other")[1] == 0
    assert center.list(f_min_hz=447e6)[1] == 0
    assert center.list(since=datetime(2000, 1, 1, tzinfo=timezone.utc))[1] == 1
    with pytest.raises(InputError):
        center.list(limit=0)
    with pytest.raises(InputError):
        center.list(status="bogus")
    assert len(center.open_alerts()) == 1 and center.open_alerts("other") == []
    with pytest.raises(InputError):
        center.set_status(v1["id"], "closed")


def test_ingest_refusals(center, vehicle):
    (v1,) = versions_of(vehicle, n=1)
    with pytest.raises(IngestError) as e:
        center.ingest("v1", v1, "A-x:1")
    assert e.value.status_code == 422
    with pytest.raises(IngestError) as e:
        center.ingest("v2", v1, None)  # vehicle_id in the body is v1
    assert e.value.status_code == 403
    with pytest.raises(IngestError):
        center.ingest("v1", {**v1, "version": 0}, None)
    with pytest.raises(IngestError):
        center.ingest("v1", {"id": "A-1"}, None)
    center.ingest("v1", v1, None)
    with pytest.raises(IngestError) as e:  # the same alert id claimed by another vehicle
        center.ingest("v2", {**v1, "vehicle_id": "v2", "version": 2}, None)
    assert e.value.status_code == 409
    assert center.ingest_count() == 1


def test_evidence_and_overview(center, vehicle):
    a = vehicle.apply_event(track_event("T1", 1.0, snr=10.0, center_hz=446e6), site="S", run_id="r")
    vehicle.add_evidence(a.id, "audio.wav", b"RIFF....", "audio/wav")
    body = {**vehicle.get(a.id).model_dump(mode="json"), "vehicle_id": "v1"}
    r = center.ingest("v1", body, None)
    assert r.need_evidence == ["audio.wav"]
    with pytest.raises(IngestError):
        center.put_evidence("v1", a.id, "audio.wav", b"RIFF....", "audio/wav", sha256="0" * 64)
    with pytest.raises(IngestError):
        center.put_evidence("v2", a.id, "audio.wav", b"RIFF....", "audio/wav")
    info = center.put_evidence("v1", a.id, "audio.wav", b"RIFF....", "audio/wav")
    assert info.sha256 == body["evidence"][0]["sha256"]
    assert center.ingest("v1", body, None).need_evidence == []  # duplicate, and nothing missing now
    data, info2 = center.evidence(a.id, "audio.wav")
    assert data == b"RIFF...." and info2.media_type == "audio/wav"

    center.touch("v3", site="T", health={"status": "ok"}, spectrum={"center_hz": 1.0})
    ov = center.overview(known=["v1", "v2", "v3"], silent_after_s=30)
    assert [s["site"] for s in ov["sites"]] == ["S", "T"]
    s = ov["sites"][0]
    assert (s["alerts"], s["open_alerts"], s["open_by_severity"], s["vehicles"]) == (1, 1, {"high": 1}, ["v1"])
    assert ov["silent_vehicles"] == ["v2"]  # never heard of
    byv = {v["vehicle_id"]: v for v in ov["vehicles"]}
    assert byv["v1"]["alerts"] == 1 and byv["v2"]["last_contact"] is None and byv["v3"]["site"] == "T"
    time.sleep(0.3)
    assert set(center.overview(known=["v1", "v2", "v3"], silent_after_s=0.1)["silent_vehicles"]) == {"v1", "v2", "v3"}
    assert center.vehicle_spectrum("v3")["spectrum"] == {"center_hz": 1.0}


def test_vehicle_tokens_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# fleet\nvan-1  tok-aaaaaaaa   # first\n\n  van-2 tok-bbbbbbbb\n")
    assert load_vehicle_tokens(f) == {"tok-aaaaaaaa": "van-1", "tok-bbbbbbbb": "van-2"}
    for bad in ("van-1\n", "van-1 tok-aaaaaaaa\nvan-1 tok-cccccccc\n", "a tok-aaaaaaaa\nb tok-aaaaaaaa\n", "a short\n"):
        f.write_text(bad)
        with pytest.raises(InputError):
            load_vehicle_tokens(f)
    with pytest.raises(InputError):
        load_vehicle_tokens(tmp_path / "missing")


def test_center_http_auth_and_reads(tmp_path, vehicle):
    store = open_center_store(None, data_dir=tmp_path / "c")
    (v1,) = versions_of(vehicle, n=1)
    key = {"Idempotency-Key": f"{v1['id']}:1"}
    good = {"Authorization": "Bearer tok-vehicle-1", **key}
    try:
        app = build_center_app(store, token="write-token-123", vehicle_tokens={"tok-vehicle-1": "v1", "tok-vehicle-2": "v2"},
                               read_token=None)
        with TestClient(app) as c:
            assert c.post("/api/v1/ingest", json=v1, headers=key).status_code == 401
            assert c.post("/api/v1/ingest", json=v1, headers={"Authorization": "Bearer nope", **key}).status_code == 401
            assert c.post("/api/v1/ingest", json=v1, headers={"Authorization": "Bearer write-token-123", **key}).status_code == 401
            assert c.post("/api/v1/ingest", json=v1, headers={"Authorization": "Bearer tok-vehicle-2", **key}).status_code == 403
            assert c.post("/api/v1/ingest", json=v1, headers={"Authorization": "Bearer tok-vehicle-1"}).status_code == 422
            assert c.post("/api/v1/ingest", content=b"{", headers=good).status_code == 422
            r = c.post("/api/v1/ingest", json=v1, headers=good)
            assert r.status_code == 200 and r.json()["status"] == "stored"
            assert c.post("/api/v1/ingest", json=v1, headers=good).json()["status"] == "duplicate"
            # reads are open; the vehicle's read API answers with the vehicle's id
            assert c.get("/api/v1/alerts").json()["data"][0]["id"] == v1["id"]
            assert c.get(f"/api/v1/alerts/{v1['id']}").json()["vehicle_id"] == "v1"
            assert c.get(f"/api/v1/alerts/{v1['id']}/history").json()["count"] == 1
            assert c.get("/api/v1/alerts/A-nope").status_code == 404
            assert c.get("/api/v1/health").json()["role"] == "center"
            assert c.get("/api/v1/overview").json()["vehicles"][0]["vehicle_id"] == "v1"
            assert c.get("/api/v1/vehicles").json()["count"] == 2
            assert c.get("/api/v1/vehicles/v2/spectrum").status_code == 404
            assert c.get("/metrics").status_code == 200
            # writes other than ingest need the center's write token; alerts change on the vehicle
            assert c.patch(f"/api/v1/alerts/{v1['id']}", json={"status": "closed"}).status_code == 401
            assert c.patch(f"/api/v1/alerts/{v1['id']}", json={"status": "closed"},
                           headers={"Authorization": "Bearer write-token-123"}).status_code == 409
            summary = {"center_hz": 446e6, "f_min_hz": 445.5e6, "f_max_hz": 446.5e6, "rbw_hz": 1500.0, "unit": "dBFS",
                       "offset_s": 12.0, "noise_floor_dbfs": -60.0, "power_max": [-60.0, None, -40.5], "decimation": 16,
                       "emissions": [{"center_hz": 446.08e6, "bandwidth_hz": 11e3, "snr_db": 20.0}]}
            hb = c.post("/api/v1/ingest/heartbeat", json={"vehicle_id": "v2", "site": "T", "spectrum": summary},
                        headers={"Authorization": "Bearer tok-vehicle-2"})
            assert hb.status_code == 200
            assert c.get("/api/v1/vehicles/v2/spectrum").json()["spectrum"] == summary
            # a body that is not a heartbeat is refused and does not replace the vehicle's health or spectrum
            nan_spectrum = {**summary, "power_max": [float("nan")]}
            for bad in ({"x": 1}, {"health": "ok"}, {"at": "yesterday"}, {"spectrum": {"x": 1}},
                        {"spectrum": {**summary, "f_max_hz": 1.0}}):
                r = c.post("/api/v1/ingest/heartbeat", json=bad, headers={"Authorization": "Bearer tok-vehicle-2"})
                assert r.status_code == 422 and "heartbeat" in r.json()["detail"], r.text
            r = c.post("/api/v1/ingest/heartbeat", content=json.dumps({"spectrum": nan_spectrum}).encode(),
                       headers={"Authorization": "Bearer tok-vehicle-2", "Content-Type": "application/json"})
            assert r.status_code == 422  # NaN is not a level
            assert c.get("/api/v1/vehicles/v2/spectrum").json()["spectrum"] == summary
            v2 = next(v for v in c.get("/api/v1/overview").json()["vehicles"] if v["vehicle_id"] == "v2")
            assert v2["site"] == "T" and "x" not in (v2["health"] or {})

        app = build_center_app(store, token="write-token-123", vehicle_tokens={"tok-vehicle-1": "v1"}, read_token="read-token-9")
        with TestClient(app) as c:
            assert c.get("/api/v1/alerts").status_code == 401
            assert c.get("/api/v1/alerts", headers={"Authorization": "Bearer read-token-9"}).status_code == 200
            # liveness probes and Prometheus need no token
            assert c.get("/api/v1/health").status_code == 200 and c.get("/metrics").status_code == 200
            assert c.get("/api/v1/health/x").status_code == 401
            assert c.get("/api/v1/alerts/stream").status_code == 401
            # ingest is authenticated by the vehicle token, not by the read or write token
            (v2,) = [{**vehicle.apply_event(track_event("T1", 9.0, snr=30.0, center_hz=446e6), site="S", run_id="r")
                      .model_dump(mode="json"), "vehicle_id": "v1"}]
            r = c.post("/api/v1/ingest", json=v2, headers={"Authorization": "Bearer tok-vehicle-1",
                                                          "Idempotency-Key": f"{v2['id']}:{v2['version']}"})
            assert r.status_code == 200 and r.json()["status"] == "stored"
    finally:
        store.close()


def test_serve_cli_help_and_bad_input(tmp_path):
    from typer.testing import CliRunner

    import detector.cli.serve  # noqa: F401  (registers the command until detector/cli/__init__ does)
    from detector.cli import app

    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for opt in ("--db", "--host", "--port", "--vehicle-tokens", "--read-token-file", "--mqtt", "--silent-after"):
        assert opt in out
    bad = tmp_path / "t.txt"
    bad.write_text("only-one-field\n")
    r = CliRunner().invoke(app, ["serve", "--vehicle-tokens", str(bad), "--data-dir", str(tmp_path / "d")])
    assert r.exit_code != 0 and isinstance(r.exception, InputError)


def test_batch_ingest_keeps_order_per_alert(center, vehicle):
    a1, a2, a3 = versions_of(vehicle, "T1")
    (b1,) = versions_of(vehicle, "T2", n=1)
    center.ingest("v1", a1, None)
    res = center.ingest_many("v1", [(a1, None), (a2, "wrong:key"), (a3, None), (b1, None)])
    assert res[0].status == "duplicate" and isinstance(res[1], IngestError)
    assert res[2].status == "skipped" and res[3].status == "stored"
    assert center.get(a1["id"]).version == 1  # version 3 waits for version 2
    res = center.ingest_many("v1", [(a2, None), (a3, None)])
    assert [r.status for r in res] == ["stored", "stored"] and center.get(a1["id"]).version == 3
    assert center.ingest_count() == 4


def test_http_batch_endpoint(tmp_path, vehicle):
    store = open_center_store(None, data_dir=tmp_path / "c")
    vs = versions_of(vehicle, n=3)
    items = [{"idempotency_key": f"{v['id']}:{v['version']}", "alert": v} for v in vs]
    try:
        with TestClient(build_center_app(store, token="w" * 20, vehicle_tokens={"tok-vehicle-1": "v1"})) as c:
            assert c.post("/api/v1/ingest/batch", json={"items": items}).status_code == 401
            h = {"Authorization": "Bearer tok-vehicle-1"}
            assert c.post("/api/v1/ingest/batch", json={"items": []}, headers=h).status_code == 422
            r = c.post("/api/v1/ingest/batch", json={"items": items + [{"idempotency_key": "x", "alert": {}}]}, headers=h)
            assert r.status_code == 200
            res = r.json()["results"]
            assert [x["status"] for x in res] == ["stored", "stored", "stored", "error"] and res[3]["code"] == 422
            assert [x["status"] for x in c.post("/api/v1/ingest/batch", json={"items": items}, headers=h).json()["results"]] \
                == ["duplicate"] * 3
            assert c.get(f"/api/v1/alerts/{vs[0]['id']}").json()["version"] == 3
    finally:
        store.close()


def test_center_serves_the_live_page_exports_and_evidence_packs(tmp_path, vehicle):
    """README: ``GET /dashboard`` on a vehicle or the center; GIS exports and evidence packs of the
    vehicles' alerts; the live figures (spectrum, waterfall) say why they are not drawn here."""
    import io
    import json
    import zipfile
    import xml.etree.ElementTree as ET

    store = open_center_store(None, data_dir=tmp_path / "c")
    loc = {"lat": 50.0001, "lon": 10.0001, "error_ellipse_m": {"semi_major": 30.0, "semi_minor": 12.0, "angle_deg": 40.0},
           "cep50_m": 15.0, "crlb_rmse_m": 9.0, "status": "located", "method": "rss_nls", "n_readings": 40}
    a = vehicle.apply_event({**track_event("T1", 1.0, snr=10.0, center_hz=446e6), "location": loc}, site="S", run_id="r")
    vehicle.add_evidence(a.id, "audio.wav", b"RIFF....", "audio/wav")
    store.ingest("v1", {**vehicle.get(a.id).model_dump(mode="json"), "vehicle_id": "v1"}, None)
    store.put_evidence("v1", a.id, "audio.wav", b"RIFF....", "audio/wav")
    try:
        app = build_center_app(store, token="write-token-123", vehicle_tokens={"tok-vehicle-1": "v1"})
        with TestClient(app) as c:
            page = c.get("/dashboard")
            assert page.status_code == 200 and 'data-role="center"' in page.text
            # no receiver here: no live spectrum or waterfall panel; the texts are the center's
            assert 'data-figure="map"' in page.text and 'data-figure="spectrum"' not in page.text
            assert 'data-i18n="footer_center"' in page.text and "token_help_center" in page.text
            gj = c.get("/api/v1/alerts.geojson").json()
            assert [f["properties"]["id"] for f in gj["features"] if f["geometry"]["type"] == "Point"] == [a.id]
            assert gj["features"][0]["geometry"]["coordinates"][:2] == pytest.approx([10.0001, 50.0001])
            kml = ET.fromstring(c.get("/api/v1/alerts.kml").content)
            assert any(a.id in (el.text or "") for el in kml.iter())
            z = zipfile.ZipFile(io.BytesIO(c.get(f"/api/v1/alerts/{a.id}/evidence.zip").content))
            assert z.read(f"{a.id}/audio.wav") == b"RIFF...."
            assert "audio.wav" in z.read(f"{a.id}/MANIFEST.sha256").decode()
            for name in ("map", "timeline"):
                r = c.get(f"/api/v1/figures/{name}.png")
                assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
            r = c.get("/api/v1/figures/spectrum.png")
            assert r.status_code == 404 and "command center" in r.json()["detail"]
            assert json.loads(c.get(f"/api/v1/alerts/{a.id}").text)["vehicle_id"] == "v1"
    finally:
        store.close()


def test_serve_stops_cleanly_on_sigterm_and_refuses_a_busy_port(tmp_path):
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "detector", "serve", "--port", str(port), "--data-dir", str(tmp_path / "c")]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "no start"
            time.sleep(0.3)
        busy = subprocess.run(cmd[:-1] + [str(tmp_path / "c2")], capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
        assert "command center on" not in busy.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(30)
    err = p.stderr.read()
    assert rc == 0 and "command center stopped" in err, err
