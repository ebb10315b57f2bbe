"""``examwatch locate --bearings FILE`` (issue #22 item 1): KrakenSDR and plain bearings fused
with the readings, the heading error option, and errors with FILE:LINE and exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

from tests._bearing_files import ORIGIN, TARGET, kraken_line, loop_bearings, write_kraken
from tests.localization.test_cli_locate import iso, loop_readings, run_error, run_json, write_csv


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("b")
    t, lat, lon, p = loop_readings()
    readings = write_csv(d / "r.csv", ["time", "lat", "lon", "power_dbm"],
                         [[iso(a), f"{b:.7f}", f"{c:.7f}", f"{e:.2f}"] for a, b, c, e in zip(t, lat, lon, p)])
    x, y, heading, rel = loop_bearings(16.0, 5.0, 2.0, seed=4)
    kraken = write_kraken(d / "mydata.csv", x, y, heading, rel,
                          extra=kraken_line(1_717_660_900_000, 10.0, 12.0, -60.0, 446006250, 0.0, 0.0, 0.0))
    blat, blon = ORIGIN.to_geodetic(x, y)
    plain = write_csv(d / "b.csv", ["time", "lat", "lon", "heading", "bearing_deg", "confidence", "frequency"],
                      [[1717660800 + i, f"{a:.7f}", f"{b:.7f}", f"{h:.1f}", f"{r:.2f}", 1.0, 446006250]
                       for i, (a, b, h, r) in enumerate(zip(blat, blon, heading, rel))])
    return readings, kraken, plain


def _error_m(out):
    x, y = ORIGIN.to_enu(np.array([out["lat"]]), np.array([out["lon"]]))
    return float(np.hypot(x[0] - TARGET[0], y[0] - TARGET[1]))


@pytest.mark.parametrize("which", [1, 2])
def test_bearings_fused_from_kraken_and_plain_files(files, which):
    readings, bearings = files[0], files[which]
    rss = run_json([str(readings)])
    out = run_json([str(readings), "--bearings", str(bearings)])
    assert out["status"] == "located" and out["method"] == "gls+bearings"
    # RSS alone: ≈ 15 m off with a 28 m bound; fused: within a few metres, bound ≈ 3 m (THEORY §2.5)
    assert _error_m(out) < 6.0 and _error_m(rss) > 2 * _error_m(out)
    assert out["crlb_rmse_m"] < 4.0 and rss["crlb_rmse_m"] > 20.0  # the bound of the combination
    info = out["input"]["bearings"]
    assert info["n_used"] + info["n_outliers"] == 52 and info["n_low_quality"] == 0
    assert info["format"] == ("kraken" if which == 1 else "plain")
    assert info["n_without_fix"] == (1 if which == 1 else 0)
    assert info["frequency_hz"] == 446006250 and info["heading_sigma_deg"] == 2.0


def test_heading_sigma_widens_the_bound(files):
    readings, kraken, _ = files
    base = run_json([str(readings), "--bearings", str(kraken)])
    loose = run_json([str(readings), "--bearings", str(kraken), "--heading-sigma-deg", "10"])
    assert loose["crlb_rmse_m"] > 1.5 * base["crlb_rmse_m"]
    assert loose["input"]["bearings"]["heading_sigma_deg"] == 10.0


def test_text_output_names_the_bearings(files):
    from typer.testing import CliRunner

    from detector.cli import app

    r = CliRunner().invoke(app, ["locate", str(files[0]), "--bearings", str(files[1])])
    assert r.exit_code == 0, r.output
    assert "method gls+bearings" in r.stdout and "bearings: " in r.stdout and "heading σ 2°" in r.stdout


def test_malformed_bearings_exit_2_with_file_and_line(files, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(kraken_line(1_717_660_800_000, 10, 5, -60, 446e6, 50, 10, 0) + "1717660801000, 12, 5\n")
    code, err = run_error(monkeypatch, capsys, [str(files[0]), "--bearings", str(bad)])
    assert code == 2 and "bad.csv:2:" in err and "Traceback" not in err
    code, err = run_error(monkeypatch, capsys, [str(files[0]), "--bearings", str(tmp_path / "none.csv")])
    assert code == 2 and "not found" in err
    code, err = run_error(monkeypatch, capsys, [str(files[0]), "--bearings", str(files[1]), "--heading-sigma-deg", "-1"])
    assert code == 2 and "--heading-sigma-deg" in err


def test_several_frequencies_need_a_choice(files, tmp_path, monkeypatch, capsys):
    x, y, heading, rel = loop_bearings(16.0, 5.0, 0.0, seed=5)
    two = write_kraken(tmp_path / "two.csv", x, y, heading, rel)
    with open(two, "a") as fh:  # a second VFO elsewhere in the band: bearings toward another place
        fh.write(kraken_line(1_717_660_900_000, 200.0, 12.0, -60.0, 446_093_750, 50.0001, 10.0001, 0.0))
    code, err = run_error(monkeypatch, capsys, [str(files[0]), "--bearings", str(two)])
    assert code == 2 and "2 frequencies" in err and "--bearing-freq-hz" in err
    out = run_json([str(files[0]), "--bearings", str(two), "--bearing-freq-hz", "446006250"])
    assert out["input"]["bearings"]["n_used"] + out["input"]["bearings"]["n_outliers"] == 52
    assert _error_m(out) < 10.0
    code, err = run_error(monkeypatch, capsys, [str(files[0]), "--bearings", str(two), "--bearing-freq-hz", "150e6"])
    assert code == 2 and "no bearing" in err
