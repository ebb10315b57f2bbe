/* A simulated walk-in with the hunt page's own logic (dashboards/static/hunt.js), run by
 * tests/dashboards/test_hunt_walk.py under Node.
 *
 * The world: a transmitter at the origin; the walker starts 100 m away at a random bearing, facing a
 * random way, and carries a receiver with a directional antenna (Yagi-like: ((1 + cos Δ)/2)^10, 3 dB
 * beamwidth ≈ 60°, front-to-back 15 dB). The level at a position and antenna heading:
 *   P0 − 10·n·log10(d) (n uniform in 2–3.5 per run)
 *   + shadowing (lognormal σ = 4 dB, exponential correlation 5 m: a sum of 256 random plane waves)
 *   + multipath: the direct path and 4 scattered paths from random directions (fixed per 5 m cell)
 *     carrying 1/K of the power (K uniform in 0–6 dB per cell), each weighted by the antenna's gain
 *   + fast fading averaged over a dwell of 8 looks, and the receiver's noise 10 dB under the level at 100 m (n = 3.5)
 * The compass reads the heading with a 5° (σ) error. Each step is 1 m along the page's heading; a
 * sweep (24 headings, 15° apart) costs 4 steps of the 400-step budget. Success: within 10 m.
 * The control walker ignores the page: after each sweep it walks a random way.
 *
 * Usage: node hunt_walk.js RUNS SEED  →  one JSON line.
 */
"use strict";
const path = require("path");
const H = require(path.join(__dirname, "..", "..", "dashboards", "static", "hunt.js"));

function mulberry32(a) {
  return function () {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function normal(rng) { return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng()); }
function hash(a, b, c) { let h = (a * 73856093) ^ (b * 19349663) ^ (c * 83492791); return h >>> 0; }

const SIGMA_DB = 4, CORR_M = 5, MODES = 256, LOOKS = 8, P0 = -30, NOISE_DB = -30 - 35 * 2 - 10;
const CELL_M = 5, N_SCAT = 4, COMPASS_DEG = 5, SWEEP_STEPS = 24, SWEEP_COST = 4, MAX_STEPS = 400;

function gainLin(deltaRad) { return Math.max(Math.pow(10, -1.5), Math.pow((1 + Math.cos(deltaRad)) / 2, 10)); }

function world(seed) {
  const rng = mulberry32(seed);
  const n = 2 + 1.5 * rng();
  const kx = [], ky = [], ph = [];
  for (let i = 0; i < MODES; i++) {  // exponential correlation in 2-D: |k| from its spectral density
    const u = rng(), k = Math.sqrt(Math.pow(1 / (1 - u), 2) - 1) / CORR_M, th = 2 * Math.PI * rng();
    kx.push(k * Math.cos(th)); ky.push(k * Math.sin(th)); ph.push(2 * Math.PI * rng());
  }
  const amp = SIGMA_DB * Math.sqrt(2 / MODES);
  function shadow(x, y) { let s = 0; for (let i = 0; i < MODES; i++) s += Math.cos(kx[i] * x + ky[i] * y + ph[i]); return amp * s; }
  function paths(x, y) {
    const r = mulberry32(hash(Math.floor(x / CELL_M), Math.floor(y / CELL_M), seed));
    const kDb = 6 * r(), scat = 1 / (1 + Math.pow(10, kDb / 10));
    const out = [{ az: Math.atan2(-y, -x), p: 1 - scat }];
    for (let i = 0; i < N_SCAT; i++) out.push({ az: 2 * Math.PI * r(), p: scat / N_SCAT });
    return out;
  }
  function level(x, y, headingRad, frng) {
    const d = Math.max(Math.hypot(x, y), 1);
    const mean = P0 - 10 * n * Math.log10(d) + shadow(x, y);
    let g = 0; for (const pth of paths(x, y)) g += pth.p * gainLin(pth.az - headingRad);
    let fade = 0; for (let i = 0; i < LOOKS; i++) fade += -Math.log(1 - frng());
    return 10 * Math.log10(Math.pow(10, mean / 10) * g * fade / LOOKS + Math.pow(10, NOISE_DB / 10));
  }
  return { n, level };
}

// compass heading (deg, clockwise from north) ↔ the world's angle (rad, counter-clockwise from east)
function toRad(hdg) { return (90 - hdg) * Math.PI / 180; }

function walk(seed, followPage) {
  const w = world(seed), rng = mulberry32(seed ^ 0x5bd1e995);
  const b = 2 * Math.PI * rng();
  let x = 100 * Math.cos(b), y = 100 * Math.sin(b), hdg = 360 * rng(), steps = 0, best = Infinity;
  let state = { mode: "sweep" }, advice = "sweep";
  while (steps < MAX_STEPS) {
    if (advice === "sweep") {
      const samples = [];
      for (let i = 0; i < SWEEP_STEPS; i++) {
        const h = (hdg + i * 360 / SWEEP_STEPS) % 360;
        samples.push({ heading_deg: h + COMPASS_DEG * normal(rng), level_db: w.level(x, y, toRad(h), rng) });
      }
      const r = H.sweepDone(state, samples);
      state = r.state; advice = r.advice;
      if (r.best) hdg = followPage ? r.best.heading_deg : 360 * rng();
      steps += SWEEP_COST;
      continue;
    }
    x += Math.cos(toRad(hdg)); y += Math.sin(toRad(hdg)); steps++;
    const d = Math.hypot(x, y); best = Math.min(best, d);
    if (d <= 10) return { ok: true, steps, n: w.n };
    const r = H.huntStep(state, { level_db: w.level(x, y, toRad(hdg), rng), moved_m: 1 });
    state = r.state; advice = r.advice;
  }
  return { ok: false, steps, n: w.n, closest_m: best };
}

const runs = parseInt(process.argv[2] || "200", 10), seed0 = parseInt(process.argv[3] || "1", 10);
const res = [], ctl = [];
for (let i = 0; i < runs; i++) { res.push(walk(seed0 + i, true)); ctl.push(walk(seed0 + i, false)); }
const ok = res.filter((r) => r.ok), steps = ok.map((r) => r.steps).sort((a, b) => a - b);
console.log(JSON.stringify({
  runs, seed: seed0, success: ok.length / runs, median_steps: steps.length ? steps[Math.floor(steps.length / 2)] : null,
  control_success: ctl.filter((r) => r.ok).length / runs,
  failures: res.map((r, i) => r.ok ? null : { seed: seed0 + i, n: +r.n.toFixed(2), closest_m: +r.closest_m.toFixed(1) }).filter(Boolean).slice(0, 10)
}));
