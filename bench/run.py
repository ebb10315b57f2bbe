#!/usr/bin/env python3
"""examwatch performance budget (issue #10): real-time factors and latencies in one process run.

Usage:  python bench/run.py [--quick] [--json]

Keys (``--json`` prints one object on one line with exactly these, plus a few more):

* ``pipeline_msps``: complex samples/s through the whole chain on one core — cu8 bytes → complex64
  → framed PSD → detection against a baseline → tracking → alert decisions — in blocks of 2^19
  samples, the size the monitor reads and processes when it has to keep up (once blocks wait in
  its queue); ``realtime_factor`` = pipeline_msps ÷ 2.4 MS/s. The signal is the same at every
  duration: noise, three licensed stations that the baseline survey also holds, and two new NFM
  transmitters on for a sixth of the time each (a third of the frames hold an emission). ``pipeline_msps_2e18`` and
  ``ratio_2e18``: the same with 2^18-sample blocks. ``pipeline_core_msps`` and ``ratio_core``:
  the same chain with the checks added after the redesign of issue #17 switched off (frequency
  error and jamming of #18, overload and by-products of #18 items 1–2), i.e. the chain the code
  before the redesign (79e862a) ran; ``checks_cost`` = 1 − pipeline_msps ÷ pipeline_core_msps.
  ``pipeline_nointegration_msps`` and ``ratio_nointegration``: the default chain with the
  long-integration stage (#18 item 5, on by default) off; ``integration_cost`` = 1 −
  pipeline_msps ÷ pipeline_nointegration_msps.
* ``fft_welch_msps``: the bare framed Welch (the same ``FrameStream``: FFT backend, |X|² kernel,
  sizes, buffers, cu8 conversion) in the same run; ``ratio`` = bare time ÷ pipeline time (1.0 = detection costs
  nothing), the median over 15 back-to-back pairs (``ratio_range`` their spread, ``ratio_of_best``
  the two best-of times); throughputs are best-of-15.
* ``hop_overhead``: wall-clock time per hop of the simulated SDR paced to real time, settle
  included, ÷ (settle + dwell).
* ``alert_latency_s``: wall-clock time from the block holding a burst's first sample entering the
  pipeline (fed at real-time pace) to its first alerting event, dwell mode, SNR 10 dB.
* ``rss_growth_mb``: resident memory growth over a 2-hour simulated session (PSD-level fast path;
  30 minutes with ``--quick``) after a warm-up.
* ``api_p99_ms``: p99 latency of ``GET /api/v1/alerts`` and ``/api/v1/spectrum/latest`` under a
  bounded loopback load of 200 requests/s (30 s; 10 s with ``--quick``) from a second process,
  while the monitor runs on a real-time simulated source; ``frames_dropped`` is reported with it.

Run from the repository root: ``.venv/bin/python bench/run.py --quick``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from dataclasses import replace
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detector.baseline import BaselineBuilder  # noqa: E402
from detector.dsp import FrameStream, cu8_to_complex64  # noqa: E402
from detector.app.monitor_app import AppSettings, MonitorApp, build_engine  # noqa: E402
from detector.detection.engine import EngineConfig  # noqa: E402
from detector.sim import awgn, cu8_bytes, gate, nfm  # noqa: E402
from detector.core.types import IQBlock  # noqa: E402

FS = 2.4e6
CENTER = 446.0e6
BLOCK = 1 << 18  # samples per block of the baseline survey and of the secondary pipeline figure
#: the stack the monitor processes when it must keep up: once blocks wait in its queue it reads
#: Monitor.coalesce_samples (2^19) at a time; the headline pipeline figures use that size
STACK = 1 << 19


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


#: the site's licensed stations in the pipeline workload, on in the survey and during the exam:
#: (offset from the center Hz, level dBFS)
STATIONS = ((-700e3, -38.0), (450e3, -42.0), (900e3, -35.0))


def synthetic_cu8(seconds: float, seed: int, bursts=(), stations=()) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = awgn(n, -30.0, rng)
    for f, level in stations:
        x += nfm(n, FS, f, level, rng)
    for f, a, b, level in bursts:
        x += gate(nfm(n, FS, f, level, rng), FS, [(a, b)])
    return cu8_bytes(x)


def baseline_for(raw: np.ndarray, cfg: EngineConfig):
    eng = build_engine(cfg)
    builder = None
    for i in range(0, raw.size, 2 * BLOCK):
        for spec in eng.frames_of_block(IQBlock(cu8_to_complex64(raw[i:i + 2 * BLOCK]), CENTER, FS, offset_s=i / 2 / FS)):
            if builder is None:
                builder = BaselineBuilder(spec.freqs_hz, rbw_hz=spec.rbw_hz, site="bench", n_looks=spec.n_looks)
            builder.add(spec)
    return builder.build()


def bench_pipeline(seconds: float, block: int = STACK, *, checks: bool = True, integration: bool = True) -> dict:
    cfg = EngineConfig(fft_backend="auto")  # as the monitor runs: pyFFTW when installed
    if not checks:  # the chain of 79e862a (before issues #18 and #24): no frequency-error, jamming or overload checks
        cfg = replace(cfg, frequency_error=None, jam_after_s=None, overload=None, byproducts=None, integration=None)
    if not integration:  # the long-integration stage (#18 item 5) off, the rest as the monitor runs
        cfg = replace(cfg, integration=None)
    base = baseline_for(synthetic_cu8(4.0, 1, stations=STATIONS), cfg)
    # the monitored signal, the same at every duration: the site's stations (explained by the
    # baseline) and two new NFM transmitters, on for 1/6 of the time each (a third of the frames
    # hold an emission to track, classify and decide on)
    raw = synthetic_cu8(seconds, 2, stations=STATIONS,
                        bursts=[(150e3, seconds / 12, seconds / 4, -40.0), (-300e3, seconds / 3, seconds / 2, -45.0)])
    n = raw.size // 2

    def run_pipeline():
        eng = build_engine(cfg, baseline=base)
        events = 0
        for i in range(0, raw.size, 2 * block):
            x = cu8_to_complex64(raw[i:i + 2 * block])
            events += len(eng.process_block(IQBlock(x, CENTER, FS, offset_s=i / 2 / FS)))
        events += len(eng.finish())
        return eng, events

    def run_bare(plan, spf):
        # the same framer (FFT backend, |X|² kernel, sizes, buffers, cu8 conversion) without detection
        stream = FrameStream(plan, spf, backend=cfg.fft_backend)
        for i in range(0, raw.size, 2 * block):
            stream.push(cu8_to_complex64(raw[i:i + 2 * block]))
        return stream

    eng, _ = run_pipeline()  # warm-up: caches, imports, FFTW plans
    plan, spf = eng._stream.plan, eng._stream.segments_per_frame  # noqa: SLF001
    backend = run_bare(plan, spf).backend
    best_p, best_b, ratios = float("inf"), float("inf"), []
    for _ in range(15):
        # pairs run back to back: the ratio of each pair sees the same machine state (on a shared
        # machine the FFT's speed varies more than the detection's); throughputs are best-of
        t = time.perf_counter()
        eng, events = run_pipeline()
        tp = time.perf_counter() - t
        t = time.perf_counter()
        run_bare(plan, spf)
        tb = time.perf_counter() - t
        best_p, best_b = min(best_p, tp), min(best_b, tb)
        ratios.append(tb / tp)
    alerts = sum(1 for tr in eng.all_tracks.values() if tr.alert)
    return {"pipeline_msps": round(n / best_p / 1e6, 2), "realtime_factor": round(n / best_p / FS, 2),
            "fft_welch_msps": round(n / best_b / 1e6, 2), "ratio": round(float(np.median(ratios)), 3),
            "ratio_of_best": round(best_b / best_p, 3), "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "nfft": plan.nfft, "frame_s": cfg.frame_s, "block_samples": block, "fft_backend": backend,
            "pipeline_alerts": alerts}


def bench_hops(hops: int) -> dict:
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR

    sc = scene_from_spec("sim:default")
    sdr = SimSDR(sc, window="exam", realtime=True)
    dwell_s = 0.1
    settle = sc.receiver.settle_s
    n = int(dwell_s * sdr.sample_rate_hz)
    centers = [445.8e6, 446.0e6, 446.2e6]
    sdr.read(n)  # start the pacing clock
    t = time.perf_counter()
    for k in range(hops):
        sdr.tune(centers[k % 3])
        sdr.read(n)
    per_hop = (time.perf_counter() - t) / hops
    return {"hop_overhead": round(per_hop / (settle + dwell_s), 4), "hop_s": round(per_hop, 4), "dwell_s": dwell_s,
            "settle_s": settle}


def bench_alert_latency() -> dict:
    cfg = EngineConfig()
    base = baseline_for(synthetic_cu8(3.0, 3), cfg)
    # SNR 10 dB in the 11 kHz channel: noise −30 dBFS over 2.4 MHz → −53.4 dBFS in 11 kHz
    onset = 1.0
    raw = synthetic_cu8(2.0, 4, bursts=[(200e3, onset, 2.0, -53.4 + 10.0)])
    eng = build_engine(cfg, baseline=base)
    block = 1 << 14  # 6.8 ms: the RTL-SDR's USB buffer scale
    onset_block_t = None
    latency = None
    t_start = time.perf_counter()
    for i in range(0, raw.size, 2 * block):
        t0 = i / 2 / FS
        # feed at real-time pace
        wait = t0 - (time.perf_counter() - t_start)
        if wait > 0:
            time.sleep(wait)
        if onset_block_t is None and t0 + block / FS > onset:
            onset_block_t = time.perf_counter()
        events = eng.process_block(IQBlock(cu8_to_complex64(raw[i:i + 2 * block]), CENTER, FS, offset_s=t0))
        if onset_block_t is not None and any(e.alert for e in events):
            latency = time.perf_counter() - onset_block_t
            break
    persistence_s = cfg.decision.k * cfg.frame_s
    return {"alert_latency_s": None if latency is None else round(latency, 4), "persistence_min_s": persistence_s}


def bench_memory(hours: float) -> dict:
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimPsd

    sc = scene_from_spec("sim:scenes/evaluation-2h.toml") if os.path.exists("scenes/evaluation-2h.toml") else scene_from_spec("sim:default")
    span = hours * 3600.0
    exam = [(sc.timeline.exam[0][0], sc.timeline.exam[0][0] + span)]
    sc = sc.model_copy(update={"timeline": sc.timeline.model_copy(update={"exam": exam})})
    psd = SimPsd(sc, nfft=1024, segments_per_frame=200, window="exam")  # 0.1 s frames
    eng = build_engine(EngineConfig(frame_s=psd.frame_s))
    warm = None
    n = 0
    t0 = time.perf_counter()
    for spec in psd.frames():
        eng.process_spectrum(spec)
        n += 1
        if warm is None and spec.offset_s - psd.t_start >= min(600.0, span / 4):
            warm = _rss_mb()
    end = _rss_mb()
    return {"rss_growth_mb": round(end - (warm or end), 2), "memory_session_h": hours, "memory_frames": n,
            "memory_wall_s": round(time.perf_counter() - t0, 1)}


_LOAD_CLIENT = r"""
# Paced loopback load: request k is due at k/rate; 16 threads with keep-alive connections
# (http.client, stdlib); latency is measured from the due time, so a late sender counts against
# the server (no coordinated omission).
import http.client, json, sys, threading, time
host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
paths = sys.argv[5].split(",") if len(sys.argv) > 5 else ["/api/v1/alerts", "/api/v1/spectrum/latest"]
total = int(rate * seconds)
workers = 16
lat, errors = [], [0]
lock = threading.Lock()
start = time.perf_counter() + 0.2
def work(w):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    for k in range(w, total, workers):
        due = start + k / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        try:
            conn.request("GET", paths[k % 2])
            r = conn.getresponse()
            r.read()
            bad = r.status >= 500
        except Exception:
            bad = True
            conn = http.client.HTTPConnection(host, port, timeout=10)
        done = time.perf_counter()
        with lock:
            if bad:
                errors[0] += 1
            else:
                lat.append((done - due) * 1000)
threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
lat.sort()
print(json.dumps({"n": len(lat), "errors": errors[0], "p50": lat[len(lat) // 2], "p99": lat[max(0, int(len(lat) * 0.99) - 1)]}))
"""


def bench_api(seconds: float, rate: float = 200.0) -> dict:
    import tempfile
    from pathlib import Path

    import uvicorn

    from detector.config.plan import Scheduler, single_band_plan
    from detector.app.runs import survey_baseline
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR

    sys.setswitchinterval(0.001)  # as examwatch monitor does
    sc = scene_from_spec("sim:default")
    base = survey_baseline([SimSDR(sc, window="survey")], build_engine(EngineConfig()), site="S", max_duration_s=20.0)
    tmp = Path(tempfile.mkdtemp(prefix="examwatch-bench-"))
    src = SimSDR(sc, window="exam", realtime=True)
    src.t = 205.0  # the hidden transmitter starts at 210 s: alerts change in the store during the load
    vehicle = MonitorApp.build(AppSettings(data_dir=tmp, token="bench-token-0123", lock=False, resume=False, dismissals=False),
                               source_factory=lambda: src, site="S", baseline=base, stream=False, realtime=True,
                               run_id="bench",
                               scheduler=Scheduler(single_band_plan(src.center_hz, src.sample_rate_hz), src.sample_rate_hz))
    mon, app = vehicle.monitor, vehicle.api
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    mon.start()
    while not server.started:
        time.sleep(0.05)
    time.sleep(2.0)  # let frames flow
    dropped0 = mon.health()["frames_dropped"]
    out = subprocess.run([sys.executable, "-c", _LOAD_CLIENT, "127.0.0.1", str(port), str(rate), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 120)
    h = mon.health()
    server.should_exit = True
    mon.stop()
    th.join(10)
    vehicle.stop()
    res = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"p99": None, "p50": None, "n": 0, "errors": -1}
    return {"api_p99_ms": None if res["p99"] is None else round(res["p99"], 2),
            "api_p50_ms": None if res["p50"] is None else round(res["p50"], 2), "api_requests": res["n"],
            "api_errors": res["errors"], "api_rate_per_s": rate, "api_seconds": seconds,
            "frames_dropped": h["frames_dropped"] - dropped0, "monitor_frames_processed": h["frames_processed"]}


def bench_receivers(n: int, seconds: float) -> dict:
    """Issue #19 item 5: ``n`` receivers at 2.4 MS/s, each a source paced to real time as a dongle
    is (2^16 samples per read, cu8 converted in the capture thread) with its own engine and
    monitor loop, one store, for ``seconds`` of wall time. ``receivers_frames_dropped`` counts
    frames the loops had to drop because processing fell behind (0 = real time kept);
    ``receivers_msps`` the samples processed per second by all loops together;
    ``receivers_cpu`` the process's CPU time ÷ wall time (cores busy, of os.cpu_count())."""
    import tempfile

    from detector.app.monitor_app import ReceiverSpec
    from detector.sources import IQSource, SourceInfo

    raw = synthetic_cu8(8.0, 3, stations=STATIONS, bursts=[(150e3, 2.0, 4.0, -40.0)])
    base = baseline_for(synthetic_cu8(4.0, 1, stations=STATIONS), EngineConfig(fft_backend="auto"))
    read_n = 1 << 16

    class Paced(IQSource):
        """An endless dongle at 2.4 MS/s: reads wait for their samples' time, as USB transfers do."""

        readable = True

        def __init__(self, k: int) -> None:
            self.info = SourceInfo(kind="raw", name=f"paced{k}", center_hz=CENTER, sample_rate_hz=FS, n_samples=None)
            self.pos = (k * 7919 * 2 * read_n) % raw.size
            self.t = 0.0
            self.wall0 = None

        def _exhausted(self) -> bool:
            return False

        def _read_block(self, n_samples: int) -> IQBlock:
            now = time.monotonic()
            if self.wall0 is None:
                self.wall0 = now
            lag = self.t + n_samples / FS - (now - self.wall0)
            if lag > 0:
                time.sleep(lag)
            i = self.pos % raw.size
            chunk = raw[i:i + 2 * n_samples]
            if chunk.size < 2 * n_samples:
                chunk = np.concatenate([chunk, raw[:2 * n_samples - chunk.size]])
            self.pos = i + 2 * n_samples
            x = cu8_to_complex64(chunk)
            b = IQBlock(x, CENTER, FS, offset_s=self.t, retuned=self.t == 0.0)
            self.t += n_samples / FS
            return b

        def _close(self) -> None:
            pass

    specs = [ReceiverSpec(f"rx{k}", (lambda k=k: Paced(k)), bands=(f"b{k}",)) for k in range(n)]
    with tempfile.TemporaryDirectory() as d:
        app = MonitorApp.build(AppSettings(data_dir=Path(d)), source_factory=(lambda: Paced(0)) if n == 1 else None,
                               site="bench", engine_config=EngineConfig(fft_backend="auto"), baseline=base,
                               realtime=True, receivers=specs if n > 1 else None,
                               monitor_options={"block_samples": read_n, "evidence": False})
        app.start()
        time.sleep(2.0)  # warm-up: FFTW plans, caches
        h0 = app.monitor.health()
        c0, t0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        h1 = app.monitor.health()
        c1, t1 = time.process_time(), time.monotonic()
        app.stop()
    per0 = h0.get("receivers") or [h0]
    per1 = h1.get("receivers") or [h1]
    frames = sum((b.get("frames_processed") or 0) - (a.get("frames_processed") or 0) for a, b in zip(per0, per1))
    dropped = sum((b.get("frames_dropped") or 0) - (a.get("frames_dropped") or 0) for a, b in zip(per0, per1))
    blocks = sum((b.get("blocks_read") or 0) - (a.get("blocks_read") or 0) for a, b in zip(per0, per1))
    wall = t1 - t0
    return {"receivers": n, "receivers_seconds": round(wall, 1), "receivers_frames_dropped": int(dropped),
            "receivers_frames": int(frames), "receivers_msps": round(blocks * read_n / wall / 1e6, 2),
            "receivers_needed_msps": round(n * FS / 1e6, 2),
            "receivers_cpu": round((c1 - c0) / wall, 2), "receivers_status": h1.get("status")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (all keys measured, < 3 minutes on 2 cores)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on one line")
    ap.add_argument("--receivers", type=int, default=4, help="receivers of the multi-receiver figure (default 4)")
    ap.add_argument("--only", choices=["receivers"], help="run one figure only")
    args = ap.parse_args()
    q = args.quick
    if args.only == "receivers":
        r = bench_receivers(args.receivers, 10.0 if q else 30.0)
        print(json.dumps(r) if args.json else "\n".join(f"{k:26} {v}" for k, v in r.items()))
        return
    out: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    t0 = time.perf_counter()
    log("pipeline vs bare framed Welch …")
    out.update(bench_pipeline(6.0 if q else 20.0))
    log(f"  {out['pipeline_msps']} MS/s ({out['realtime_factor']}× real time), bare {out['fft_welch_msps']} MS/s, ratio {out['ratio']}")
    small = bench_pipeline(6.0 if q else 20.0, BLOCK)
    out.update({"pipeline_msps_2e18": small["pipeline_msps"], "ratio_2e18": small["ratio"]})
    log(f"  with {BLOCK}-sample blocks: {small['pipeline_msps']} MS/s, ratio {small['ratio']}")
    core = bench_pipeline(6.0 if q else 20.0, checks=False)
    out.update({"pipeline_core_msps": core["pipeline_msps"], "ratio_core": core["ratio"],
                "checks_cost": round(1.0 - out["pipeline_msps"] / core["pipeline_msps"], 3)})
    log(f"  without the frequency-error, jamming and overload checks: {core['pipeline_msps']} MS/s, ratio {core['ratio']} "
        f"(the checks cost {100 * out['checks_cost']:.1f} %)")
    noint = bench_pipeline(6.0 if q else 20.0, integration=False)
    out.update({"pipeline_nointegration_msps": noint["pipeline_msps"], "ratio_nointegration": noint["ratio"],
                "integration_cost": round(1.0 - out["pipeline_msps"] / noint["pipeline_msps"], 3)})
    log(f"  without the integration stage: {noint['pipeline_msps']} MS/s, ratio {noint['ratio']} "
        f"(integration costs {100 * out['integration_cost']:.1f} %)")
    log("hop overhead (simulated SDR paced to real time) …")
    out.update(bench_hops(20 if q else 60))
    log(f"  {out['hop_overhead']}")
    log("alert latency …")
    out.update(bench_alert_latency())
    log(f"  {out['alert_latency_s']} s (persistence rule minimum {out['persistence_min_s']} s)")
    log("memory over a simulated session …")
    out.update(bench_memory(0.5 if q else 2.0))
    log(f"  {out['rss_growth_mb']} MB over {out['memory_session_h']} h")
    log(f"{args.receivers} receivers at 2.4 MS/s in real time …")
    out.update(bench_receivers(args.receivers, 10.0 if q else 30.0))
    log(f"  {out['receivers_msps']} MS/s processed of {out['receivers_needed_msps']} MS/s, frames dropped "
        f"{out['receivers_frames_dropped']}, CPU {out['receivers_cpu']} cores")
    log("API latency under load …")
    out.update(bench_api(10.0 if q else 30.0))
    log(f"  p99 {out['api_p99_ms']} ms, frames dropped {out['frames_dropped']}")
    out["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:26} {v}")


if __name__ == "__main__":
    main()
