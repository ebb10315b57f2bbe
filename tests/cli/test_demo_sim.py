"""``examwatch demo`` (shortened) and ``examwatch sim export|score``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from detector.app.sources import open_source


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "detector", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # the exam session starts at 150 s and the target at 210 s: 70 s of it hold the onset
    r = run("demo", "--no-serve", "--json", "--exam-s", "70", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    return out, r


def test_shortened_demo_finds_the_cheating_transmitter(short_demo):
    out, r = short_demo
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    score = json.loads(lines[0])
    assert {"pd", "false_alarms_per_hour", "nuisance_alerts", "tta_median_s", "freq_error_median_hz",
            "location_error_m", "alerts"} <= set(score)
    assert score["pd"] == 1.0
    assert score["false_alarms_per_hour"] == 0.0
    assert score["tta_median_s"] is not None and score["tta_median_s"] <= 5.0
    # raw frequency error is the dongle's 3 ppm (≈ 1.4 kHz at 446 MHz) until calibration corrects it
    assert score["freq_error_median_hz"] < 3e3
    target = [a for a in score["alerts"] if a["match_kind"] == "target"]
    assert target and target[0]["center_hz"] == pytest.approx(446.08125e6 - 3.1e-6 * 446e6, abs=2e3)
    assert "ALERT" in r.stderr
    assert (out / "truth.json").is_file() and (out / "alerts.jsonl").is_file() and (out / "baseline.npz").is_file()


def test_sim_score_cli_matches_the_demo(short_demo):
    out, r = short_demo
    s = run("sim", "score", str(out / "alerts.jsonl"), str(out / "truth.json"), "--json")
    assert s.returncode == 0, s.stderr
    assert json.loads(s.stdout)["pd"] == json.loads(r.stdout)["pd"]
    bad = out / "bad.jsonl"
    bad.write_text("{not json\n")
    e = run("sim", "score", str(bad), str(out / "truth.json"))
    assert e.returncode == 2 and "not JSON" in e.stderr


def test_sim_export_writes_sigmf_with_truth_annotations(tmp_path):
    base = tmp_path / "exam"
    r = run("sim", "export", "sim:default", "--center", "446M", "--rate", "1.024M", "--start", "208",
            "--duration", "4", "-o", str(base), "--truth", str(tmp_path / "truth.json"))
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "exam.sigmf-meta").read_text())
    assert meta["global"]["core:datatype"] == "cu8"
    labels = {a["core:label"] for a in meta["annotations"]}
    assert "T1" in labels
    t1 = next(a for a in meta["annotations"] if a["core:label"] == "T1")
    assert t1["core:sample_start"] == pytest.approx(2 * 1.024e6, abs=2)  # on air from 210 s
    src = open_source(str(tmp_path / "exam.sigmf-meta"))
    assert src.info.n_samples == int(4 * 1.024e6) and src.info.center_hz == 446e6
    x = np.concatenate([b.samples for b in src.blocks()])
    assert np.all(np.abs(x.real) <= 1.0)


def test_sim_export_to_a_name_ending_in_sigmf_writes_that_pair(tmp_path):
    r = run("sim", "export", "sim:default", "--center", "446M", "--rate", "250k", "--start", "0", "--duration", "0.2",
            "-o", str(tmp_path / "exp.sigmf"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.sigmf-data", "exp.sigmf-meta"]


@pytest.mark.parametrize("args, needle", [
    (["sim", "export", "sim:default", "-o", "x", "--duration", "0"], "--duration"),
    (["sim", "export", "sim:default", "-o", "x", "--duration", "nan"], "--duration"),
    (["sim", "export", "sim:default", "-o", "x", "--start", "nan"], "--start"),
    (["sim", "export", "sim:nope.toml", "-o", "x"], "not found"),
    (["sim", "export", "sim:default", "-o", "x", "--rate", "5M"], "RTL-SDR range"),
    (["demo", "--exam-s", "-1"], "--exam-s"),
])
def test_sim_errors_exit_2(args, needle):
    r = run(*args, timeout=60)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_the_demo_api_has_the_live_stream_as_a_vehicle_does(tmp_path):
    import socket
    import time

    import httpx

    from detector.app.monitor_app import MonitorApp
    from detector.cli.demo import _api_settings, _serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # composed as the demo composes its vehicle (the monitor is not started here)
    vehicle = MonitorApp.build(_api_settings(tmp_path, "127.0.0.1", port), source_factory=lambda: None, site="S",
                               stream=True)
    server = _serve(vehicle, "127.0.0.1", port)
    try:
        end = time.monotonic() + 30
        while not server.started and time.monotonic() < end:
            time.sleep(0.1)
        with httpx.stream("GET", f"http://127.0.0.1:{port}/api/v1/alerts/stream", timeout=10) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            first = [next(lines), next(lines)]
        assert "event: ready" in first
    finally:
        server.should_exit = True
        time.sleep(0.5)
        vehicle.stop()
