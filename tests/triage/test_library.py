"""The device library: schema, user entries, the matcher's score term and `examwatch library match`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from detector.cli import app
from detector.config.devices import Observation, compare, library_term, load_library
from detector.core.errors import InputError


def test_shipped_library_validates_and_has_both_verdicts():
    lib = load_library()
    verdicts = {e.verdict for e in lib.entries}
    assert verdicts == {"cheating", "benign"} and len(lib.entries) >= 8
    assert all(e.band_hz and e.weight > 0 for e in lib.entries)


def test_cheating_match_raises_the_score_with_its_reason():
    t = library_term(Observation(151.2e6, 12e3, "NFM", None, "continuous"), load_library())
    assert t.value == 3.0 and not t.whitelisted
    assert "exam earpiece transmitter, VHF NFM voice" in t.reason and "bandwidth" in t.reason


def test_decoded_benign_device_lowers_the_score_and_whitelists_by_model():
    t = library_term(Observation(433.92e6, None, "OOK", 1984.0, "bursts", None, ("Generic-Remote",)), load_library())
    assert t.value == -1.5 and t.whitelisted
    assert "decoded as Generic-Remote" in t.reason
    # the same burst without a decode: still benign-looking (OOK remote), but not whitelisted
    t2 = library_term(Observation(433.92e6, None, "OOK", 1984.0, "bursts"), load_library())
    assert t2.value < 0 and not t2.whitelisted


def test_out_of_band_or_mismatching_fields_do_not_match():
    lib = load_library()
    assert library_term(Observation(100e6, 200e3, "NFM", None, "continuous"), lib).value == 0.0
    vhf = next(e for e in lib.entries if "VHF NFM" in e.name)
    c = compare(Observation(151e6, 12e3, "FSK", 2400.0, "bursts"), vhf)
    assert not c.matched and {k.field: k.state for k in c.checks}["modulation"] == "mismatch"


def test_team_entries_add_and_replace(tmp_path):
    f = tmp_path / "ours.toml"
    f.write_text('[[device]]\nname = "school radio mic"\nverdict = "benign"\nband_hz = ["863M", "865M"]\n'
                 'modulation = "NFM"\nburst = "continuous"\nweight = 4\n')
    lib = load_library(f)
    t = library_term(Observation(864e6, 150e3, "NFM", None, "continuous"), lib)
    assert t.value == -4.0 and "school radio mic" in t.reason  # band, modulation, burst: all 3 fields match
    bad = tmp_path / "bad.toml"
    bad.write_text('[[device]]\nname = "x"\nverdict = "cheating"\nband_hz = ["5M", "1M"]\n')
    with pytest.raises(InputError, match="band_hz"):
        load_library(bad)
    bad.write_text('[[device]]\nname = "x"\nverdict = "cheating"\nband_hz = ["1M", "5M"]\nwhitelist = true\n')
    with pytest.raises(InputError, match="only a benign device"):
        load_library(bad)


def test_cli_match_on_a_real_remote(real_dir):
    rec = real_dir / "iq" / "PT2262-01__gfile002.data"
    res = CliRunner().invoke(app, ["library", "match", "--file", str(rec), "--format", "cu8", "--rate", "250k",
                                   "--center", "433.92M", "--json", "--no-decode"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["symbols"]["modulation"] == "OOK"
    assert out["observation"]["symbol_rate_baud"] == pytest.approx(1e6 / 504, rel=0.05)
    assert out["score_term"]["library"] < 0 and "benign" in out["reason"]
    assert {e["name"] for e in out["entries"]} >= {"weather station sensor, 433 MHz OOK"}


def test_cli_match_needs_an_alert_or_a_file(tmp_path):
    res = CliRunner().invoke(app, ["library", "match"])
    assert res.exit_code != 0
    res = CliRunner().invoke(app, ["library", "match", "A-123", "--data-dir", str(tmp_path)])
    assert res.exit_code != 0 and "no alert store" in str(res.exception)
