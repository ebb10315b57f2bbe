"""``examwatch spectrum`` on the real recordings against rtl_433's pulse analyser."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from detector.cli import app

runner = CliRunner()


def run_json(args):
    result = runner.invoke(app, ["spectrum", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def f1_offsets(entry):
    """rtl_433's F1 (and F2) of each burst: printed as context only, no longer a reference
    (its F1 reads toward 0 Hz, see PROVENANCE.md "Independent carrier reference")."""
    out = [b["f1_offset_hz"] for b in entry["bursts"]]
    out += [b["f2_offset_hz"] for b in entry["bursts"] if b["f2_offset_hz"]]
    return out


@pytest.fixture(scope="module")
def spectra(real_dir, manifest):
    """``examwatch spectrum --json`` of every IQ file of the manifest, run once for this module."""
    out = {}
    for entry in manifest["iq"]:
        out[entry["file"]] = run_json([str(real_dir / entry["file"]), "--format", entry["dtype"], "--rate",
                                       str(entry["sample_rate_hz"]), "--center", str(entry["center_hz"])])
    return out


def test_json_shape_of_every_real_file(manifest, spectra):
    for entry in manifest["iq"]:
        out = spectra[entry["file"]]
        assert set(out) == {"center_hz", "sample_rate_hz", "duration_s", "rbw_hz", "noise_floor_dbfs", "peaks",
                            "nonfinite_samples", "frames_excluded"}
        assert out["nonfinite_samples"] == 0 and out["frames_excluded"] == 0
        assert out["center_hz"] == entry["center_hz"]
        assert out["peaks"], entry["file"]
        snrs = [p["snr_db"] for p in out["peaks"]]
        assert snrs == sorted(snrs, reverse=True)
        assert set(out["peaks"][0]) == {"freq_hz", "peak_dbfs", "snr_db", "bandwidth_hz", "image"}


def test_a_peak_lies_within_5_khz_of_the_measured_carrier(manifest, spectra):
    """Issue #18 item 7: a reported peak within 5 kHz of a measured carrier in ≥ 95 % of the
    measurable files.

    Reference: the manifest's independent time-domain carrier measurement, per file
    ``carriers_offset_hz`` (every carrier or FSK tone measured at the burst times), counted only on
    files with ``carrier_measurable`` true (37 of the 38 IQ files; GT-WT-02-01's bursts hold no
    clean carrier). A file is a hit when any peak of ``spectrum --json`` (image-flagged or not)
    has ``|freq_hz − center_hz − carrier| ≤ 5 kHz`` for any of the file's carriers.

    Measured: 37 of 37 measurable files (100 %); the strongest peak is the hit in 36 of them
    (door_bell-01: the second, after a stronger line at −15.9 kHz). rtl_433's F1/F2, the old reference, is printed as context: 30 of
    38 files.
    """
    measurable = hits = strongest = f1_hits = 0
    misses = []
    for entry in manifest["iq"]:
        offsets = [p["freq_hz"] - entry["center_hz"] for p in spectra[entry["file"]]["peaks"]]
        f1_hits += any(abs(o - r) <= 5e3 for o in offsets for r in f1_offsets(entry))
        if not entry["carrier_measurable"]:
            continue
        measurable += 1
        carriers = entry["carriers_offset_hz"]
        assert carriers, entry["file"]
        if any(abs(o - c) <= 5e3 for o in offsets for c in carriers):
            hits += 1
            strongest += any(abs(offsets[0] - c) <= 5e3 for c in carriers)
        else:
            misses.append((entry["file"], carriers, [round(o) for o in offsets[:5]]))
    print(f"peak within 5 kHz of the measured carrier: {hits}/{measurable} measurable files "
          f"(strongest peak {strongest}); context, of rtl_433's F1/F2: {f1_hits}/{len(manifest['iq'])}; "
          f"misses {misses}")
    assert measurable >= 37
    assert hits / measurable >= 0.95, misses


def test_short_burst_survives_max_hold(tmp_path):
    """A 2 ms burst in 4 s of noise: invisible in the average, found by max-hold."""
    fs, n = 250e3, 1_000_000
    rng = np.random.default_rng(7)
    x = 0.02 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    k0, k1 = 600_000, 600_500
    x[k0:k1] += 0.5 * np.exp(2j * np.pi * 40e3 * np.arange(k1 - k0) / fs)
    inter = np.empty(2 * n)
    inter[0::2], inter[1::2] = x.real, x.imag
    path = tmp_path / "burst_433.92M_250k.cu8"
    np.clip(np.round(inter * 127.5 + 127.5), 0, 255).astype(np.uint8).tofile(path)
    out = run_json([str(path)])
    assert out["duration_s"] == pytest.approx(4.0)
    best = out["peaks"][0]
    assert best["freq_hz"] - 433.92e6 == pytest.approx(40e3, abs=500)
    assert best["snr_db"] > 15


def test_png_is_written(tmp_path, real_dir):
    png = tmp_path / "s.png"
    result = runner.invoke(app, ["spectrum", str(real_dir / "iq" / "PT2262-01__gfile002.data"), "--format", "cu8",
                                 "--rate", "250k", "--center", "433.92M", "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["{empty}"], "empty"),
        (["{trunc}"], "truncated"),
        (["{unknown}"], "--format"),
        (["{good}", "--rate", "0"], "--rate"),
        (["{good}", "--rate", "-1M"], "--rate"),
        (["{good}", "--rbw", "abc"], "--rbw"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    files = {
        "empty": tmp_path / "e_433.92M_250k.cu8",
        "trunc": tmp_path / "t_433.92M_250k.cu8",
        "unknown": tmp_path / "u.xyz",
        "good": tmp_path / "g_433.92M_250k.cu8",
    }
    files["empty"].write_bytes(b"")
    files["trunc"].write_bytes(b"\x7f" * 4097)
    files["unknown"].write_bytes(b"\x7f" * 4096)
    files["good"].write_bytes(b"\x7f" * 8192)
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    r = subprocess.run([sys.executable, "-m", "detector", "spectrum", *argv, "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3  # one sentence, possibly wrapped


def test_spectrum_flags_the_iq_image_of_a_strong_tone(tmp_path):
    from detector.sim import awgn, cu8_bytes, iq_imbalance, tone

    fs, n = 1.024e6, 1 << 18
    rng = np.random.default_rng(5)
    x = iq_imbalance(awgn(n, -45.0, rng) + tone(n, fs, 300e3, -6.0), 1.5, 4.0) + tone(n, fs, -150e3, -30.0)
    path = tmp_path / "img.cu8"
    path.write_bytes(cu8_bytes(x).tobytes())
    r = runner.invoke(app, ["spectrum", str(path), "--rate", "1.024M", "--center", "446M", "--json"])
    assert r.exit_code == 0, r.output
    peaks = {round((p["freq_hz"] - 446e6) / 1e3): p for p in json.loads(r.stdout)["peaks"]}
    near = lambda khz: next(p for k, p in peaks.items() if abs(k - khz) <= 2)  # noqa: E731
    assert near(300)["image"] is False
    assert near(-300)["image"] is True  # about 23 dB below its mirror
    assert near(-150)["image"] is False  # a real weak tone: its mirror (+150 kHz) is noise
    assert near(300)["peak_dbfs"] - near(-300)["peak_dbfs"] > 15


def test_nan_bursts_do_not_hide_a_tone_and_are_reported(tmp_path):
    """Issue #24: NaN/inf samples made the noise floor NaN and hid every peak."""
    fs, n = 1.024e6, 1 << 18
    rng = np.random.default_rng(24)
    t = np.arange(n) / fs
    x = 0.1 * np.exp(2j * np.pi * 100e3 * t) + 0.002 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    x = x.astype(np.complex64)
    for s0 in (1000, 90_000, 200_000):
        x[s0:s0 + 200] = np.nan
    x[150_000] = complex(np.inf, 0)
    path = tmp_path / "nan_446M_1.024M.cf32"
    path.write_bytes(x.tobytes())
    r = subprocess.run([sys.executable, "-m", "detector", "spectrum", str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["nonfinite_samples"] == 601
    assert 4 <= out["frames_excluded"] <= 8  # each burst in one or two 10 ms frames
    assert np.isfinite(out["noise_floor_dbfs"])
    best = out["peaks"][0]
    assert abs(best["freq_hz"] - (446e6 + 100e3)) < 2e3
    assert best["peak_dbfs"] == pytest.approx(-20.0, abs=1.5)
    warn = [ln for ln in r.stderr.splitlines() if "warning:" in ln]
    assert len(warn) == 1 and "601 non-finite" in warn[0], r.stderr
    assert "RuntimeWarning" not in r.stderr


def test_a_recording_of_nothing_but_nan_is_refused(tmp_path):
    """A file whose every sample is NaN has no spectrum: one clear line and exit 2, not a
    −300 dBFS noise floor."""
    path = tmp_path / "allnan_446M_250k.cf32"
    path.write_bytes(np.full(20_000, np.nan, dtype=np.complex64).tobytes())
    r = subprocess.run([sys.executable, "-m", "detector", "spectrum", str(path), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "every one of its 20000 samples is NaN or infinite" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
