"""rtl_433 and multimon-ng at run time: found on PATH, their absence stated, garbage survived, and
rtl_433's models on the real captures equal to those in each ``FILE.rtl433.txt``."""

from __future__ import annotations

import ast
import json
import re
import stat

import numpy as np
import pytest

from detector.app import decoders
from detector.app.decoders import multimon_decode_iq, parse_multimon_lines, rtl433_decode_file, rtl433_decode_iq
from tests.conftest import data_root
from tests.triage._real import load_iq

HAVE_RTL433 = decoders.decoder_path("rtl_433") is not None
HAVE_MULTIMON = decoders.decoder_path("multimon-ng") is not None
needs_rtl433 = pytest.mark.skipif(not HAVE_RTL433, reason="rtl_433 not installed (.ci/install-decoders)")
needs_multimon = pytest.mark.skipif(not HAVE_MULTIMON, reason="multimon-ng not installed (.ci/install-decoders)")


def _reference_models(path) -> list[str]:
    m = re.search(r"^# summary \(default levels\):.*models=(\[.*\])", path.read_text(errors="replace"), re.M)
    return ast.literal_eval(m.group(1)) if m else []


def _decoded_cases():
    root = data_root() / "real"
    if not (root / "manifest.json").is_file():
        return [pytest.param(None, id="no-data")]
    entries = json.loads((root / "manifest.json").read_text())["iq"]
    return [pytest.param(e, id=e["file"].split("/")[-1]) for e in entries
            if _reference_models(root / (e["file"] + ".rtl433.txt"))]


@needs_rtl433
@pytest.mark.parametrize("entry", _decoded_cases())
def test_rtl433_models_match_the_reference_decode(entry, real_dir):
    if entry is None:
        pytest.skip("no manifest")
    want = _reference_models(real_dir / (entry["file"] + ".rtl433.txt"))
    fs, fc = entry["sample_rate_hz"], entry["center_hz"]
    if entry["container"] == "raw":
        res = rtl433_decode_file(real_dir / entry["file"], entry["dtype"], fs, fc)
    else:  # the WAV: its samples through a temporary cf32 file (rtl_433 22.11 reads no WAV)
        res = rtl433_decode_iq(load_iq(real_dir, entry), fs, fc)
    assert res.status == "decoded", res.detail
    assert sorted(res.models) == sorted(want)
    assert all(m.time_s is not None and m.time_s >= 0 for m in res.messages)


def test_absent_decoders_are_stated(monkeypatch):
    monkeypatch.setattr(decoders.shutil, "which", lambda name: None)
    a = rtl433_decode_file("/nonexistent.cu8", "cu8", 250e3, 433.92e6)
    b = multimon_decode_iq(np.zeros(1000, complex), 250e3)
    assert (a.status, b.status) == ("not installed", "not installed")
    assert "rtl_433 is not installed" in a.detail and "apt-get install rtl-433" in a.detail
    assert "multimon-ng is not installed" in b.detail
    assert rtl433_decode_iq(np.zeros(10, complex), 250e3, 433.92e6).status == "not installed"


def test_timeout_and_failure_are_results_not_exceptions(monkeypatch, tmp_path):
    slow = tmp_path / "rtl_433"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(decoders.shutil, "which", lambda name: str(slow))
    res = rtl433_decode_file(tmp_path / "x.cu8", "cu8", 250e3, 433.92e6, timeout_s=0.3)
    assert res.status == "timeout" and "0.3 s" in res.detail
    slow.write_text("#!/bin/sh\necho 'bad input' >&2\nexit 3\n")
    res = rtl433_decode_file(tmp_path / "x.cu8", "cu8", 250e3, 433.92e6)
    assert res.status == "failed" and "status 3" in res.detail and "bad input" in res.detail
    with pytest.raises(ValueError):
        rtl433_decode_file(tmp_path / "x", "wav", 250e3, 433.92e6)


@needs_rtl433
def test_rtl433_on_garbage_decodes_nothing(tmp_path):
    junk = tmp_path / "junk.cu8"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    res = rtl433_decode_file(junk, "cu8", 250e3, 433.92e6)
    assert res.status == "nothing decoded" and res.models == ()
    empty = tmp_path / "empty.cu8"
    empty.write_bytes(b"")
    assert rtl433_decode_file(empty, "cu8", 250e3, 433.92e6).status in ("nothing decoded", "failed")


@needs_multimon
def test_multimon_on_noise_decodes_nothing():
    rng = np.random.default_rng(1)
    res = multimon_decode_iq(rng.normal(size=100_000) + 1j * rng.normal(size=100_000), 250e3)
    assert res.status == "nothing decoded", res.detail


def test_multimon_output_parsing():
    out = ("multimon-ng 1.2.0\nPOCSAG1200: Address:  123456  Function: 3  Alpha:   ANSWER B<NUL>\n"
           "FLEX|2024-05-01 10:00:00|1600/2/K/A|04.021|001234567|ALN|room 12 q4\nnoise line\n")
    msgs = parse_multimon_lines(out)
    assert [m.model for m in msgs] == ["POCSAG1200", "FLEX"]
    assert msgs[0].fields == {"address": "123456", "function": "3", "alpha": "ANSWER B<NUL>"}
    assert msgs[1].fields["message"] == "room 12 q4"


@needs_multimon
def test_multimon_decodes_a_synthesised_pocsag_page():
    from tests.triage._pocsag import pocsag_iq

    rng = np.random.default_rng(2)
    x = np.concatenate([np.ones(20000), pocsag_iq(addr=1234567, func=3, text="ANSWER B"), np.ones(20000)])
    x = x + 0.05 * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))
    res = multimon_decode_iq(x, 250e3)
    assert res.status == "decoded", res.detail
    assert res.models == ("POCSAG1200",)
    assert res.messages[0].fields == {"address": "1234567", "function": "3", "alpha": "ANSWER B"}


def test_a_pager_burst_is_triaged_as_a_cheating_pager():
    from detector.app.triage import triage_samples
    from detector.config.devices import load_library
    from tests.triage._pocsag import pocsag_iq

    x = np.concatenate([np.ones(5000), pocsag_iq(text="Q7 C"), np.ones(5000)])
    x = x + 0.05 * np.random.default_rng(3).normal(size=x.size)
    t = triage_samples("page", x, 250e3, 152.0e6, load_library(), decode=HAVE_MULTIMON)
    assert t.symbols.modulation == "FSK"
    assert t.symbols.symbol_rate_baud == pytest.approx(1200, rel=0.01)
    assert t.symbols.deviation_hz == pytest.approx(4500, rel=0.05)
    assert t.term.value > 0 and "pager" in t.term.reason
    if HAVE_MULTIMON:
        assert "decoded as POCSAG1200" in t.term.reason and t.term.value == 2.5
