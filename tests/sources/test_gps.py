"""GPS input: the real NMEA/GPX logs, synthetic edge cases, time alignment, specs."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone

import numpy as np
import pytest

from detector.core.errors import InputError
from detector.sources.gps import Fix, GpsTrack, parse_gps_spec, read_gpx, read_nmea
from tests._helpers import nmea


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------ real logs
# Counts verified by hand: an independent script (checksum by XOR, one epoch per distinct time of
# valid RMC 'A' / GGA quality > 0 sentences) and grep; see the notes per file.
REAL = {
    # Garmin Geko: CR/CRLF line ends, $GP + proprietary $PGRM*; 16 RMC 'V' + 14 GGA quality 0.
    "20100411_Geko_Regensburg.txt": dict(n_lines=9931, n_fixes=774, skipped={"no_fix": 30},
                                         first=utc(2010, 4, 11, 16, 57, 44), last=utc(2010, 4, 11, 17, 24, 0),
                                         first_pos=(49.0265667, 12.0652717)),
    # u-blox ANTARIS: comment lines, 4 × (RMC V, GGA 0, empty ZDA) indoors, sections out of time order.
    "bt451.log": dict(n_lines=156, n_fixes=14, skipped={"comment": 12, "no_fix": 12},
                      first=utc(2009, 12, 9, 14, 33, 6), last=utc(2009, 12, 9, 15, 25, 8, 500000), first_pos=None),
    # B&G chartplotter: many talkers ($SD, $WI, $II), $GPGLC unknown to pynmea2 (not an error).
    "bundg_zeus_9.log": dict(n_lines=5007, n_fixes=148, skipped={"comment": 8},
                             first=utc(2018, 8, 20, 9, 47, 36), last=utc(2018, 8, 20, 9, 50, 3), first_pos=None),
    # Firefly: every GGA has a wrong checksum (the quality field was blanked); RMC + ZDA are fine.
    "firefly-II.log": dict(n_lines=74, n_fixes=23, skipped={"checksum": 23, "comment": 5},
                           first=utc(2010, 7, 8, 0, 59, 47), last=utc(2010, 7, 8, 1, 0, 9),
                           first_pos=(37.26102667, -121.961181667)),
    # u-blox 8: $GN (multi-GNSS) RMC/GGA, $GL satellites, NMEA 4.1 nav-status field.
    "nl2008u.log": dict(n_lines=145, n_fixes=9, skipped={"comment": 18},
                        first=utc(2015, 10, 10, 9, 12, 32), last=utc(2015, 10, 10, 9, 34, 53),
                        first_pos=(48.217558333, 8.414495)),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_nmea_logs(real_dir, name):
    want = REAL[name]
    track = parse_gps_spec(str(real_dir / "gps" / name))
    rep = track.report
    assert rep.n_lines == want["n_lines"]
    assert rep.n_fixes == want["n_fixes"] == len(track)
    assert rep.skipped == want["skipped"]
    assert track.start == want["first"] and track.end == want["last"]
    assert np.all(np.diff(track.t_s) > 0)
    if want["first_pos"]:
        assert (track.lat[0], track.lon[0]) == pytest.approx(want["first_pos"], abs=1e-7)
    fixes, _ = read_nmea(real_dir / "gps" / name)
    assert all(f.t.tzinfo is not None and f.t.utcoffset().total_seconds() == 0 for f in fixes)


def test_real_nmea_talkers(real_dir):
    fixes, _ = read_nmea(real_dir / "gps" / "nl2008u.log")
    assert fixes[0].source == "GNRMC+GNGGA"
    assert fixes[0].alt_m == pytest.approx(765.8) and fixes[0].hdop == pytest.approx(0.7)


def test_real_log_without_any_fix_is_refused(real_dir):
    """TN-200 (SiRF-II): 19 RMC status V and 19 GGA quality 0 (position 36000.0000 N)."""
    with pytest.raises(InputError, match=r"tn200.log: no valid GPS fix .*comment 11, no_fix 38"):
        parse_gps_spec(str(real_dir / "gps" / "tn200.log"))


def test_real_gpx(real_dir):
    track = parse_gps_spec(str(real_dir / "gps" / "around-visnjan-with-car.gpx"))
    assert len(track) == track.report.n_fixes == 104
    assert track.report.skipped == {}
    assert track.start == utc(2020, 12, 18, 6, 15, 50) and track.end == utc(2020, 12, 18, 6, 24, 24)
    assert (track.lat[0], track.lon[0]) == pytest.approx((45.2735188510, 13.7142099626))


def test_every_real_gps_file_is_covered(real_dir):
    names = {p.name for p in (real_dir / "gps").iterdir()}
    assert names == set(REAL) | {"tn200.log", "around-visnjan-with-car.gpx"}


# ------------------------------------------------------------------------------- synthetic NMEA

def test_bad_lines_are_counted():
    lines = [
        "# a comment",
        "",
        nmea("GPRMC,120000.00,A,5000.0000,N,01000.0000,E,0.0,0.0,060524,,,A"),
        nmea("GPGGA,120000.00,5000.0000,N,01000.0000,E,1,08,0.9,100.0,M,47.0,M,,"),
        nmea("GPRMC,120001.00,A,5000.0060,N,01000.0000,E,0.0,0.0,060524,,,A")[:-1] + "0",  # checksum
        "$GPGGA,120001.00,5000.0060,N,0100",  # truncated: no checksum
        "garbage \x00\x01",
        nmea("GPRMC,120002.00,V,,,,,,,060524,,,N"),  # no fix
        nmea("GLGSV,1,1,01,65,10,100,30"),  # other sentence
        nmea("GNRMC,120003.00,A,5000.0120,N,01000.0000,E,0.0,0.0,060524,,,A"),
        nmea("GPRMC,120004.00,A,9100.0000,N,01000.0000,E,0.0,0.0,060524,,,A"),  # lat 91°
    ]
    fixes, rep = read_nmea(lines, name="mixed")
    assert [f.t for f in fixes] == [utc(2024, 5, 6, 12, 0, 0), utc(2024, 5, 6, 12, 0, 3)]
    assert fixes[0].alt_m == 100.0 and fixes[0].source == "GPRMC+GPGGA"
    assert fixes[1].lat == pytest.approx(50.0002) and fixes[1].source == "GNRMC"
    assert rep.skipped == {"comment": 1, "blank": 1, "checksum": 1, "no_checksum": 1, "garbage": 1, "no_fix": 1,
                           "bad_position": 1}
    assert rep.n_other == 1 and rep.n_lines == len(lines) and rep.n_fixes == 2


def test_gga_without_date_is_refused_unless_date_given():
    lines = [nmea(f"GPGGA,2359{s:02d}.0,5000.0000,N,01000.0000,E,1,08,0.9,100.0,M,47.0,M,,") for s in (58, 59)]
    lines.append(nmea("GPGGA,000000.0,5000.0000,N,01000.0000,E,1,08,0.9,100.0,M,47.0,M,,"))
    with pytest.raises(InputError, match="no date"):
        read_nmea(lines)
    fixes, _ = read_nmea(lines, date="2024-05-06")
    assert [f.t for f in fixes] == [utc(2024, 5, 6, 23, 59, 58), utc(2024, 5, 6, 23, 59, 59), utc(2024, 5, 7, 0, 0, 0)]
    fixes, _ = read_nmea(lines, date=date(2024, 5, 6))
    assert len(fixes) == 3
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        read_nmea(lines, date="6.5.2024")


def test_gga_takes_dates_from_rmc_before_and_after():
    lines = [
        nmea("GPGGA,235958.0,5000.0000,N,01000.0000,E,1,08,0.9,1.0,M,47.0,M,,"),  # before the first date: day before
        nmea("GPRMC,000001.0,A,5000.0000,N,01000.0000,E,0.0,0.0,070524,,,A"),
        nmea("GPGGA,000002.0,5000.0000,N,01000.0000,E,1,08,0.9,1.0,M,47.0,M,,"),
    ]
    fixes, _ = read_nmea(lines)
    assert [f.t for f in fixes] == [utc(2024, 5, 6, 23, 59, 58), utc(2024, 5, 7, 0, 0, 1), utc(2024, 5, 7, 0, 0, 2)]


def test_zda_gives_the_date():
    lines = [nmea("GPZDA,101500.00,06,05,2024,00,00"),
             nmea("GPGGA,101500.00,5000.0000,N,01000.0000,E,1,08,0.9,1.0,M,47.0,M,,")]
    fixes, rep = read_nmea(lines)
    assert fixes[0].t == utc(2024, 5, 6, 10, 15, 0)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_nmea(tmp_path / "nope.nmea")
    (tmp_path / "empty.nmea").write_text("")
    with pytest.raises(InputError, match="no valid GPS fix"):
        read_nmea(tmp_path / "empty.nmea")


# ---------------------------------------------------------------------------------------- GPX

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
{points}
</trkseg></trk></gpx>"""


def gpx_file(tmp_path, times, name="t.gpx"):
    pts = "\n".join(f'<trkpt lat="{50 + i * 1e-4}" lon="10.0"><ele>100</ele>'
                    + (f"<time>{t}</time>" if t else "") + "</trkpt>" for i, t in enumerate(times))
    path = tmp_path / name
    path.write_text(GPX.format(points=pts))
    return path


def test_gpx_all_1901_is_refused(tmp_path):
    """A receiver without time wrote 1901-12-13T20:45:52Z (−2³¹ s): never used as a real time."""
    path = gpx_file(tmp_path, ["1901-12-13T20:45:52Z"] * 5)
    with pytest.raises(InputError, match=r"all 5 GPX times are invalid \(1901-12-13 \(5\)"):
        parse_gps_spec(str(path))


def test_gpx_some_invalid_times_skipped(tmp_path):
    path = gpx_file(tmp_path, ["1901-12-13T20:45:52Z", "2024-05-06T10:00:00Z", "2024-05-06T12:00:01+02:00", None])
    fixes, rep = read_gpx(path)
    assert [f.t for f in fixes] == [utc(2024, 5, 6, 10, 0, 0), utc(2024, 5, 6, 10, 0, 1)]
    assert rep.skipped == {"invalid_time": 1, "no_time": 1}


def test_gpx_naive_time_is_utc_and_noted(tmp_path):
    fixes, rep = read_gpx(gpx_file(tmp_path, ["2024-05-06T10:00:00"]))
    assert fixes[0].t == utc(2024, 5, 6, 10, 0, 0)
    assert any("UTC" in n for n in rep.notes)


def test_gpx_not_xml(tmp_path):
    path = tmp_path / "bad.gpx"
    path.write_text("this is not xml")
    with pytest.raises(InputError, match="not a readable GPX"):
        read_gpx(path)


# ------------------------------------------------------------------------------ track and specs

def test_track_interpolation_and_age():
    fixes = [Fix(utc(2024, 5, 6, 10, 0, s), 50.0 + s * 1e-4, 10.0) for s in (0, 2, 20)]
    tr = GpsTrack.from_fixes(fixes)
    t0 = fixes[0].t.timestamp()
    assert tr.at(t0 + 1.0) == pytest.approx((50.0001, 10.0))
    assert tr.at(fixes[0].t) == pytest.approx((50.0, 10.0))
    assert tr.at(t0 + 11.0) is None  # 9 s from the nearest fix
    assert tr.at(t0 + 11.0, max_age_s=10.0) is not None
    assert tr.at(t0 + 4.0) is not None  # 2 s after a fix
    assert tr.at(t0 - 1.0) is None and tr.at(t0 + 21.0) is None  # outside the track
    lat, lon = tr.interpolate(np.array([t0 - 1, t0 + 1, t0 + 11]))
    assert np.isnan(lat[0]) and lat[1] == pytest.approx(50.0001) and np.isnan(lat[2])
    with pytest.raises(InputError):
        tr.at(datetime(2024, 5, 6, 10, 0, 1))  # naive datetime


def test_track_sorts_and_drops_duplicates():
    fixes = [Fix(utc(2024, 5, 6, 10, 0, s), 50.0, 10.0 + s) for s in (5, 1, 1, 3)]
    tr = GpsTrack.from_fixes(fixes)
    assert list(tr.t_s - tr.t_s[0]) == [0.0, 2.0, 4.0]


def test_fix_requires_timezone_and_converts_to_utc():
    from datetime import timedelta

    with pytest.raises(ValueError):
        Fix(datetime(2024, 5, 6, 10, 0), 50.0, 10.0)
    f = Fix(datetime(2024, 5, 6, 12, 0, tzinfo=timezone(timedelta(hours=2))), 50.0, 10.0)
    assert f.t == utc(2024, 5, 6, 10, 0) and f.t.utcoffset().total_seconds() == 0


def test_fixed_spec():
    tr = parse_gps_spec("fixed:50.0,10.0")
    assert tr.is_fixed and tr.at(0.0) == (50.0, 10.0) and tr.at(2e9) == (50.0, 10.0)
    for bad in ("fixed:50.0", "fixed:abc,10", "fixed:95,10"):
        with pytest.raises(InputError):
            parse_gps_spec(bad)


def test_unknown_spec():
    with pytest.raises(InputError, match="unknown GPS spec"):
        parse_gps_spec("track.kml")


def test_gpsd_without_library_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gps", None)  # import → ImportError
    monkeypatch.setitem(sys.modules, "gpsd", None)
    with pytest.raises(InputError, match="pip install gps"):
        parse_gps_spec("gpsd:")
    with pytest.raises(InputError, match="gpsd-py3"):
        parse_gps_spec("gpsd:localhost:2947")


def test_speed_and_fix_share():
    """Issue #24: the ground speed the interpolation assumes, and the share of times with a fix."""
    import numpy as np

    from detector.localization import LocalFrame
    from detector.sources.gps import GpsTrack

    fr = LocalFrame(50.0, 10.0)
    t = 1715000000.0 + np.arange(0.0, 11.0)
    lat, lon = fr.to_geodetic(20.0 * np.arange(11.0), np.zeros(11))  # 20 m/s east
    tr = GpsTrack(t, lat, lon)
    v = tr.speed_mps(t[0] + np.array([0.5, 3.2, 9.9, 20.0]))
    assert np.allclose(v[:3], 20.0, rtol=1e-3) and np.isnan(v[3])
    assert tr.fix_share(t[0] + np.array([1.0, 5.0, 30.0, 40.0])) == 0.5
    assert GpsTrack.fixed_position(50.0, 10.0).speed_mps([1.0, 2.0]).tolist() == [0.0, 0.0]
