"""``examwatch survey`` and ``examwatch replay`` end to end: real recordings and synthetic sites."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from detector.cli import app
from detector.sim import awgn, cu8_bytes, gate, nfm, tone

runner = CliRunner()
JSONL_KEYS = {"event", "track_id", "alert", "center_hz", "bandwidth_hz", "first_seen_s", "last_seen_s", "peak_dbfs",
              "snr_db", "excess_db", "classification", "bursts", "reasons", "location"}


def replay_jsonl(args):
    r = runner.invoke(app, ["replay", *args, "--jsonl"])
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


def _duration(real_dir, entry):
    size = os.path.getsize(real_dir / entry["file"]) - entry["header_bytes"]
    return size / {"cu8": 2, "cs8": 2, "cs16": 4, "cf32": 8}[entry["dtype"]] / entry["sample_rate_hz"]


def test_cfar_only_replay_against_rtl433_bursts(real_dir, manifest):
    """Coverage of rtl_433's bursts ≥ 2 ms and what every unmatched track is.

    Measured (this commit): 128 of 132 bursts covered (97.0 %); without modes1.bin (ADS-B PPM
    replies at 2 MS/s, ~2 MHz wide, whose rtl_433 F1 is not a carrier) 109 of 113 (96.5 %).
    43 of 104 tracks match an rtl_433 burst (41 %). Every other track is a real signal that
    rtl_433's pulse analyser does not list, by category (asserted below): a steady emission on
    for the whole recording (receiver spurs and carriers, e.g. the +80 kHz line in many 2015
    rtl_433 captures), a by-product of the transmitter switching on and off with a listed burst
    (harmonic lines and fragments of the keying sidebands), an emission in the outer 14 % of the
    band (aliases through the RTL2832U's decimation filter), or a burst in a file whose rtl_433
    times lie beyond its end (honda_remote-01: its reference burst starts at 0.407 s of a
    0.262 s file). Three tracks fit none of these (UPM-01 at +84 kHz from the first frame,
    15.7 dB, which ends before the file does; generic_remote-01 at −82 kHz, 5.4 dB, and
    hyundai_remote-01 at −63 kHz, 5.1 dB, each a few frames): we count them as false alarms,
    3 in the 21 s of recordings. The issue's targets are ≥ 95 % coverage
    (met) and ≥ 80 % precision (not met: see the README).
    """
    covered = total = covered_no_adsb = total_no_adsb = 0
    tracks = matched = 0
    categories: dict[str, int] = {}
    others: list = []
    for entry in manifest["iq"]:
        events = replay_jsonl([str(real_dir / entry["file"]), "--site", "bench", "--format", entry["dtype"],
                               "--rate", str(entry["sample_rate_hz"]), "--center", str(entry["center_hz"])])
        for ev in events:
            assert JSONL_KEYS <= set(ev)
        ends = [ev for ev in events if ev["event"] == "end"]
        assert len({ev["track_id"] for ev in ends}) == len(ends)
        dur = _duration(real_dir, entry)
        late_reference = any(b["start_s"] > dur for b in entry["bursts"])

        def holds(tr, b):
            f = entry["center_hz"] + b["f1_offset_hz"]
            lo = tr["center_hz"] - tr["bandwidth_hz"] / 2 - 5e3
            hi = tr["center_hz"] + tr["bandwidth_hz"] / 2 + 5e3
            return lo <= f <= hi and tr["first_seen_s"] - 0.05 <= b["start_s"] + b["width_s"] and \
                tr["last_seen_s"] + 0.05 >= b["start_s"]

        for b in (b for b in entry["bursts"] if b["width_s"] >= 0.002):
            hit = any(holds(tr, b) for tr in ends)
            covered += hit
            total += 1
            if "modes1" not in entry["file"]:
                covered_no_adsb += hit
                total_no_adsb += 1
        for tr in ends:
            tracks += 1
            if any(holds(tr, b) for b in entry["bursts"]):
                matched += 1
                continue
            steady = tr["first_seen_s"] <= 0.011 and tr["last_seen_s"] >= dur - 0.03
            edge = abs(tr["center_hz"] - entry["center_hz"]) > 0.36 * entry["sample_rate_hz"]
            during = any(tr["first_seen_s"] <= b["start_s"] + b["width_s"] + 0.05 and tr["last_seen_s"] >= b["start_s"] - 0.05
                         for b in entry["bursts"])
            cat = "steady" if steady else "edge" if edge else "transmitter" if during else "late_reference" if late_reference else "other"
            categories[cat] = categories.get(cat, 0) + 1
            if cat == "other":
                others.append((entry["file"], round(tr["center_hz"] - entry["center_hz"]), tr["first_seen_s"], tr["snr_db"]))
            assert tr["snr_db"] >= 4.5
    print(f"coverage {covered}/{total}, without ADS-B {covered_no_adsb}/{total_no_adsb}, "
          f"precision {matched}/{tracks}, unmatched {categories}, other {others}")
    assert len(others) <= 3, others
    assert covered / total >= 0.95
    assert covered_no_adsb / total_no_adsb >= 0.95
    assert matched / tracks >= 0.40


def _write(path, x, **kw):
    cu8_bytes(x, **kw).tofile(path)
    return str(path)


def _site(seconds, rng, fs, burst=None):
    n = int(seconds * fs)
    x = awgn(n, -30.0, rng) + tone(n, fs, 50e3, -35.0)
    x += gate(nfm(n, fs, -40e3, -38.0, rng), fs, [(t, t + 1.5) for t in np.arange(0.5, seconds, 5.0)])
    if burst:
        x += gate(nfm(n, fs, burst[0], -40.0, rng), fs, [burst[1:]])
    return x


def test_survey_then_replay_alerts_once_on_the_new_burst(tmp_path):
    fs = 250e3
    rng = np.random.default_rng(21)
    s1 = _write(tmp_path / "survey1_446.05M_250k.cu8", _site(15.0, rng, fs))
    s2 = _write(tmp_path / "survey2_446.05M_250k.cu8", _site(15.0, rng, fs))
    exam = _write(tmp_path / "exam_446.05M_250k.cu8", _site(12.0, rng, fs, burst=(20e3, 4.0, 10.0)))
    out = tmp_path / "school-7.baseline"
    r = runner.invoke(app, ["survey", s1, s2, "--site", "school-7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and not (tmp_path / "school-7.baseline.npz").exists()
    events = replay_jsonl([exam, "--site", "school-7", "--baseline", str(out)])
    alerts = {ev["track_id"] for ev in events if ev["alert"]}
    assert len(alerts) == 1
    first = next(ev for ev in events if ev["alert"])
    assert first["center_hz"] - 446.05e6 == pytest.approx(20e3, abs=2e3)
    assert first["last_seen_s"] - 4.0 <= 1.0
    assert first["excess_db"] is not None and first["reasons"]
    # several sources are one timeline: the exam after the survey recording shifts every time by 15 s
    later = replay_jsonl([s1, exam, "--site", "school-7", "--baseline", str(out)])
    alert_times = [ev["first_seen_s"] for ev in later if ev["alert"]]
    assert alert_times and min(alert_times) == pytest.approx(19.0, abs=0.1)


@pytest.mark.parametrize("args, needle", [
    (["replay", "x.cu8", "--site", "s", "--baseline", "/nonexistent/b.npz"], "does not exist"),
    (["replay", "x.cu8", "--site", "s", "--baseline", "TMP"], "is a folder, not a baseline file"),
    (["replay", "x.cu8"], "--site"),
    (["survey", "x.cu8", "--site", "s", "--frame-s", "0"], "--frame-s"),
])
def test_cli_errors_exit_2(tmp_path, args, needle):
    src = tmp_path / "x_433.92M_250k.cu8"
    np.full(100_000, 127, np.uint8).tofile(src)
    argv = [str(src) if a == "x.cu8" else str(tmp_path) if a == "TMP" else a for a in args]
    r = subprocess.run([sys.executable, "-m", "detector", *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_survey_and_replay_draw_png(tmp_path):
    fs = 250e3
    rng = np.random.default_rng(31)
    s1 = _write(tmp_path / "s_446.05M_250k.cu8", _site(4.0, rng, fs))
    exam = _write(tmp_path / "e_446.05M_250k.cu8", _site(4.0, rng, fs, burst=(20e3, 1.0, 3.0)))
    b = tmp_path / "b.npz"
    r = runner.invoke(app, ["survey", s1, "--site", "s", "--out", str(b), "--png", str(tmp_path / "base.png")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["replay", exam, "--site", "s", "--baseline", str(b), "--png", str(tmp_path / "last.png")])
    assert r.exit_code == 0, r.output
    for name in ("base.png", "last.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_survey_of_every_real_sweep_csv(real_dir, manifest, tmp_path):
    """Every sweep CSV gives a baseline with one frame per sweep, including small.csv, whose rows
    alternate between 1024 and 768 averaged samples (the baseline keeps the fewer looks)."""
    from detector.baseline import load
    from detector.sources.sweep import read_sweeps

    for entry in manifest["sweeps"]:
        path = real_dir / entry["file"]
        out = tmp_path / (path.stem + ".npz")
        r = runner.invoke(app, ["survey", str(path), "--site", "s", "--out", str(out)])
        assert r.exit_code == 0, (entry["file"], r.output)
        base = load(out)
        spectra = read_sweeps(path).spectra
        assert int(base.frames.max()) == len(spectra), entry["file"]
        fewest = min(s.n_looks for s in spectra)
        assert fewest <= base.n_looks <= 1.1 * fewest  # looks within 10 % count as the same
        for f in entry.get("carriers_hz", []):  # the broadcast stands out of the baseline's median (a ±10 kHz hump)
            near = np.abs(base.freqs_hz - f) <= 15e3
            if near.any():
                med = np.asarray(base.median, dtype=np.float64)
                assert np.nanmax(med[near]) - np.nanmedian(med) >= 1.0, entry["file"]


def test_tz_gives_the_zone_of_sweep_timestamps_that_carry_none(real_dir, manifest, tmp_path):
    """rtl_power writes local time without a zone: UTC by default, --tz names the zone."""
    from detector.baseline import load

    path = real_dir / manifest["sweeps"][0]["file"]
    starts = {}
    for tz in ("UTC", "Asia/Shanghai"):
        out = tmp_path / f"{tz.replace('/', '_')}.npz"
        r = runner.invoke(app, ["survey", str(path), "--site", "s", "--out", str(out), "--tz", tz])
        assert r.exit_code == 0, r.output
        starts[tz] = load(out).first_start
    assert (starts["UTC"] - starts["Asia/Shanghai"]).total_seconds() == 8 * 3600
    # replay dates its events in UTC from the sweeps' times, read in the zone --tz names
    firsts = {}
    for tz in ("UTC", "Asia/Shanghai"):
        events = replay_jsonl([str(path), "--site", "s", "--tz", tz])
        assert events, "the sweep holds emissions"
        firsts[tz] = datetime.fromisoformat(events[0]["first_seen_utc"].replace("Z", "+00:00"))
    assert (firsts["UTC"] - firsts["Asia/Shanghai"]).total_seconds() == 8 * 3600
    assert firsts["UTC"] - starts["UTC"] <= timedelta(seconds=events[0]["first_seen_s"] + 1)
    r = subprocess.run([sys.executable, "-m", "detector", "replay", str(path), "--site", "s", "--tz", "Mars/Olympus"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown time zone 'Mars/Olympus'" in r.stderr


def test_replay_warns_when_its_frames_average_other_looks_than_the_survey(tmp_path):
    fs = 250e3
    rng = np.random.default_rng(31)
    src = _write(tmp_path / "site_446.05M_250k.cu8", _site(2.0, rng, fs))
    base = tmp_path / "b.npz"
    r = runner.invoke(app, ["survey", src, "--site", "s", "--out", str(base)])
    assert r.exit_code == 0, r.output
    same = runner.invoke(app, ["replay", src, "--site", "s", "--baseline", str(base)])
    other = runner.invoke(app, ["replay", src, "--site", "s", "--baseline", str(base), "--frame-s", "0.001"])
    assert same.exit_code == other.exit_code == 0
    flat = lambda text: " ".join(text.split())  # noqa: E731 - the console wraps long lines
    assert "looks per bin" not in flat(same.stderr)
    assert "looks per bin" in flat(other.stderr) and "use the survey's --frame-s" in flat(other.stderr)


def test_replay_of_a_sweep_csv_cut_short_warns_and_keeps_every_row(real_dir, tmp_path):
    """A sweep CSV whose last row was cut mid-write (a recorder stopped) is replayed: six whole
    sweeps and the short one (8 bins, from Hz low), and stderr names the
    short row; stdout (``--jsonl``) stays JSON."""
    lines = (real_dir / "sweeps" / "cocolo3.csv").read_text().splitlines()
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(lines[:6] + [lines[6][:120]]) + "\n")
    r = runner.invoke(app, ["replay", str(cut), "--site", "s", "--jsonl"])
    assert r.exit_code == 0, r.output
    for line in r.stdout.splitlines():
        json.loads(line)
    err = " ".join(r.stderr.split())
    assert "warning:" in err and "line 7: 8 values" in err and "holds 129 (a row cut short?)" in err
    whole = runner.invoke(app, ["replay", str(cut), "--site", "s"])
    assert "7 frames" in whole.stdout + whole.stderr


def test_a_track_that_moves_is_reported_where_it_is_now(real_dir):
    """PT2262-01: the track alerts at +65 kHz (3 frames), then the remote's much stronger burst at
    −83 kHz switches on within the onset window and joins it. An ``update`` reports the new
    center before the end, and the text output says where the alert moved."""
    f = real_dir / "iq" / "PT2262-01__gfile002.data"
    args = [str(f), "--site", "s", "-f", "cu8", "-r", "250k", "-c", "433.92M"]
    events = [ev for ev in replay_jsonl(args) if ev["track_id"] == "T00001"]
    first_alert = next(ev for ev in events if ev["alert"])
    assert first_alert["center_hz"] - 433.92e6 == pytest.approx(65e3, abs=5e3)
    # the center is power-weighted over the frames: the update lands near the burst (−77.5 kHz
    # here), the end event on it
    moved = [ev for ev in events if ev["event"] == "update" and abs(ev["center_hz"] - 433.92e6 + 83e3) < 8e3]
    assert moved and moved[0]["last_seen_s"] < events[-1]["last_seen_s"]
    assert events[-1]["event"] == "end" and events[-1]["center_hz"] - 433.92e6 == pytest.approx(-83e3, abs=2e3)
    text = runner.invoke(app, ["replay", *args])
    assert text.exit_code == 0
    assert "T00001 moved: 433.98497 → 433.8" in " ".join(text.stderr.split())


def test_replay_refuses_a_baseline_coarser_than_its_spectra_and_says_what_to_survey(tmp_path):
    """A baseline from a 3 kHz-step sweep against a 250 kS/s recording (RBW 1464.8 Hz): one error
    line, exit 2, naming both RBWs and the sample rate to survey at."""
    from datetime import datetime, timedelta, timezone

    from detector.sources.sweep import write_sweeps
    from detector.core.types import Spectrum

    freqs = 433.92e6 + np.arange(-40, 41) * 3000.0
    t0 = datetime(2026, 6, 7, 8, 0, tzinfo=timezone.utc)
    rng = np.random.default_rng(5)
    write_sweeps(tmp_path / "s.csv", [Spectrum(freqs, (-60 + rng.normal(0, 1, freqs.size)).astype(np.float32), 3000.0,
                                               start=t0 + timedelta(seconds=i)) for i in range(5)])
    base = tmp_path / "b.npz"
    assert runner.invoke(app, ["survey", str(tmp_path / "s.csv"), "--site", "s", "--out", str(base)]).exit_code == 0
    rec = _write(tmp_path / "exam_433.92M_250k.cu8", awgn(int(0.5 * 250e3), -30.0, rng))
    r = subprocess.run([sys.executable, "-m", "detector", "replay", rec, "--site", "s", "--baseline", str(base)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    err = " ".join(r.stderr.split())
    assert "baseline RBW 3000 Hz is coarser than the live RBW 1464.84 Hz" in err
    assert "survey at the sample rate of exam_433.92M_250k.cu8 (250 kS/s)" in err and "Traceback" not in r.stderr
