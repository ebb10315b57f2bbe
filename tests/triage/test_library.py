"""The device library: schema, user entries, the matcher's score term and `examwatch library match`."""

from __future__ import annotations

import json

import numpy as np
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


def _store_with_alerts(tmp_path, real_dir):
    from datetime import datetime, timezone

    from detector.alerts import open_store, sigmf_snippet
    from tests.triage._real import load_iq

    store = open_store(None, data_dir=tmp_path)
    when = datetime(2026, 6, 7, 9, 0, tzinfo=timezone.utc)

    def event(track, center_hz, cls, bursts):
        return {"event": "new", "track_id": track, "alert": True, "center_hz": center_hz, "bandwidth_hz": 11000.0,
                "first_seen_s": 10.0, "last_seen_s": 40.0, "peak_dbfs": -40.0, "snr_db": 20.0, "excess_db": 15.0,
                "classification": cls, "bursts": bursts, "reasons": ["test"], "location": None, "severity": "high",
                "score_terms": {"excess": 1.5}, "f_lo_hz": center_hz - 5500, "f_hi_hz": center_hz + 5500, "duty_cycle": 0.5}

    remote = store.apply_event(event("T1", 433.839e6, "pulsed", 16), site="S", run_id="r1", when=when)
    earpiece = store.apply_event(event("T2", 151.2e6, "nfm_voice", 1), site="S", run_id="r1", when=when)
    entry = {"file": "iq/PT2262-01__gfile002.data", "dtype": "cu8", "header_bytes": 0}
    # as the monitor stores it (pipeline/evidence.py): the receiver's whole band, here 1 MS/s tuned
    # 200 kHz below 433.92 MHz (the remote is at 433.839 MHz, where the alert is), a steady carrier elsewhere
    from scipy import signal

    x = signal.resample_poly(load_iq(real_dir, entry)[: int(0.5 * 250e3)], 4, 1)
    t = np.arange(x.size) / 1e6
    x = 0.8 * x * np.exp(2j * np.pi * 200e3 * t) + 0.05 * np.exp(2j * np.pi * -300e3 * t)
    meta, data = sigmf_snippet(x, sample_rate_hz=1e6, center_hz=433.72e6)
    store.add_evidence(remote.id, "snippet.sigmf-meta", meta, "application/json")
    store.add_evidence(remote.id, "snippet.sigmf-data", data, "application/octet-stream")
    store.close()
    return remote.id, earpiece.id


def test_cli_match_alert_in_the_store(tmp_path, real_dir):
    from detector.app.decoders import decoder_path

    remote, earpiece = _store_with_alerts(tmp_path, real_dir)
    res = CliRunner().invoke(app, ["library", "match", remote, "--data-dir", str(tmp_path), "--json", "--attach"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["symbols"]["modulation"] == "OOK"
    assert out["observation"]["symbol_rate_baud"] == pytest.approx(1e6 / 504, rel=0.05)
    assert out["score_term"]["library"] < 0
    if decoder_path("rtl_433"):
        assert out["observation"]["models"] == ["Generic-Remote"] and out["whitelisted"] is True
    else:
        assert out["decoders"][0]["status"] == "not installed"
    from detector.alerts import open_store

    store = open_store(None, data_dir=tmp_path)
    try:
        attached = json.loads(store.evidence(remote, "triage.json")[0])
        assert attached["reason"] == out["reason"]
    finally:
        store.close()
    # the NFM voice alert has no IQ: compared on frequency, bandwidth and class; a cheating match
    res = CliRunner().invoke(app, ["library", "match", earpiece, "--data-dir", str(tmp_path), "--json"])
    out = json.loads(res.stdout)
    assert out["symbols"] is None and out["score_term"]["library"] == 3.0
    assert "exam earpiece transmitter, VHF NFM voice" in out["reason"]
    res = CliRunner().invoke(app, ["library", "match", "A-000000000000", "--data-dir", str(tmp_path)])
    assert res.exit_code != 0 and "no alert" in str(res.exception)


def test_site_device_library_key(tmp_path, real_dir):
    (tmp_path / "ours.toml").write_text('[[device]]\nname = "remote control / socket switch / door bell, 433 MHz OOK"\n'
                                        'verdict = "cheating"\nband_hz = ["433M", "435M"]\nmodulation = "OOK"\n'
                                        'burst = "bursts"\nweight = 5\n')
    (tmp_path / "s1.toml").write_text('name = "s1"\ndevice_library = "ours.toml"\n')
    rec = real_dir / "iq" / "PT2262-01__gfile002.data"
    res = CliRunner().invoke(app, ["library", "match", "--file", str(rec), "--format", "cu8", "--rate", "250k",
                                   "--center", "433.92M", "--json", "--no-decode", "--site", str(tmp_path / "s1.toml")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # the team's entry of the same name replaced the shipped benign one: now a cheating match
    assert out["score_term"]["library"] == 5.0 and "cheating device" in out["reason"]
