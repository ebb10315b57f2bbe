"""Bearing files (issue #22 item 1): KrakenSDR DoA lines and plain CSV / JSON, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detector.core.errors import InputError
from detector.sources.bearings import KRAKEN_FULL_CONFIDENCE_DB, read_bearings
from tests._bearing_files import T0_MS, kraken_line


def test_kraken_lines_as_krakensdr_doa_writes_them(tmp_path):
    path = tmp_path / "mydata.csv"
    path.write_text(
        kraken_line(T0_MS, 350.0, 12.5, -60.0, 446006250, 50.0008, 10.0003, 90.0)
        + kraken_line(T0_MS + 1000, 20.0, 4.0, -70.0, 446006250, 50.0009, 10.0004, 350.5)
        + kraken_line(T0_MS + 2000, 20.0, 4.0, -70.0, 446006250, 0.0, 0.0, 0.0)  # no GPS fix
        + kraken_line(T0_MS + 3000, 0.0, 0.0, -70.0, 446006250, 50.001, 10.0, 0.0))
    b = read_bearings(path)
    assert b.fmt == "kraken" and b.n == 3 and b.n_skipped == 1
    np.testing.assert_allclose(b.time_s, (T0_MS + np.array([0, 1000, 3000])) / 1000.0)
    np.testing.assert_allclose(b.bearing_deg, [350.0, 20.0, 0.0])
    np.testing.assert_allclose(b.heading_deg, [90.0, 350.5, 0.0])
    np.testing.assert_allclose(b.true_bearing_deg(), [80.0, 10.5, 0.0])  # heading + relative, mod 360
    np.testing.assert_allclose(b.quality, [1.0, 4.0 / KRAKEN_FULL_CONFIDENCE_DB, 0.0])
    np.testing.assert_allclose(b.confidence, [12.5, 4.0, 0.0])
    np.testing.assert_allclose(b.lat, [50.0008, 50.0009, 50.001])
    assert b.relative.all() and b.frequencies_hz() == [446006250.0]
    np.testing.assert_array_equal(b.line, [1, 2, 4])


def test_plain_csv(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("time,lat,lon,heading,bearing_deg,confidence,frequency\n"
                    "2024-06-06T08:00:00Z,50.0001,10.0002,45,10,0.5,446006250\n"
                    "1717660801.5,50.0002,10.0003,,300,,\n")
    b = read_bearings(path)
    assert b.fmt == "plain" and b.n == 2
    assert b.time_s[0] == pytest.approx(1717660800.0) and b.time_s[1] == pytest.approx(1717660801.5)
    np.testing.assert_allclose(b.true_bearing_deg(), [55.0, 300.0])  # no heading: already true
    np.testing.assert_array_equal(b.relative, [True, False])
    np.testing.assert_allclose(b.quality, [0.5, 1.0])
    assert b.frequency_hz[0] == 446006250.0 and np.isnan(b.frequency_hz[1])


def test_plain_json_array_and_lines(tmp_path):
    recs = [{"time": "2024-06-06T08:00:00+02:00", "lat": 50.0, "lon": 10.0, "heading": 270, "bearing_deg": 100,
             "confidence": 0.9, "frequency": 446.1e6},
            {"time": 1717660900, "lat": 50.001, "lon": 10.001, "heading": None, "bearing_deg": 5}]
    arr = tmp_path / "b.json"
    arr.write_text(json.dumps(recs, indent=2))
    lines = tmp_path / "b.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    for path in (arr, lines):
        b = read_bearings(path)
        assert b.n == 2
        assert b.time_s[0] == pytest.approx(1717653600.0)  # 08:00+02:00 = 06:00Z
        np.testing.assert_allclose(b.true_bearing_deg(), [10.0, 5.0])
        np.testing.assert_allclose(b.quality, [0.9, 1.0])
    assert read_bearings(arr).line.tolist() == [2, 11]
    assert read_bearings(lines).line.tolist() == [1, 2]


@pytest.mark.parametrize("name, text, where, what", [
    ("k.csv", kraken_line(T0_MS, 10, 5, -60, 446e6, 50, 10, 0) + "1717660800000, 10, 5, -60\n", "k.csv:2:", "at least 17"),
    ("k.csv", kraken_line(T0_MS, 10, 5, -60, 446e6, 50, 10, 0).replace(", 10, 5,", ", ten, 5,", 1), "k.csv:1:",
     "bearing 'ten' is not a number"),
    ("k.csv", kraken_line(1717660800, 10, 5, -60, 446e6, 50, 10, 0), "k.csv:1:", "milliseconds"),
    ("k.csv", kraken_line(T0_MS, 10, 5, -60, 446e6, 95, 10, 0), "k.csv:1:", "latitude 95"),
    ("p.csv", "time,lat,lon,bearing_deg\n2024-06-06T08:00:00Z,50,10,10\n2024-06-06T08:00:01,50,10,10\n", "p.csv:3:",
     "no time zone"),
    ("p.csv", "time,lat,lon,heading,bearing_deg,confidence\n1,50,10,0,10,12\n", "p.csv:2:", "confidence 12 is outside 0..1"),
    ("p.csv", "time,lat,lon,heading,bearing_deg\n\n# a comment\n1,50,10,0,\n", "p.csv:4:", "bearing_deg is empty"),
    ("p.csv", "time,lat,bearing_deg\n1,50,10\n", "p.csv:1:", "missing lon"),
    ("p.json", '[\n {"time": 1, "lat": 50, "lon": 10, "bearing_deg": 1},\n {"time": 2, "lat": 50,\n', "p.json:", "not valid JSON"),
    ("p.json", '[\n {"time": 1, "lat": 50, "lon": 10, "bearing_deg": 1},\n {"time": 2, "lat": 50, "lon": 10}\n]', "p.json:3:",
     "lacks bearing_deg"),
    ("p.jsonl", '{"time": 1, "lat": 50, "lon": 10, "bearing_deg": 1}\n{"time": 2, "lat"\n', "p.jsonl:2:", "not valid JSON"),
])
def test_malformed_files_name_file_and_line(tmp_path, name, text, where, what):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        read_bearings(path)
    assert str(exc.value).startswith(where) and what in str(exc.value), str(exc.value)


def test_missing_empty_and_fixless_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_bearings(tmp_path / "none.csv")
    (tmp_path / "e.csv").write_text("  \n")
    with pytest.raises(InputError, match="is empty"):
        read_bearings(tmp_path / "e.csv")
    (tmp_path / "z.csv").write_text(kraken_line(T0_MS, 10, 5, -60, 446e6, 0.0, 0.0, 0))
    with pytest.raises(InputError, match=r"no bearing with a GPS fix \(1 KrakenSDR lines at 0, 0\)"):
        read_bearings(tmp_path / "z.csv")
