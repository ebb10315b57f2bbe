"""GeoJSON (validated against a schema), KML (parsed, points checked) and evidence packs (zip with a
SHA-256 manifest)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import zipfile
from xml.etree import ElementTree as ET

import jsonschema
import numpy as np
import pytest

from dashboards.exports import KML_NS, alerts_geojson, alerts_kml, ellipse_ring, evidence_pack, readings_csv
from detector.alerts import nfm_audio_wav, open_store, sigmf_snippet
from tests.dashboards import SITE, located_event, sim_drive_readings, sim_run, target_alert

POSITION = {"type": "array", "minItems": 2, "maxItems": 3,
            "prefixItems": [{"type": "number", "minimum": -180, "maximum": 180},
                            {"type": "number", "minimum": -90, "maximum": 90}],
            "items": {"type": "number"}}
#: RFC 7946 FeatureCollection of Points and Polygons, with the properties examwatch writes
GEOJSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"$ref": "#/$defs/feature"}},
    },
    "$defs": {
        "feature": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "id": {"type": ["string", "number"]},
                "geometry": {"oneOf": [
                    {"type": "object", "required": ["type", "coordinates"],
                     "properties": {"type": {"const": "Point"}, "coordinates": POSITION}},
                    {"type": "object", "required": ["type", "coordinates"],
                     "properties": {"type": {"const": "Polygon"},
                                    "coordinates": {"type": "array", "minItems": 1,
                                                    "items": {"type": "array", "minItems": 4, "items": POSITION}}}},
                ]},
                "properties": {"type": "object", "required": ["kind"], "oneOf": [
                    {"properties": {"kind": {"const": "alert"}, "id": {"type": "string"}, "center_hz": {"type": "number"},
                                    "location_status": {"enum": ["located", "not_localizable"]},
                                    "cep50_m": {"type": ["number", "null"]}},
                     "required": ["id", "center_hz", "status", "severity", "classification", "location_status"]},
                    {"properties": {"kind": {"const": "error_ellipse_95"}, "alert_id": {"type": "string"}},
                     "required": ["alert_id"]},
                ]},
            },
        },
    },
}


def _store_with_alerts(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    drive = sim_drive_readings()
    loc = drive.estimate.to_dict()
    a = store.apply_event(located_event("T1", location=loc), site="S", run_id="r")
    coarse = {**loc, "status": "not_localizable", "radius_m": 150.0, "lat": 50.001, "lon": 10.002,
              "error_ellipse_m": {"semi_major": 150.0, "semi_minor": 150.0, "angle_deg": 0.0}}
    b = store.apply_event(located_event("T2", 433.92e6, location=coarse, severity="medium", classification="pulsed"),
                          site="S", run_id="r")
    c = store.apply_event(located_event("T3", 445.6e6, location=None, severity="low"), site="S", run_id="r")
    return store, (a, b, c)


def _signed_area(ring):
    x = np.array([p[0] for p in ring])
    y = np.array([p[1] for p in ring])
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


class TestGeoJSON:
    def test_validates_and_holds_points_and_ellipses(self, tmp_path):
        store, (a, b, c) = _store_with_alerts(tmp_path)
        alerts, _ = store.list()
        gj = alerts_geojson(alerts)
        jsonschema.validate(json.loads(json.dumps(gj)), GEOJSON_SCHEMA)  # JSON round trip: plain types only
        points = {f["id"]: f for f in gj["features"] if f["geometry"]["type"] == "Point"}
        polys = {f["properties"]["alert_id"]: f for f in gj["features"] if f["geometry"]["type"] == "Polygon"}
        assert set(points) == {a.id, b.id} and set(polys) == {a.id, b.id} and gj["unlocated"] == 1
        lon, lat = points[a.id]["geometry"]["coordinates"]
        assert (lat, lon) == pytest.approx((a.location["lat"], a.location["lon"]), abs=1e-7)
        assert points[a.id]["properties"]["label"].startswith("446.0813 MHz nfm_voice")
        for f in polys.values():
            ring = f["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and len(ring) >= 4
            assert _signed_area(ring) > 0  # counter-clockwise (RFC 7946 right-hand rule)
        store.close()

    def test_ellipse_ring_size_and_bearing(self):
        loc = {"lat": 50.0, "lon": 10.0, "status": "located",
               "error_ellipse_m": {"semi_major": 100.0, "semi_minor": 25.0, "angle_deg": 0.0}}  # major axis north–south
        from detector.localization import LocalFrame

        ring = ellipse_ring(loc)
        x, y = LocalFrame(50.0, 10.0).to_enu([p[1] for p in ring], [p[0] for p in ring])
        assert np.ptp(y) == pytest.approx(200.0, rel=1e-3) and np.ptp(x) == pytest.approx(50.0, rel=1e-3)
        assert ellipse_ring({"lat": 50.0, "lon": 10.0, "status": "located",
                             "error_ellipse_m": {"semi_major": None, "semi_minor": None, "angle_deg": 0}}) == []

    def test_without_ellipses_and_empty(self):
        assert alerts_geojson([]) == {"type": "FeatureCollection", "features": [], "unlocated": 0}
        jsonschema.validate(alerts_geojson([]), GEOJSON_SCHEMA)
        one = {"id": "A-x", "site": "S", "status": "located", "severity": "high", "center_hz": 1e8, "classification": "carrier",
               "location": {"lat": -33.9, "lon": 151.2, "status": "located",
                            "error_ellipse_m": {"semi_major": 10, "semi_minor": 5, "angle_deg": 30}}}
        gj = alerts_geojson([one], ellipses=False)
        jsonschema.validate(gj, GEOJSON_SCHEMA)
        assert [f["geometry"]["type"] for f in gj["features"]] == ["Point"]

    def test_schema_rejects_swapped_coordinates(self):
        bad = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [10.0, 95.0]},
                                                          "properties": {"kind": "error_ellipse_95", "alert_id": "A"}}]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, GEOJSON_SCHEMA)


class TestKML:
    def test_parses_and_holds_the_points(self, tmp_path):
        store, (a, b, c) = _store_with_alerts(tmp_path)
        alerts, _ = store.list()
        data = alerts_kml(alerts, name="site S")
        assert data.startswith(b"<?xml")
        root = ET.fromstring(data)
        ns = {"k": KML_NS}
        assert root.tag == f"{{{KML_NS}}}kml"
        assert root.find("k:Document/k:name", ns).text == "site S"
        placemarks = root.findall(".//k:Placemark", ns)
        points = {p.get("id"): p.find("k:Point/k:coordinates", ns).text for p in placemarks if p.find("k:Point", ns) is not None}
        assert set(points) == {a.id, b.id}
        for al in (a, b):
            lon, lat, alt = map(float, points[al.id].split(","))
            assert (lat, lon, alt) == pytest.approx((al.location["lat"], al.location["lon"], 0.0), abs=1e-7)
        pa = next(p for p in placemarks if p.get("id") == a.id)
        assert "446.0813 MHz nfm_voice" in pa.find("k:name", ns).text
        assert pa.find("k:styleUrl", ns).text == "#alert-high"
        data_fields = {d.get("name"): d.find("k:value", ns).text for d in pa.findall("k:ExtendedData/k:Data", ns)}
        assert data_fields["id"] == a.id and data_fields["location_status"] == "located"
        assert pa.find("k:TimeSpan/k:begin", ns).text.endswith("Z")
        rings = root.findall(".//k:Polygon/k:outerBoundaryIs/k:LinearRing/k:coordinates", ns)
        assert len(rings) == 2
        for r in rings:
            pts = r.text.split()
            assert pts[0] == pts[-1] and len(pts) > 10
        store.close()


class TestEvidencePack:
    def _alert_with_evidence(self, tmp_path):
        store = open_store(None, data_dir=tmp_path)
        a = store.apply_event(located_event("T1", location=sim_drive_readings().estimate.to_dict()), site="S", run_id="r")
        fs, n = 250_000.0, 50_000
        t = np.arange(n) / fs
        x = (0.3 * np.exp(2j * np.pi * (20e3 * t + 2.5e3 / 1e3 * np.sin(2 * np.pi * 1e3 * t)))).astype(np.complex64)
        meta, data = sigmf_snippet(x, sample_rate_hz=fs, center_hz=446.06e6, annotations=[{"label": "T1 nfm_voice"}])
        store.add_evidence(a.id, "snippet.sigmf-meta", meta, "application/json")
        store.add_evidence(a.id, "snippet.sigmf-data", data, "application/octet-stream")
        store.add_evidence(a.id, "audio.wav", nfm_audio_wav(x, sample_rate_hz=fs, offset_hz=20e3), "audio/wav")
        store.set_status(a.id, "acknowledged", "team 2 on the way", actor="test")
        return store, a

    def test_zip_holds_every_file_and_a_valid_manifest(self, tmp_path):
        store, a = self._alert_with_evidence(tmp_path)
        png = b"\x89PNG\r\n\x1a\nfake"
        data = evidence_pack(store, a.id, spectrum_png=png, waterfall_png=png + b"2", readings=sim_drive_readings().readings)
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = {n.split("/", 1)[1] for n in zf.namelist()}
        assert all(n.startswith(a.id + "/") for n in zf.namelist())
        assert names == {"alert.json", "history.json", "location.json", "snippet.sigmf-meta", "snippet.sigmf-data", "audio.wav",
                         "spectrum.png", "waterfall.png", "readings.csv", "MANIFEST.sha256"}
        files = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
        manifest = dict(reversed(line.split("  ", 1)) for line in files["MANIFEST.sha256"].decode().splitlines())
        assert set(manifest) == names - {"MANIFEST.sha256"}
        for name, digest in manifest.items():
            assert hashlib.sha256(files[name]).hexdigest() == digest
        # the store's own hashes, and SigMF's hash of its data
        for ev in store.get(a.id).evidence:
            assert manifest[ev["name"]] == ev["sha256"]
        meta = json.loads(files["snippet.sigmf-meta"])
        assert meta["global"]["core:sha512"] == hashlib.sha512(files["snippet.sigmf-data"]).hexdigest()
        assert files["audio.wav"][:4] == b"RIFF"
        loc = json.loads(files["location.json"])
        assert loc["status"] == "located" and loc["lat"] == a.location["lat"]
        hist = json.loads(files["history.json"])
        assert [h["status"] for h in hist][-1] == "acknowledged" and hist[-1]["reason"] == "team 2 on the way"
        rows = list(csv.DictReader(io.StringIO(files["readings.csv"].decode())))
        assert len(rows) == len(sim_drive_readings().readings) and set(rows[0]) == {"t_s", "lat", "lon", "power_db"}
        assert math.isfinite(float(rows[0]["power_db"]))
        # the same alert gives the same bytes
        assert evidence_pack(store, a.id, spectrum_png=png, waterfall_png=png + b"2",
                             readings=sim_drive_readings().readings) == data
        store.close()

    def test_without_readings_the_alert_row(self, tmp_path):
        store, a = self._alert_with_evidence(tmp_path)
        zf = zipfile.ZipFile(io.BytesIO(evidence_pack(store, a.id)))
        rows = list(csv.DictReader(io.StringIO(zf.read(f"{a.id}/readings.csv").decode())))
        assert len(rows) == 1 and rows[0]["alert_id"] == a.id and float(rows[0]["center_hz"]) == a.center_hz
        assert f"{a.id}/spectrum.png" not in zf.namelist()
        with pytest.raises(KeyError):
            evidence_pack(store, "A-none")
        store.close()

    def test_sim_alert_with_monitor_evidence(self):
        run = sim_run()
        a = target_alert(run)
        names = {e["name"] for e in a.evidence}
        assert {"snippet.sigmf-meta", "snippet.sigmf-data"} <= names  # audio.wav too when the track was narrow then
        tr = run.monitor.engine.all_tracks[a.track_id]
        zf = zipfile.ZipFile(io.BytesIO(evidence_pack(run.store, a.id, readings=tr.readings)))
        got = {n.split("/", 1)[1] for n in zf.namelist()}
        assert names <= got and "readings.csv" in got
        rows = list(csv.DictReader(io.StringIO(zf.read(f"{a.id}/readings.csv").decode())))
        assert len(rows) == len(tr.readings) > 100


def test_readings_csv_formats():
    assert readings_csv([(1.0, 50.0, 10.0, -30.5)]) == "t_s,lat,lon,power_db\n1.0,50.0,10.0,-30.5\n"
    assert readings_csv(None, {"id": "A-1", "center_hz": 1e6}).splitlines()[1].startswith("A-1,")


def test_sim_alerts_export_from_the_store():
    run = sim_run()
    alerts, _ = run.store.list(site=SITE)
    gj = alerts_geojson(alerts)
    jsonschema.validate(gj, GEOJSON_SCHEMA)
    with_loc = [a for a in alerts if a.location and a.location.get("lat") is not None]
    assert len([f for f in gj["features"] if f["properties"]["kind"] == "alert"]) == len(with_loc)
    root = ET.fromstring(alerts_kml(alerts))
    assert len(root.findall(f".//{{{KML_NS}}}Point")) == len(with_loc)
