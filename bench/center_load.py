#!/usr/bin/env python3
"""Bounded load test of the command center on loopback.

Starts ``examwatch serve`` (a subprocess; SQLite in a temporary folder, or ``--db URL``), then
``--vehicles`` simulated vehicles (default 20) spread over ``--procs`` worker processes. Each
vehicle has its own alert store (SQLite) with the outbox attached and a real
:class:`~detector.push.HttpPushSender`; a scripted source writes ``--rate`` alert changes per second
(default 10; new alerts and updates) for ``--duration`` seconds (default 60). Then the writers stop,
the outboxes drain, and the script prints:

* ingest latency: the round trip of the ingest requests seen by the vehicles (p50, p99, max; a
  request carries one change, or several through ``/ingest/batch`` when a vehicle has a backlog),
  and the end-to-end delay from the alert change's commit on the vehicle to its delivery (p50, p99);
* the center's CPU (share of one core, over the load phase) and memory (RSS at the end, peak RSS);
* changes written, versions the center ingested, and what is missing (must be 0).

It only talks to 127.0.0.1, and stops by itself. Usage::

    .venv/bin/python bench/center_load.py                  # 20 vehicles x 10/s for 60 s
    .venv/bin/python bench/center_load.py --duration 5 --json
    .venv/bin/python bench/center_load.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVE_LAUNCHER = "import detector.cli.serve; from detector.cli import main; main()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))]


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_mem_kb(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


# --- the vehicles (worker processes) -------------------------------------------------------------
def _worker(vehicles: list[tuple[str, str, str]], center_url: str, rate: float, duration: float, workdir: str,
            ready: mp.Queue, go, out: mp.Queue) -> None:
    sys.path.insert(0, str(REPO))
    import logging

    logging.basicConfig(level=logging.ERROR)
    from detector.alerts import open_store
    from detector.push import HttpPushSender

    req_lat: list[float] = []
    req_items: list[int] = []
    e2e_lat: list[float] = []
    lock = threading.Lock()

    class TimedSender(HttpPushSender):
        def _post(self, path, method="POST", **kw):
            t0 = time.perf_counter()
            r = super()._post(path, method, **kw)
            if path in ("/api/v1/ingest", "/api/v1/ingest/batch"):
                n = len(kw["json"]["items"]) if path.endswith("/batch") else 1
                with lock:
                    req_lat.append(time.perf_counter() - t0)
                    req_items.append(n)
            return r

    stores, senders, written = [], [], []
    for vid, tok, site in vehicles:
        st = open_store(None, data_dir=Path(workdir) / vid)
        snd = TimedSender(st, center_url=center_url, token=tok, vehicle_id=vid, site=site,
                          heartbeat_s=5.0, poll_s=0.05)

        def on_delivered(item, seconds):
            with lock:
                e2e_lat.append(seconds)

        snd.on_delivered = on_delivered
        stores.append(st)
        senders.append(snd.start())
        written.append(0)

    def writer(i: int) -> None:
        rng = random.Random(i)
        st, vid, site = stores[i], vehicles[i][0], vehicles[i][2]
        tracks: list[str] = []
        n = 0
        go.wait()
        t0 = time.monotonic()
        while True:
            due = t0 + n / rate
            now = time.monotonic()
            if now - t0 >= duration:
                break
            if due > now:
                time.sleep(due - now)
            if not tracks or rng.random() < 0.2:
                tracks.append(f"T{len(tracks):05d}")
                tid = tracks[-1]
            else:
                tid = rng.choice(tracks[-20:])
            ev = {"event": "update", "track_id": tid, "alert": True, "center_hz": 446e6 + 12500 * (len(tracks) % 16),
                  "bandwidth_hz": 11000.0, "first_seen_s": 0.0, "last_seen_s": float(n + 1), "snr_db": 10 + 20 * rng.random(),
                  "classification": "nfm_voice", "severity": "high", "reasons": ["bench"]}
            if st.apply_event(ev, site=site, run_id=vid) is not None:
                written[i] += 1
            n += 1

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(len(stores))]
    for t in threads:
        t.start()
    ready.put(len(stores))
    for t in threads:
        t.join()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(s.pending() for s in senders):
        time.sleep(0.1)
    pending = sum(max(0, s.pending()) for s in senders)
    versions = 0
    for st in stores:
        off = 0
        while True:
            page, total = st.list(limit=1000, offset=off)
            versions += sum(a.version for a in page)
            off += len(page)
            if off >= total or not page:
                break
    for s in senders:
        s.stop()
    for st in stores:
        st.close()
    out.put({"written": sum(written), "versions": versions, "pending": pending, "req_lat": req_lat, "req_items": req_items,
             "e2e_lat": e2e_lat})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vehicles", type=int, default=20)
    ap.add_argument("--rate", type=float, default=10.0, help="alert changes per second per vehicle")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--procs", type=int, default=2, help="worker processes for the vehicles")
    ap.add_argument("--db", default=None, help="center store URL (default: SQLite in a temporary folder)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.vehicles < 1 or args.rate <= 0 or args.duration <= 0 or args.procs < 1:
        ap.error("--vehicles, --rate, --duration and --procs must be positive")

    work = Path(tempfile.mkdtemp(prefix="examwatch-bench-"))
    tokens = {f"bench-{i:02d}": f"tok-{uuid.uuid4().hex}" for i in range(args.vehicles)}
    (work / "vehicles.txt").write_text("".join(f"{v} {t}\n" for v, t in tokens.items()))
    port = _free_port()
    log = open(work / "center.log", "wb")
    cmd = [sys.executable, "-c", SERVE_LAUNCHER, "serve", "--host", "127.0.0.1", "--port", str(port),
           "--vehicle-tokens", str(work / "vehicles.txt"), "--data-dir", str(work / "center"), "--log-level", "warning"]
    if args.db:
        cmd += ["--db", args.db]
    center = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    try:
        deadline = time.monotonic() + 30
        while True:
            if center.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the center did not start: {(work / 'center.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

        items = [(v, t, f"site-{i % 5}") for i, (v, t) in enumerate(tokens.items())]
        groups = [items[i::args.procs] for i in range(args.procs) if items[i::args.procs]]
        ctx = mp.get_context("spawn")
        q, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_worker, args=(g, url, args.rate, args.duration, str(work / f"w{k}"), ready, go, q))
                 for k, g in enumerate(groups)]
        for p in procs:
            p.start()
        for _ in procs:  # every worker has opened its stores and started its senders
            ready.get(timeout=120)
        go.set()
        cpu0, t0 = _proc_cpu_s(center.pid), time.monotonic()
        wcpu0 = sum(_proc_cpu_s(p.pid) for p in procs)
        peak = 0
        while time.monotonic() - t0 < args.duration:
            peak = max(peak, _proc_mem_kb(center.pid)[0])
            time.sleep(0.5)
        cpu1, t1 = _proc_cpu_s(center.pid), time.monotonic()
        wcpu1 = sum(_proc_cpu_s(p.pid) for p in procs)
        load1 = os.getloadavg()[0]
        results = [q.get(timeout=args.duration + 120) for _ in procs]
        for p in procs:
            p.join(30)
        rss, hwm = _proc_mem_kb(center.pid)
        metrics = httpx.get(url + "/metrics", timeout=10).text
        ingested = next((int(float(line.split()[-1])) for line in metrics.splitlines()
                         if line.startswith("examwatch_center_ingested ")), None)
        total_alerts = httpx.get(url + "/api/v1/alerts", params={"limit": 1}, timeout=10).json()["count"]
    finally:
        center.send_signal(signal.SIGTERM)
        try:
            center.wait(15)
        except subprocess.TimeoutExpired:
            center.kill()
        log.close()

    req = [x for r in results for x in r["req_lat"]]
    items = [x for r in results for x in r["req_items"]]
    e2e = [x for r in results for x in r["e2e_lat"]]
    written = sum(r["written"] for r in results)
    versions = sum(r["versions"] for r in results)
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    report = {
        "vehicles": args.vehicles, "rate_per_vehicle": args.rate, "duration_s": args.duration,
        "offered_changes_per_s": args.vehicles * args.rate, "changes_written": written,
        "achieved_changes_per_s": round(written / args.duration, 1), "center_ingested": ingested,
        "center_alerts": total_alerts, "missing": versions - (ingested or 0), "pending_after_drain": sum(r["pending"] for r in results),
        "ingest_request_ms": {"p50": ms(_pct(req, 50)), "p99": ms(_pct(req, 99)), "max": ms(max(req) if req else None), "n": len(req),
                              "changes_per_request": round(sum(items) / len(items), 2) if items else None},
        "end_to_end_ms": {"p50": ms(_pct(e2e, 50)), "p99": ms(_pct(e2e, 99)), "n": len(e2e)},
        "center_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "vehicles_cpu_percent_of_one_core": round(100 * (wcpu1 - wcpu0) / (t1 - t0), 1),
        "machine_load_avg_1min": round(load1, 2), "cpus": os.cpu_count(),
        "center_rss_mb": round(rss / 1024, 1), "center_peak_rss_mb": round(max(hwm, peak) / 1024, 1),
        "store": args.db or "sqlite (temporary)",
    }
    if args.json:
        print(json.dumps(report))
    else:
        r = report
        print(f"{r['vehicles']} vehicles x {r['rate_per_vehicle']:g} changes/s for {r['duration_s']:g} s "
              f"(store: {r['store']})")
        print(f"  changes written      {r['changes_written']} ({r['achieved_changes_per_s']}/s)")
        print(f"  center ingested      {r['center_ingested']} versions, {r['center_alerts']} alerts, missing {r['missing']}")
        q = r["ingest_request_ms"]
        print(f"  ingest request       p50 {q['p50']} ms   p99 {q['p99']} ms   max {q['max']} ms   "
              f"({q['n']} requests, {q['changes_per_request']} changes each on average)")
        print(f"  change -> delivered  p50 {r['end_to_end_ms']['p50']} ms   p99 {r['end_to_end_ms']['p99']} ms")
        print(f"  center CPU           {r['center_cpu_percent_of_one_core']} % of one core")
        print(f"  center memory        RSS {r['center_rss_mb']} MB, peak {r['center_peak_rss_mb']} MB")
        print(f"  (the simulated vehicles used {r['vehicles_cpu_percent_of_one_core']} % of one core; "
              f"load average {r['machine_load_avg_1min']} on {r['cpus']} CPUs)")
    return 0 if report["missing"] == 0 and report["pending_after_drain"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
