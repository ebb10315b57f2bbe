#!/usr/bin/env python3
"""examwatch soak test (issue #24 item 4): is the monitor's memory bounded over a long run?

Usage:  python bench/soak.py [--minutes M] [--quick] [--every S] [--json] [--seed N]

Runs, in this process, a monitor (``MonitorApp.build``, store, API, SSE) on the simulated exam site
paced to real time, for ``--minutes`` (default 20; ``--quick``: 2), with:

* **retunes:** a watch plan of two hops (445.55–446.45 MHz at 1.024 MS/s, 2 s dwell each);
* **a stream of alerts:** the ``sim:default`` scene stretched to the soak's length, its hidden
  transmitter on for 10 s every 40 s, each burst on the next of ``--channels`` channels (10, on
  both hops): every burst is a new track, mostly a new alert with its evidence files (SigMF, WAV);
  ``--channels 1`` keeps every burst on one channel (one alert continued);
* **API load:** a second process issuing GETs to ``/api/v1/alerts``, ``/api/v1/health`` and
  ``/api/v1/spectrum/latest`` at ``--rate`` requests/s (default 20) on 127.0.0.1;
* **SSE clients:** ``--sse`` threads (default 4) connect to ``/api/v1/alerts/stream``, read for a
  random 0.5–20 s and drop the connection without closing it cleanly.

All traffic is on 127.0.0.1 (an ephemeral port); the script stops by itself. It prints the
resident set size (RSS, from /proc/self/statm) every ``--every`` seconds (default 30) to stderr and
at the end the growth over the second half: (RSS at the end − RSS at half time) ÷ RSS at half
time, in %, next to the figures of the first half; ``--json`` prints them as one JSON line on
stdout. Target (issue #24): growth over the second half < 5 %.

Run from the repository root: ``.venv/bin/python bench/soak.py --quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOST = "127.0.0.1"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


#: channels of the soak's transmitters (Hz): clear of the background stations (BEACON 445.6 MHz,
#: LINK 445.675–445.825 MHz), on both hops of the plan
CHANNELS = tuple(f * 1e3 for f in (445862.5, 445925.0, 445987.5, 446050.0, 446112.5, 446175.0, 446237.5,
                                   446300.0, 446362.5, 445537.5))


def soak_scene(seconds: float, channels: int = len(CHANNELS), period_s: float = 40.0, burst_s: float = 10.0):
    """``sim:default`` with an exam window of ``seconds`` after its survey, the background on all
    the time and the licensed radios off; the hidden transmitter bursts for ``burst_s`` every
    ``period_s``, each burst on the next of ``channels`` channels (each channel one emitter
    ``T1-k``): a new track, and with ``channels`` > 1 mostly a new alert with its evidence, per burst."""
    from detector.sim.scene import scene_from_spec

    sc = scene_from_spec("sim:default")
    t0 = sc.timeline.exam[0][0]
    end = t0 + seconds + 60.0
    emitters = []
    n_bursts = int(seconds // period_s) + 1
    for e in sc.emitters:
        if e.kind == "background":
            emitters.append(e.model_copy(update={"schedule": [(0.0, end)]}))
        elif e.id == "T1":
            for k in range(channels):
                sched = [(t0 + 15.0 + b * period_s, t0 + 15.0 + b * period_s + burst_s) for b in range(n_bursts)
                         if b % channels == k]
                f = e.f_c_hz if channels == 1 else CHANNELS[k % len(CHANNELS)]
                emitters.append(e.model_copy(update={"id": f"T1-{k}", "f_c_hz": f, "schedule": sched}))
        else:
            emitters.append(e.model_copy(update={"schedule": [(a, b) for a, b in e.schedule if b <= t0]}))
    return sc.model_copy(update={"emitters": emitters,
                                 "timeline": sc.timeline.model_copy(update={"exam": [(t0, end)]})})


_LOAD = r"""
import http.client, sys, time
host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
paths = ["/api/v1/alerts", "/api/v1/health", "/api/v1/spectrum/latest", "/api/v1/alerts?limit=5"]
conn = http.client.HTTPConnection(host, port, timeout=10)
n = err = 0
start = time.perf_counter()
while time.perf_counter() - start < seconds:
    due = start + n / rate
    d = due - time.perf_counter()
    if d > 0:
        time.sleep(d)
    try:
        conn.request("GET", paths[n % len(paths)])
        r = conn.getresponse(); r.read()
        err += r.status >= 500
    except Exception:
        err += 1
        conn = http.client.HTTPConnection(host, port, timeout=10)
    n += 1
print(n, err)
"""


def sse_client(port: int, stop: threading.Event, rng: random.Random, counts: dict, lock: threading.Lock,
               token: str) -> None:
    """Connect to the SSE stream, read for a random time, drop the socket; again until ``stop``."""
    while not stop.is_set():
        hold = rng.uniform(0.5, 20.0)
        try:
            s = socket.create_connection((HOST, port), timeout=2.0)
            s.sendall(f"GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n".encode())
            t_end = time.monotonic() + hold
            got = 0
            while time.monotonic() < t_end and not stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                got += len(chunk)
            # drop without a clean close half of the time (RST), as a client that vanishes
            if rng.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            with lock:
                counts["connections"] += 1
                counts["bytes"] += got
        except OSError:
            with lock:
                counts["errors"] += 1
            stop.wait(1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="2 minutes")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between RSS lines")
    ap.add_argument("--rate", type=float, default=20.0, help="API requests per second")
    ap.add_argument("--sse", type=int, default=4, help="SSE clients")
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--channels", type=int, default=len(CHANNELS),
                    help=f"channels the bursts cycle through (1: every burst on the same channel; default {len(CHANNELS)})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    minutes = 2.0 if args.quick else args.minutes
    seconds = minutes * 60.0

    import uvicorn

    from detector.app.monitor_app import AppSettings, MonitorApp, build_engine
    from detector.app.runs import survey_baseline
    from detector.config.plan import Band, Scheduler, WatchPlan
    from detector.detection.engine import EngineConfig
    from detector.sim.sdr import SimSDR

    sys.setswitchinterval(0.001)  # as examwatch monitor does
    sc = soak_scene(seconds, channels=max(1, args.channels))
    log(f"soak: {minutes:g} min; survey baseline ...")
    plan = WatchPlan(band=[Band(name="soak", start_hz=445.55e6, stop_hz=446.45e6, dwell_s=2.0, revisit_s=5.0)])
    sched = Scheduler(plan, sc.receiver.sample_rate_hz)
    base = survey_baseline([SimSDR(sc, window="survey")], build_engine(EngineConfig()), site="S", max_duration_s=30.0)
    tmp = Path(tempfile.mkdtemp(prefix="examwatch-soak-"))
    token = "soak-token-24"
    src_box = {}

    def factory():
        src = SimSDR(sc, window="exam", realtime=True)
        tune = src.tune

        def counted(*a, **k):
            src_box["retunes"] = src_box.get("retunes", 0) + 1
            return tune(*a, **k)

        src.tune = counted
        return src

    vehicle = MonitorApp.build(AppSettings(data_dir=tmp, token=token, lock=False, resume=False, dismissals=False),
                               source_factory=factory, site="S", baseline=base, stream=True, realtime=True,
                               run_id="soak", scheduler=sched)
    mon, app = vehicle.monitor, vehicle.api
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    vehicle.start()
    while not server.started:
        time.sleep(0.05)
    load = subprocess.Popen([sys.executable, "-c", _LOAD, HOST, str(port), str(args.rate), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    counts = {"connections": 0, "bytes": 0, "errors": 0}
    lock = threading.Lock()
    rng = random.Random(args.seed)
    sse = [threading.Thread(target=sse_client, args=(port, stop, random.Random(rng.random()), counts, lock, token),
                            daemon=True) for _ in range(args.sse)]
    for t in sse:
        t.start()

    t0 = time.monotonic()
    samples: list[tuple[float, float]] = [(0.0, rss_mb())]
    next_print = 0.0
    load1 = os.getloadavg()[0]
    while True:
        el = time.monotonic() - t0
        if el >= seconds:
            break
        if el >= next_print:
            h = mon.health()
            r = rss_mb()
            samples.append((el, r))
            log(f"{el:7.0f} s  RSS {r:7.1f} MB  alerts_raised {h.get('alerts_raised')}  alerts_stored {h.get('alerts_stored')}"
                f"  frames {h.get('frames_processed')}  dropped {h.get('frames_dropped')}  sse {counts['connections']}"
                f"  load {os.getloadavg()[0]:.2f}")
            next_print += args.every
        time.sleep(min(1.0, max(0.05, next_print - el)))
    samples.append((time.monotonic() - t0, rss_mb()))
    h = mon.health()
    stop.set()
    try:
        out, _ = load.communicate(timeout=30)
        n_req, n_err = (int(v) for v in out.split())
    except Exception:  # noqa: BLE001
        load.kill()
        n_req, n_err = -1, -1
    for t in sse:
        t.join(25)
    server.should_exit = True
    th.join(10)
    vehicle.stop()

    def at(t: float) -> float:
        return min(samples, key=lambda s: abs(s[0] - t))[1]

    start_mb, half_mb, end_mb = at(0.0), at(seconds / 2), samples[-1][1]
    quarter_mb = at(seconds / 4)
    res = {
        "soak_minutes": minutes, "channels": max(1, args.channels),
        "rss_start_mb": round(start_mb, 1), "rss_half_mb": round(half_mb, 1), "rss_end_mb": round(end_mb, 1),
        "rss_max_mb": round(max(r for _, r in samples), 1),
        "growth_first_half_pct": round(100 * (half_mb - start_mb) / start_mb, 2),
        "growth_second_half_pct": round(100 * (end_mb - half_mb) / half_mb, 2),
        "growth_second_quarter_to_end_pct": round(100 * (end_mb - quarter_mb) / quarter_mb, 2),
        "alerts_raised": h.get("alerts_raised"), "alerts_stored": h.get("alerts_stored"),
        "frames_processed": h.get("frames_processed"), "frames_dropped": h.get("frames_dropped"),
        "retunes": src_box.get("retunes", 0),
        "api_requests": n_req, "api_errors": n_err, "sse_connections": counts["connections"],
        "sse_errors": counts["errors"], "load_avg_start": round(load1, 2), "load_avg_end": round(os.getloadavg()[0], 2),
        "rss_series": [[round(t), round(r, 1)] for t, r in samples],
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "target": "growth_second_half_pct < 5",
    }
    log(f"RSS {res['rss_start_mb']} → {res['rss_half_mb']} (half) → {res['rss_end_mb']} MB; growth over the second half "
        f"{res['growth_second_half_pct']} % (target < 5 %); {res['alerts_raised']} alerts, {res['alerts_stored']} stored, "
        f"{n_req} API requests ({n_err} errors), {counts['connections']} SSE connections")
    if args.json:
        print(json.dumps(res), flush=True)
    os._exit(0)  # the daemon threads (uvicorn, SSE) must not hold the process


if __name__ == "__main__":
    main()
