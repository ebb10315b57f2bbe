"""``examwatch locate``: JSON shape, GPS matching, and clear errors (exit 2)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import detector.cli.locate  # noqa: F401  (registers the command on the app)
from detector.cli import app, main
from detector.localization import LocalFrame, PathLossModel, shadowing_cov
from tests._helpers import nmea

runner = CliRunner()
ORIGIN = LocalFrame(50.0, 10.0)
T0 = 1715000000.0  # 2024-05-06T12:53:20Z
REQUIRED = {"lat", "lon", "error_ellipse_m", "cep50_m", "crlb_rmse_m", "status", "method", "n_readings"}


def loop_readings(seed=3, step=2.0):
    wp = np.array([(-120, -90), (120, -90), (120, 90), (-120, 90), (-120, -90)], float)
    pts = np.concatenate([a + (b - a) * (np.arange(k) / k)[:, None]
                          for a, b in zip(wp[:-1], wp[1:]) for k in [int(round(np.linalg.norm(b - a) / step))]])
    x, y = pts[:, 0], pts[:, 1]
    rng = np.random.default_rng(seed)
    cov = shadowing_cov(x, y, PathLossModel(measurement_db=1.0))
    p = -30 - 30 * np.log10(np.hypot(x - 8, y + 6)) + np.linalg.cholesky(cov) @ rng.standard_normal(x.size)
    lat, lon = ORIGIN.to_geodetic(x, y)
    t = T0 + 0.25 * np.arange(x.size)
    return t, lat, lon, p


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def iso(ts):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_json(args):
    r = runner.invoke(app, ["locate", *args, "--json"])
    assert r.exit_code == 0, (r.output, r.exception)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def run_error(monkeypatch, capsys, args):
    """Through the console entry point: exit code and the one stderr line."""
    monkeypatch.setattr(sys, "argv", ["examwatch", "locate", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    assert out.out == ""
    return exc.value.code, out.err


def test_json_with_lat_lon_columns(tmp_path):
    t, lat, lon, p = loop_readings()
    path = write_csv(tmp_path / "r.csv", ["time", "lat", "lon", "power_dbm"],
                     [[iso(a), f"{b:.7f}", f"{c:.7f}", f"{d:.2f}"] for a, b, c, d in zip(t, lat, lon, p)])
    out = run_json([str(path)])
    assert REQUIRED <= set(out)
    assert set(out["error_ellipse_m"]) == {"semi_major", "semi_minor", "angle_deg"}
    assert out["status"] == "located" and out["method"] == "gls" and out["n_readings"] == len(t)  # the default since #22
    x, y = ORIGIN.to_enu(np.array([out["lat"]]), np.array([out["lon"]]))
    assert np.hypot(x[0] - 8, y[0] + 6) < 60
    assert out["model"] == {"path_loss_exponent": 3.0, "exponent_source": "default", "shadowing_db": 6.0,
                            "decorrelation_m": 30.0, "power_unit": "dBm"}
    assert out["input"] == {"n_rows": len(t), "n_nan_rows": 0, "n_without_gps_fix": 0}


def test_options_and_human_output(tmp_path):
    t, lat, lon, p = loop_readings()
    path = write_csv(tmp_path / "r.csv", ["Time", "LAT", "lon", "power_dbfs"],
                     [[f"{a:.2f}", b, c, d - 40] for a, b, c, d in zip(t, lat, lon, p)])
    out = run_json([str(path), "--path-loss-exponent", "3.2", "--shadowing-db", "8", "--decorrelation-m", "50",
                    "--method", "grid"])
    assert out["model"]["path_loss_exponent"] == 3.2 and out["model"]["exponent_source"] == "given"
    assert out["model"]["power_unit"] == "dBFS" and out["method"] == "grid"
    r = runner.invoke(app, ["locate", str(path)])
    assert r.exit_code == 0
    assert "status located" in r.stdout and "95 % ellipse" in r.stdout
    assert "model: log-distance, n 3.00 (default), shadowing 6 dB, decorrelation 30 m" in r.stdout


def dm(v, lat):
    d = int(abs(v))
    m = (abs(v) - d) * 60
    return (f"{d:02d}{m:07.4f}" if lat else f"{d:03d}{m:07.4f}"), ("N" if v >= 0 else "S") if lat else ("E" if v >= 0 else "W")


def test_gps_nmea_track(tmp_path):
    """Readings without positions, matched by time to a 1 Hz NMEA log (with a corrupt line)."""
    t, lat, lon, p = loop_readings()
    lines = ["# 1 Hz log"]
    from datetime import datetime, timezone

    for k in range(0, len(t), 4):  # one fix per second
        ts = datetime.fromtimestamp(t[k], tz=timezone.utc)
        la, ns = dm(lat[k], True)
        lo, ew = dm(lon[k], False)
        lines.append(nmea(f"GNRMC,{ts:%H%M%S}.00,A,{la},{ns},{lo},{ew},15.5,90.0,{ts:%d%m%y},,,A"))
    lines.insert(10, lines[10][:-2] + "00")  # a checksum error
    (tmp_path / "track.nmea").write_text("\r\n".join(lines) + "\r\n")
    # the readings carry offsets (+02:00): the same instants
    from datetime import timedelta

    rows = [[(datetime.fromtimestamp(a, tz=timezone(timedelta(hours=2)))).isoformat(), f"{d:.2f}"] for a, d in zip(t, p)]
    rows[5][1] = "nan"
    path = write_csv(tmp_path / "r.csv", ["time", "power_dbm"], rows)
    out = run_json([str(path), "--gps", str(tmp_path / "track.nmea")])
    assert out["status"] == "located"
    assert out["input"]["n_nan_rows"] == 1
    assert out["n_readings"] + out["input"]["n_without_gps_fix"] == len(t) - 1
    assert out["input"]["n_without_gps_fix"] <= 4  # the last few readings are after the last fix
    x, y = ORIGIN.to_enu(np.array([out["lat"]]), np.array([out["lon"]]))
    assert np.hypot(x[0] - 8, y[0] + 6) < 60


def test_parked_with_fixed_gps(tmp_path):
    rows = [[f"{T0 + k:.1f}", f"{-80 + 0.1 * (k % 5):.1f}"] for k in range(50)]
    path = write_csv(tmp_path / "r.csv", ["time", "power_dbm"], rows)
    out = run_json([str(path), "--gps", "fixed:50.0,10.0"])
    assert out["status"] == "not_localizable" and "parked" in out["reason"]
    assert out["lat"] == pytest.approx(50.0) and out["radius_m"] >= 100
    r = runner.invoke(app, ["locate", str(path), "--gps", "fixed:50.0,10.0"])
    assert "reason: parked" in r.stdout and "coarse: within" in r.stdout


@pytest.mark.parametrize("header,rows,needle", [
    (None, None, "not found"),
    ([], [], "is empty"),
    (["time", "lat", "lon", "power_dbm"], [], "no rows"),
    (["time", "lat", "lon", "rssi"], [["1715000000", "50", "10", "-80"]], "power_dbm or power_dbfs (rssi"),
    (["t", "lat", "lon", "power_dbm"], [["1715000000", "50", "10", "-80"]], "needs a 'time' column"),
    (["time", "lat", "lon", "power_dbm"], [["1715000000", "50", "10", "nan"]] * 3, "all 3 rows have an empty or NaN"),
    (["time", "lat", "lon", "power_dbm"], [["1715000000", "50", "10", "1e-9"]] * 6, "linear power"),
    (["time", "lat", "lon", "power_dbm"], [["1715000000", "50", "10", "-300"]] * 6, "outside -200..60 dBm"),
    (["time", "lat", "lon", "power_dbfs"], [["1715000000", "50", "10", "20"]] * 6, "outside -200..6 dBFS"),
    (["time", "lat", "lon", "power_dbm"], [["2024-05-06T10:00:00", "50", "10", "-80"]], "no time zone"),
    (["time", "lat", "lon", "power_dbm"], [["yesterday", "50", "10", "-80"]], "neither ISO 8601"),
    (["time", "lat", "lon", "power_dbm"], [["1715000000", "50", "10", "loud"]], "is not a number"),
    (["time", "power_dbm"], [["1715000000", "-80"]], "pass --gps"),
    (["time", "lat", "power_dbm"], [["1715000000", "50", "-80"]], "only one of lat/lon"),
])
def test_input_errors_exit_2(tmp_path, monkeypatch, capsys, header, rows, needle):
    path = tmp_path / "r.csv"
    if header is not None:
        if header:
            write_csv(path, header, rows)
        else:
            path.write_text("")
    code, err = run_error(monkeypatch, capsys, [str(path), "--json"])
    assert code == 2
    assert needle in err.replace("\n", " ") and "Traceback" not in err


def test_gps_without_time_overlap_exit_2(tmp_path, monkeypatch, capsys):
    lines = [nmea(f"GPRMC,1000{s:02d}.00,A,5000.0000,N,01000.0000,E,0.0,0.0,060524,,,A") for s in range(10)]
    (tmp_path / "g.nmea").write_text("\n".join(lines))
    rows = [[f"{T0 + k:.1f}", "-80"] for k in range(20)]  # 12:53 UTC, the track is 10:00 UTC
    path = write_csv(tmp_path / "r.csv", ["time", "power_dbm"], rows)
    code, err = run_error(monkeypatch, capsys, [str(path), "--gps", str(tmp_path / "g.nmea"), "--json"])
    assert code == 2 and "no fix within 5 s of any reading" in err.replace("\n", " ")


@pytest.mark.parametrize("args,needle", [
    (["--shadowing-db", "0"], "--shadowing-db must be > 0"),
    (["--path-loss-exponent", "-1"], "--path-loss-exponent must be in"),
    (["--decorrelation-m", "-5"], "--decorrelation-m must be"),
    (["--method", "magic"], "--method must be one of"),
    (["--gps", "fixed:abc"], "fixed:LAT,LON"),
])
def test_option_errors_exit_2(tmp_path, monkeypatch, capsys, args, needle):
    path = write_csv(tmp_path / "r.csv", ["time", "power_dbm"], [[f"{T0 + k}", "-80"] for k in range(5)])
    code, err = run_error(monkeypatch, capsys, [str(path), *args])
    assert code == 2 and needle in err.replace("\n", " ")


def test_subprocess_stdout_is_one_json_line_and_fast(tmp_path):
    """The whole command in a fresh interpreter: one JSON line on stdout, under 5 s."""
    import time

    t, lat, lon, p = loop_readings()
    path = write_csv(tmp_path / "r.csv", ["time", "lat", "lon", "power_dbm"],
                     [[f"{a:.2f}", b, c, d] for a, b, c, d in zip(t, lat, lon, p)])
    code = ("import sys, detector.cli.locate; from detector.cli import main; "
            f"sys.argv = ['examwatch', 'locate', {str(path)!r}, '--json']; main()")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1 and REQUIRED <= set(json.loads(r.stdout))
    assert elapsed < 5.0
    bad = subprocess.run([sys.executable, "-c", code.replace(str(path), str(tmp_path / "missing.csv"))],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) <= 2


def test_method_nls_still_selectable(tmp_path):
    """``--method nls`` gives the estimator that was the default before issue #22; the CLI's
    default is the library's."""
    from detector.localization import DEFAULT_METHOD

    t, lat, lon, p = loop_readings()
    path = write_csv(tmp_path / "r.csv", ["time", "lat", "lon", "power_dbm"],
                     [[iso(a), f"{b:.7f}", f"{c:.7f}", f"{d:.2f}"] for a, b, c, d in zip(t, lat, lon, p)])
    out = run_json([str(path), "--method", "nls"])
    assert out["method"] == "nls" and out["status"] == "located"
    assert DEFAULT_METHOD == "gls"
    r = runner.invoke(app, ["locate", "--help"])
    assert "gls (default" in r.stdout
