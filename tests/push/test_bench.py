"""The load benchmark script runs (shortly) and reports latency, CPU and memory with nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.push import REPO


def test_center_load_script_runs_for_3_seconds():
    r = subprocess.run([sys.executable, str(REPO / "bench" / "center_load.py"), "--duration", "3", "--vehicles", "6",
                        "--rate", "5", "--procs", "1", "--json"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["missing"] == 0 and rep["pending_after_drain"] == 0
    assert rep["center_ingested"] == rep["changes_written"] > 0
    assert rep["ingest_request_ms"]["p50"] > 0 and rep["ingest_request_ms"]["p99"] >= rep["ingest_request_ms"]["p50"]
    # CPU: the center served every ingest request inside the measured window, so it used some CPU
    # time there, and a process cannot use more than all the machine's cores
    cpu, cores = rep["center_cpu_percent_of_one_core"], rep["cpus"]
    assert cores >= 1 and 0 < cpu <= 100 * cores, rep
    assert 0 < rep["vehicles_cpu_percent_of_one_core"] <= 100 * cores, rep
    # memory: a Python web server holds more than 10 MB; the peak is never below the final RSS
    assert 10 < rep["center_rss_mb"] <= rep["center_peak_rss_mb"], rep
    assert rep["ingest_request_ms"]["n"] > 0 and rep["ingest_request_ms"]["max"] >= rep["ingest_request_ms"]["p99"]
