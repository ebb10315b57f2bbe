#!/usr/bin/env python3
"""Probability of intercept, measured (issue #19 "Show"): a simulated hour of short FSK bursts on
random channels across the default watch plan (30 MHz–1 GHz) and a voice transmitter, watched by 1
and by N receivers; per band the share of bursts detected beside the planner's predicted catch rate.

Usage:  python bench/intercept.py [--receivers 1 4] [--hours 1] [--per-band 6] [--seed 1] [--json]

How it is simulated (nothing here is the formula of ``detector/config/intercept.py``):

* each receiver runs the real :class:`~detector.config.plan.Scheduler` over its share of the
  plan (:func:`~detector.config.receivers.receiver_schedulers`, as ``examwatch monitor`` assigns
  it) with the capture loop's timing: a retune costs ``retune_s`` (10 ms), the dwell timer starts
  after it, blocks of 2^16 samples are read until the dwell is over (so a dwell is rounded up to
  whole blocks, as the capture thread does) and the first block after a retune is discarded (the
  RTL-SDR source's ``SETTLE_SAMPLES``);
* transmitters: ``--per-band`` per band of the plan, each sending a 2 s 2-FSK burst (4.8 kBd,
  ±2.4 kHz) every 180 s at a random phase, each burst on a random 12.5 kHz channel of the band,
  about 20 dB over the noise in 12.5 kHz;
  one NFM voice transmitter in PMR446 talking 20 s every 2 minutes;
* a burst counts as **detected** when the real detection engine (default settings, no baseline),
  run on the IQ blocks the receivers actually read while it was on (synthesised at their tuning:
  noise, the burst at its offset), alerts on a track within 15 kHz of its channel. A hop sees a
  channel within its usable span (80 % of the sample rate, the scheduler's hop width): the
  RTL2832U's decimation filter attenuates the outer 10 % on each side, which the synthesis does
  not model (counting them adds 10–25 % to the swept bands' figures).

Predicted figures: ``p_plan`` is the planner's P(one burst) (``plan check --receivers N``);
``p_log`` the exact catch rate of the simulated dwell log (``measured_catch``, the figure
``/health`` → ``intercept`` reports). The table gives per band the bursts, the share detected and
both predictions. Takes a few minutes on 2 cores for 1 and 4 receivers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detector.app.monitor_app import build_engine  # noqa: E402
from detector.config.dwell_log import Dwell, measured_catch  # noqa: E402
from detector.config.intercept import ReceiverModel, plan_catch  # noqa: E402
from detector.config.plan import default_plan  # noqa: E402
from detector.config.receivers import receiver_schedulers  # noqa: E402
from detector.core.types import IQBlock  # noqa: E402
from detector.detection.engine import EngineConfig  # noqa: E402
from detector.sim import awgn, nfm  # noqa: E402

FS = 2.4e6
BLOCK = 1 << 16
NOISE_DBFS = -30.0
BURST_S, PERIOD_S = 2.0, 180.0
#: the span of a hop where a channel is seen (the scheduler's hop width)
USABLE = 0.8 * FS


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Visit:
    receiver: int
    center_hz: float
    #: (start s, n samples) of the blocks kept (the one after the retune discarded)
    blocks: list[tuple[float, int]]

    def __post_init__(self) -> None:
        self.starts = np.array([t for t, _ in self.blocks])

    def between(self, a: float, b: float) -> range:
        """Indices of the blocks that overlap [a, b)."""
        i0 = max(0, int(np.searchsorted(self.starts, a - BLOCK / FS, side="right")))
        i1 = int(np.searchsorted(self.starts, b, side="left"))
        return range(i0, i1)


def receiver_timeline(sch, receiver: int, seconds: float, model: ReceiverModel) -> list[Visit]:
    """The blocks a receiver reads over ``seconds`` (module docstring)."""
    t, out = 0.0, []
    blk = BLOCK / FS
    if sch.single:  # a staring receiver: tuned once, then read block after block
        n = int((seconds - model.retune_s) / blk)
        out.append(Visit(receiver, sch.hops[0].center_hz, [(model.retune_s + (i + 1) * blk, BLOCK) for i in range(n - 1)]))
        return out
    while t < seconds:
        hop = sch.next_hop(t)
        t += model.retune_s
        until = t + sch.dwell_for(hop, t)
        blocks = []
        first = True
        while t < until:
            if not first:
                blocks.append((t, BLOCK))
            first = False
            t += blk
        out.append(Visit(receiver, hop.center_hz, blocks))
    return out


def fsk(n: int, f_hz: float, level_dbfs: float, rng, baud: float = 4800.0, dev_hz: float = 2400.0):
    sym = rng.integers(0, 2, int(np.ceil(n * baud / FS)) + 1) * 2 - 1
    inst = f_hz + dev_hz * np.repeat(sym, int(np.ceil(FS / baud)))[:n]
    ph = 2 * np.pi * np.cumsum(inst) / FS + rng.uniform(0, 2 * np.pi)
    return (10 ** (level_dbfs / 20) * np.exp(1j * ph)).astype(np.complex64)


def detected(visits: list[Visit], f_hz: float, on: list[tuple[float, float]], rng, voice: bool = False,
             level_dbfs: float = -44.0) -> float | None:
    """The time the engine first alerts on a transmitter at ``f_hz`` on during ``on``, over the
    blocks of ``visits`` (None: never)."""
    half = USABLE / 2
    first = None
    for v in visits:
        if abs(f_hz - v.center_hz) > half:
            continue
        sel = sorted({i for a, b in on for i in v.between(a, b)})
        if not sel:
            continue
        eng = build_engine(EngineConfig())
        # the dwell's blocks from two before the overlap (the detector starts cold on each visit, as
        # after a retune) to its end
        idx = range(max(0, sel[0] - 2), sel[-1] + 1)
        for k, i in enumerate(idx):
            t0, n = v.blocks[i]
            x = awgn(n, NOISE_DBFS, rng)
            for a, b in on:
                i0, i1 = max(0, int((a - t0) * FS)), min(n, int(np.ceil((b - t0) * FS)))
                if i1 > i0:
                    sig = (nfm(i1 - i0, FS, f_hz - v.center_hz, level_dbfs, rng) if voice
                           else fsk(i1 - i0, f_hz - v.center_hz, level_dbfs, rng))
                    x[i0:i1] += sig
            for ev in eng.process_block(IQBlock(x, v.center_hz, FS, offset_s=t0, retuned=k == 0)):
                if getattr(ev, "alert", False) and abs(ev.center_hz - f_hz) < 15e3:
                    t = ev.last_seen_s if hasattr(ev, "last_seen_s") else t0
                    first = t if first is None else min(first, t)
            if first is not None and first <= t0:
                break
        for ev in eng.finish():
            if getattr(ev, "alert", False) and abs(ev.center_hz - f_hz) < 15e3:
                first = v.blocks[sel[-1]][0] if first is None else first
    return first


def run(n_rx: int, hours: float, per_band: int, seed: int) -> dict:
    plan = default_plan()
    model = ReceiverModel(sample_rate_hz=FS)
    seconds = hours * 3600.0
    shares = receiver_schedulers(plan, FS, n_rx, model=model)
    visits: list[Visit] = []
    for r, s in enumerate(shares):
        visits += receiver_timeline(s.scheduler, r, seconds, model)
    dwells = []
    for v in visits:
        if v.blocks:
            dwells.append(Dwell(v.center_hz, v.blocks[0][0], v.blocks[-1][0] + v.blocks[-1][1] / FS, v.receiver))
    pred = {b.name: b for b in plan_catch(plan, n_rx, burst_s=BURST_S, period_s=PERIOD_S, model=model).bands}
    achieved = {b["name"]: b for b in measured_catch(plan, dwells, burst_s=BURST_S, model=model, receivers=n_rx)["bands"]}
    rng = np.random.default_rng(seed)
    # the visits by hop center, in time order (a channel → the centers that see it → their visits)
    by_center: dict[float, list[Visit]] = {}
    for v in visits:
        if v.blocks:
            by_center.setdefault(v.center_hz, []).append(v)
    centers = np.array(sorted(by_center))
    ends = {c: np.array([vs.blocks[-1][0] + BLOCK / FS for vs in by_center[c]]) for c in by_center}

    def visits_at(ch: float, a: float, b: float) -> list[Visit]:
        out = []
        for c in centers[np.abs(centers - ch) <= USABLE / 2]:
            vs = by_center[float(c)]
            i = int(np.searchsorted(ends[float(c)], a, side="right"))  # the first visit ending after a
            while i < len(vs) and vs[i].blocks[0][0] < b:
                out.append(vs[i])
                i += 1
        return out

    rows = []
    for band in plan.bands:
        caught = total = 0
        t_band = time.perf_counter()
        n_ch = max(1, int((band.stop_hz - band.start_hz) / 12.5e3))
        for _ in range(per_band):
            phase = rng.uniform(0, PERIOD_S)
            for s0 in np.arange(phase, seconds - BURST_S, PERIOD_S):
                ch = band.start_hz + 6.25e3 + 12.5e3 * rng.integers(0, n_ch)  # each burst on a random channel
                total += 1
                if detected(visits_at(ch, s0, s0 + BURST_S), ch, [(s0, s0 + BURST_S)], rng) is not None:
                    caught += 1
        rows.append({"band": band.name, "priority": band.priority, "bursts": total, "detected": caught,
                     "share": round(caught / total, 4) if total else None, "p_plan": round(pred[band.name].p_burst, 4),
                     "p_log": achieved[band.name]["p_burst_achieved"], "seconds": round(time.perf_counter() - t_band, 1)})
        log(f"  {n_rx} rx {band.name:13} {caught:4}/{total:<4} = {caught / max(total, 1):6.1%}  plan {pred[band.name].p_burst:6.1%}  "
            f"log {achieved[band.name]['p_burst_achieved'] or 0:6.1%}")
    # the voice transmitter: PMR446, 20 s of talk every 120 s
    ch = 446.05625e6
    talks = [(t, t + 20.0) for t in np.arange(30.0, seconds - 20.0, 120.0)]
    near = [v for v in visits if abs(ch - v.center_hz) <= USABLE / 2]
    t_voice = detected(near, ch, talks[:3], rng, voice=True)
    prio = [r for r in rows if r["priority"] >= 4]
    return {"receivers": n_rx, "hours": hours, "bands": rows,
            "priority_share": round(sum(r["detected"] for r in prio) / sum(r["bursts"] for r in prio), 4),
            "voice_first_alert_s": None if t_voice is None else round(t_voice - talks[0][0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--receivers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--per-band", type=int, default=6, help="burst transmitters per band (20 bursts an hour each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = []
    for n in args.receivers:
        log(f"{n} receiver(s), {args.hours:g} h …")
        out.append(run(n, args.hours, args.per_band, args.seed))
    if args.json:
        print(json.dumps(out))
        return
    for r in out:
        print(f"\n{r['receivers']} receiver(s): priority-band share {r['priority_share']:.1%}, voice first alert "
              f"{r['voice_first_alert_s']} s after it started")
        print(f"{'band':14}{'prio':>5}{'bursts':>8}{'detected':>10}{'P plan':>9}{'P log':>9}")
        for b in r["bands"]:
            p_log = b["p_log"] if b["p_log"] is not None else float("nan")
            print(f"{b['band']:14}{b['priority']:>5}{b['bursts']:>8}{b['share']:>10.1%}{b['p_plan']:>9.1%}{p_log:>9.1%}")


if __name__ == "__main__":
    main()
