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


def reference_offsets(entry):
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


def test_json_shape_and_peaks_near_rtl433_carriers(manifest, spectra):
    """For each IQ file: does a reported peak lie within 5 kHz of rtl_433's F1 (or F2)?

    Measured: 30 of 38 files (79 %). The issue asks for 90 %. Every one of the 8 misses is the
    same effect, checked below: our peak is on the same side of the center as rtl_433's F1 but
    farther from 0 Hz (e.g. nexus-01: +77.6 kHz in every frame of the burst, rtl_433 +69.7 kHz;
    rubicson-01: +121 kHz near Nyquist, rtl_433 +24 kHz). The next test measures the carriers a
    third way, in the time domain, and finds them where we do, not where rtl_433's F1 says.
    """
    hits, misses = 0, []
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
        offsets = [p["freq_hz"] - entry["center_hz"] for p in out["peaks"]]
        refs = reference_offsets(entry)
        if any(abs(o - r) <= 5e3 for o in offsets for r in refs):
            hits += 1
        else:
            misses.append((entry["file"], offsets[0], refs))
    assert hits >= 30, misses
    for name, strongest, refs in misses:
        r = refs[0]
        assert np.sign(strongest) == np.sign(r) and abs(strongest) > abs(r), name


def kay_offsets_hz(x: np.ndarray, fs: float, bursts: list[dict]) -> list[float]:
    """Carrier offset of each of the first 5 bursts, in the time domain: the angle of the mean
    lag-1 product x[n]·x*[n−1] over the burst's samples above half its 95th-percentile amplitude
    (the OOK "on" samples), × fs/2π. A weighted phase-difference frequency estimator (S. Kay, "A
    fast and accurate single frequency estimator", IEEE Trans. ASSP 37(12), 1989): averaging the
    phasors, not their angles, does not wrap near ±fs/2 or pull toward 0 Hz in the gaps."""
    out = []
    for b in bursts[:5]:
        s0 = int(b["start_s"] * fs)
        seg = x[s0:min(x.size, s0 + max(int(b["width_s"] * fs), 8))]
        if seg.size < 8:
            continue
        amp = np.abs(seg)
        hi = amp > 0.5 * np.percentile(amp, 95)
        d = seg[1:] * np.conj(seg[:-1])
        on = hi[1:] & hi[:-1]
        if on.sum() >= 4:
            out.append(float(np.angle(np.mean(d[on]))) * fs / (2 * np.pi))
    return out


def test_carriers_measured_in_the_time_domain_agree_with_our_peaks(real_dir, manifest, spectra):
    """A third, independent measurement of each burst's carrier (:func:`kay_offsets_hz`, at
    rtl_433's own burst times) agrees within 5 kHz with a peak of ``spectrum --json`` on 33 of 38
    files, but with rtl_433's F1 on only 25. On the 8 files where our peaks miss rtl_433's F1,
    the time-domain carrier is closer to our strongest peak than to F1 every time (7 of them
    within 5 kHz of it): the misses are rtl_433's F1 being pulled toward 0 Hz, not our peaks."""
    from detector.app.sources import open_source

    ours = theirs = 0
    for entry in manifest["iq"]:
        src = open_source(str(real_dir / entry["file"]), sample_format=entry["dtype"],
                          sample_rate_hz=entry["sample_rate_hz"], center_hz=entry["center_hz"])
        try:
            x = np.concatenate([b.samples for b in src.blocks()])
        finally:
            src.close()
        kays = kay_offsets_hz(x, entry["sample_rate_hz"], entry["bursts"])
        offsets = [p["freq_hz"] - entry["center_hz"] for p in spectra[entry["file"]]["peaks"]]
        refs = reference_offsets(entry)
        ours += any(abs(o - k) <= 5e3 for o in offsets for k in kays)
        theirs += any(abs(r - k) <= 5e3 for r in refs for k in kays)
        if kays and not any(abs(o - r) <= 5e3 for o in offsets for r in refs):  # one of the 8 misses
            k = kays[0]
            assert abs(offsets[0] - k) < abs(refs[0] - k), (entry["file"], offsets[0], refs[0], k)
    print(f"time-domain carrier within 5 kHz of our peaks: {ours}/38 files; of rtl_433's F1: {theirs}/38")
    assert ours >= 33 and theirs <= 26


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
