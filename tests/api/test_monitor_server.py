"""`examwatch monitor` as a real server (uvicorn on loopback) with the simulated SDR, read over HTTP."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from tests._helpers import free_port

TARGET_HZ = 446.08125e6


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    d = tmp_path_factory.mktemp("survey")
    out = d / "default.baseline"
    r = subprocess.run([sys.executable, "-m", "detector", "survey", "sim:default", "--site", "S", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def start(baseline, data_dir, port, *extra):
    log = open(data_dir / f"monitor-{port}-{time.monotonic_ns()}.log", "w")
    p = subprocess.Popen([sys.executable, "-m", "detector", "monitor", "sim:default", "--site", "S", "--baseline",
                          str(baseline), "--port", str(port), "--data-dir", str(data_dir), *extra],
                         stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1"
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return p, url
        except httpx.HTTPError:
            pass
        if p.poll() is not None:
            raise AssertionError(open(log.name).read())
        time.sleep(0.3)
    p.kill()
    raise AssertionError("monitor did not start")


def wait_alerts(url, pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = httpx.get(f"{url}/alerts", params={"limit": 1000}, timeout=5).json()["data"]
        hits = [a for a in data if pred(a)]
        if hits:
            return data, hits
        time.sleep(0.5)
    raise AssertionError(f"no matching alert within {timeout} s: {data}")


def test_monitor_serves_the_located_cheater_and_survives_sigkill(baseline, tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    p, url = start(baseline, data_dir, port)
    try:
        health = httpx.get(f"{url}/health").json()
        assert health["status"] in ("ok", "degraded") and "frames_processed" in health
        token_file = data_dir / "api-token"
        assert token_file.is_file() and stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        _, hits = wait_alerts(url, lambda a: abs(a["center_hz"] - TARGET_HZ) <= 5e3 and a["location"]
                              and a["location"]["status"] == "located", timeout=150)
        target = hits[0]
        assert target["classification"] in ("nfm_voice", "fsk_data", "unknown", "pulsed")
        assert abs(target["location"]["lat"] - 50.0) < 0.01 and abs(target["location"]["lon"] - 10.0) < 0.01
        names = {e["name"] for e in target["evidence"]}
        assert {"snippet.sigmf-meta", "snippet.sigmf-data"} <= names
        ev = httpx.get(f"{url}/alerts/{target['id']}/evidence/snippet.sigmf-meta")
        assert ev.status_code == 200 and ev.json()["global"]["core:datatype"] == "cu8"
        spec = httpx.get(f"{url}/spectrum/latest").json()
        assert len(spec["freqs_hz"]) == len(spec["power"]) and spec["baseline"] is not None
        seen = httpx.get(f"{url}/alerts", params={"limit": 1000}).json()["data"]
        # a fresh store: every alert listed was raised by this run; each change of one is stored
        health = httpx.get(f"{url}/health").json()
        assert len(seen) <= health["alerts_raised"] <= health["alerts_stored"]
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    # restart on the same store: everything the API returned is still there, unchanged or newer
    p2, url2 = start(baseline, data_dir, port)
    try:
        after = {a["id"]: a for a in httpx.get(f"{url2}/alerts", params={"limit": 1000}).json()["data"]}
        for a in seen:
            assert a["id"] in after, a["id"]
            assert after[a["id"]]["version"] >= a["version"]
            assert after[a["id"]]["center_hz"] == pytest.approx(a["center_hz"], abs=5e3)
        # the transmitter, seen again by the new run, continues its alert: no second one
        _, again = wait_alerts(url2, lambda a: a["id"] == target["id"] and a["run_id"] != target["run_id"], timeout=150)
        data = httpx.get(f"{url2}/alerts", params={"limit": 1000}).json()["data"]
        assert [a["id"] for a in data if abs(a["center_hz"] - TARGET_HZ) <= 5e3] == [target["id"]]
        hist = httpx.get(f"{url2}/alerts/{target['id']}/history").json()
        assert any(h["cause"] == "event:resumed" for h in hist["data"])
        # the first detection's evidence is kept as recorded, not replaced by the new run's
        before = {e["name"]: e["sha256"] for e in target["evidence"]}
        now = {e["name"]: e["sha256"] for e in httpx.get(f"{url2}/alerts/{target['id']}").json()["evidence"]}
        assert {k: now[k] for k in before} == before
    finally:
        p2.send_signal(signal.SIGTERM)
        assert p2.wait(30) == 0


def test_monitor_of_a_recording_with_an_unknown_site_warns_and_exits_when_done(tmp_path):
    """A bare site name with no TOML in --sites-dir is monitored, with a warning saying what is
    missing; --exit-when-done ends the run when the recording ends (exit 0)."""
    from detector.sim import awgn, cu8_bytes

    rec = tmp_path / "rec_433.92M_250k.cu8"
    cu8_bytes(awgn(int(0.5 * 250e3), -30.0, np.random.default_rng(3))).tofile(rec)
    r = subprocess.run([sys.executable, "-m", "detector", "monitor", str(rec), "--site", "nosuchsite", "--exit-when-done",
                        "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), "--sites-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert f"no site file {tmp_path / 'nosuchsite.toml'}" in err and "without exam sessions, whitelist or position" in err
