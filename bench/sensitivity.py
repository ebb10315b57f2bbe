"""Sensitivity by integration (issue #18 item 5): Pd against in-channel SNR and the gap to the ideal
energy detector (THEORY §1.2), and the false alerts per hour on noise only.

Usage:  python bench/sensitivity.py [--quick] [--json]

* ``pd``: a persistent NFM transmitter (band-limited-noise voice, ±2.5 kHz, 12.5 kHz channel) in
  white noise, through the engine as it runs by default (CFAR only, no baseline), for 30 s; Pd =
  the share of seeds whose channel alerted within 30 s (any alert elsewhere is a false alert).
  Two receivers: ``clean`` (AWGN only) and ``impaired``, the simulated RTL-SDR of SCENES §3.6 with
  the defaults of ``detector.sim`` (gain 40 dB: thermal noise −46.6 dBFS at 250 kS/s, i.e. about
  0.4 LSB rms before 8-bit quantization; 0.3 dB / 2° IQ imbalance; a 1.5/−1 LSB DC offset; a
  3 ppm LO error). The in-channel SNR is the signal over the *thermal* noise in 12.5 kHz, so the
  ADC's quantization noise is part of the impairment loss. Common random numbers: one noise and
  one NFM waveform per seed, scaled for every SNR.
* ``snr_at_pd90_db``: the SNR where Pd crosses 0.9 (linear interpolation of the curve).
* ``ideal``: the gap of the alert (``snr_at_pd90_db``) to the ideal ED (THEORY §1.2 items 1, 2, 6:
  B = 12.5 kHz, N = 0.95·T·B looks, the Gaussian-signal model of NFM) at the same false alerts per
  hour: one decision per T on each 12.5 kHz channel of the band, the stage's 0.2 per hour; for T =
  24 s (the two 12 s windows behind an alert within 30 s) and T = 30 s (all the time allowed).
* ``window``: per integration scale T, Pd of the scale's first window alone (before the 2-of-2
  rule) against the ideal ED at the window's per-position Pfa. Optimistic for the detector: it
  catches the signal at any of the ~K positions that overlap it, the ideal tests one.
* ``fa``: noise only, (a) IQ through the impaired receiver for some minutes (the Welch frames'
  correlation of adjacent bins is what the channel sums' looks assume), (b) PSD frames drawn from
  Gamma(L) for many hours (the thresholds' arithmetic); alerts per hour, and per scale the windows'
  hits against the count the thresholds were set for.

Run from the repository root: ``.venv/bin/python bench/sensitivity.py --quick``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
import scipy.stats  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detector.core.types import IQBlock, Spectrum  # noqa: E402
import detector.detection._integration as integration_module  # noqa: E402
from detector.detection._integration import CROSSINGS, IntegrationConfig, integration_pfa  # noqa: E402
from detector.detection.engine import DetectionEngine, EngineConfig  # noqa: E402
from detector.sim import awgn, nfm, rtl_noise_dbfs, rtl_receiver  # noqa: E402

FS = 250e3
CENTER = 446.0e6
F_TX = 37.5e3  # offset of the transmitter from the tuned center (Hz)
PPM = 3.0
B_HZ = 12.5e3
T_MAX = 30.0
BLOCK = 1 << 16
ETA = 0.95  # independent looks per second and Hz (Hann, 50 % overlap: THEORY §1.1)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ideal_snr_min_db(t_s: float, pfa: float, pd: float = 0.9, b_hz: float = B_HZ) -> float:
    """SNR_min of the ideal energy detector for a Gaussian-like signal (THEORY §1.2 items 1, 2)."""
    n = ETA * t_s * b_hz
    eta = scipy.stats.gamma.isf(pfa, n)

    def f(g_db):
        return scipy.stats.gamma.sf(eta / (1.0 + 10 ** (g_db / 10)), n) - pd
    return float(scipy.optimize.brentq(f, -40.0, 30.0))


def snr_at(pd_curve: list[tuple[float, float]], target: float = 0.9) -> float | None:
    """The lowest SNR from which Pd stays ≥ target, interpolated linearly; None if never (the
    sweep's lowest SNR when Pd ≥ target there already: a bound, the curve goes no lower)."""
    pts = sorted(pd_curve)
    for i in range(len(pts) - 1, -1, -1):
        if pts[i][1] < target:
            if i == len(pts) - 1:
                return None
            (s0, p0), (s1, p1) = pts[i], pts[i + 1]
            return round(s0 + (target - p0) / (p1 - p0) * (s1 - s0), 2)
    return round(pts[0][0], 2) if pts else None


def engine() -> DetectionEngine:
    return DetectionEngine(EngineConfig(integration=IntegrationConfig()))


#: (scale s, window end s, centers Hz of what it found) of every window tested since the last clear
WINDOWS: list[tuple[float, float, list[float]]] = []
_detect = integration_module.detect_integrated


def _recording_detect(freqs, window, **kw):
    found = _detect(freqs, window, **kw)
    WINDOWS.append((window.scale_s, window.t_end_s, [e.center_hz for e in found]))
    return found


integration_module.detect_integrated = _recording_detect  # the bench watches every window's test


def run_tx(noise: np.ndarray, sig: np.ndarray, snr_db: float | None, impaired: bool) -> dict:
    """One 30 s run; the alert time of the transmitter's channel, false alerts, the first window's hits."""
    eng = engine()
    WINDOWS.clear()
    a = 0.0 if snr_db is None else 10 ** (snr_db / 20)
    f_obs = CENTER + F_TX - PPM * 1e-6 * CENTER
    t_alert = None
    false = set()
    for i in range(0, noise.size, BLOCK):
        x = noise[i:i + BLOCK] + np.complex64(a) * sig[i:i + BLOCK] if a else noise[i:i + BLOCK]
        if impaired:
            x = rtl_receiver(x)
        for e in eng.process_block(IQBlock(x, CENTER, FS, offset_s=i / FS, retuned=i == 0)):
            if getattr(e, "alert", False):
                if a and abs(e.center_hz - f_obs) <= 6.25e3 + 2e3:
                    t_alert = (i + x.size) / FS if t_alert is None else t_alert
                else:
                    false.add(e.track_id)
    first = {}
    cfg = eng.config.integration
    assert cfg is not None
    for s in cfg.scales_s:
        mine = [w for w in WINDOWS if w[0] == s]
        first[s] = bool(mine) and any(abs(c - f_obs) <= 6.25e3 for c in mine[0][2])
    return {"t_alert": t_alert, "false": len(false), "first": first}


def pd_sweep(snrs: list[float], seeds: int, impaired: bool) -> dict:
    n = int(T_MAX * FS)
    noise_dbfs = rtl_noise_dbfs(FS)
    sig_dbfs = noise_dbfs + 10 * math.log10(B_HZ / FS)  # 0 dB in-channel SNR
    per_snr = {s: [] for s in snrs}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        noise = awgn(n, noise_dbfs, rng)
        sig = nfm(n, FS, F_TX - PPM * 1e-6 * CENTER, sig_dbfs, rng)
        for s in snrs:
            per_snr[s].append(run_tx(noise, sig, s, impaired))
        log(f"  {'impaired' if impaired else 'clean'} seed {seed + 1}/{seeds}")
    out = {"snr_db": snrs, "pd": [], "median_tta_s": [], "false_alerts": 0, "window_pd": {}}
    for s in snrs:
        runs = per_snr[s]
        ok = [r["t_alert"] for r in runs if r["t_alert"] is not None]
        out["pd"].append(round(len(ok) / len(runs), 3))
        out["median_tta_s"].append(round(float(np.median(ok)), 2) if ok else None)
        out["false_alerts"] += sum(r["false"] for r in runs)
        for sc in runs[0]["first"]:
            out["window_pd"].setdefault(sc, []).append(round(sum(r["first"][sc] for r in runs) / len(runs), 3))
    out["snr_at_pd90_db"] = snr_at(list(zip(snrs, out["pd"])))
    return out


def pfa_of_scale(scale_s: float, m: int, k: int) -> float:
    cfg = IntegrationConfig()
    assert cfg is not None
    return integration_pfa(cfg.fa_per_hour, window_s=scale_s, n_positions=m, k_bins=k,
                           n_tests=len(cfg.scales_s) * len(cfg.widths_hz), persist=cfg.persist)


def fa_iq(minutes: float) -> dict:
    """Noise only through the impaired receiver: alerts and per-scale window hits."""
    eng = engine()
    rng = np.random.default_rng(7)
    noise_dbfs = rtl_noise_dbfs(FS)
    n = int(minutes * 60 * FS)
    alerts = set()
    for i in range(0, n, BLOCK):
        x = rtl_receiver(awgn(min(BLOCK, n - i), noise_dbfs, rng))
        for e in eng.process_block(IQBlock(x, CENTER, FS, offset_s=i / FS, retuned=i == 0)):
            if getattr(e, "alert", False):
                alerts.add(e.track_id)
    return {"hours": round(minutes / 60, 3), "alerts": len(alerts), "hits": _hits_vs_nominal(eng, minutes / 60)}


def _hits_vs_nominal(eng: DetectionEngine, hours: float) -> dict:
    cfg = eng.config.integration
    assert cfg is not None and eng._stream is not None or True  # noqa: SLF001
    last = eng.last_spectrum
    assert last is not None
    bin_hz = float(last.freqs_hz[1] - last.freqs_hz[0])
    m = last.freqs_hz.size
    k = max(1, int(round(cfg.widths_hz[0] / bin_hz)))
    n_pos = int(m * (1 - 2 * eng.config.detection.edge_crop)) - k - int(2 * eng.config.detection.dc_half_width_hz / bin_hz) - k
    out = {}
    for s in cfg.scales_s:
        p = pfa_of_scale(s, n_pos, k)
        nominal = p * n_pos * min(1.0, CROSSINGS / math.sqrt(k)) * hours * 3600 / s
        out[str(s)] = {"found": eng.integration.found.get(s, 0) if eng.integration else 0, "nominal_at_most": round(nominal, 1)}
    return out


def fa_psd(hours: float, frame_s: float = 0.5) -> dict:
    """Noise-only PSD frames (Gamma(L)/L per bin, independent bins) for many hours."""
    m, bin_hz = 256, 1000.0
    looks = 1000.0 * frame_s
    freqs = CENTER + (np.arange(m) - m // 2) * bin_hz
    eng = DetectionEngine(EngineConfig(frequency_error=None, jam_after_s=None, integration=IntegrationConfig()))
    rng = np.random.default_rng(11)
    alerts = set()
    for i in range(int(hours * 3600 / frame_s)):
        p = rng.gamma(looks, 1.0 / looks, size=m) * 1e-5
        spec = Spectrum(freqs_hz=freqs, power=(10 * np.log10(p)).astype(np.float32), rbw_hz=bin_hz, unit="dBFS",
                        offset_s=i * frame_s, duration_s=frame_s, n_looks=looks, center_hz=CENTER)
        for e in eng.process_spectrum(spec):
            if getattr(e, "alert", False):
                alerts.add(e.track_id)
    return {"hours": hours, "alerts": len(alerts), "alerts_per_hour": round(len(alerts) / hours, 3),
            "hits": _hits_vs_nominal(eng, hours)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and SNRs, shorter noise runs (a few minutes)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on one line")
    args = ap.parse_args()
    q = args.quick
    t0 = time.perf_counter()
    seeds = 5 if q else 20
    snrs = [float(s) for s in (range(-21, -9) if q else range(-21, -7))]
    out: dict = {"fs_hz": FS, "b_hz": B_HZ, "t_max_s": T_MAX, "seeds": seeds}
    cfg = IntegrationConfig()
    assert cfg is not None
    for name, imp in (("impaired", True), ("clean", False)):
        log(f"Pd against SNR, {name} receiver …")
        out[name] = pd_sweep(snrs, seeds, imp)
        log(f"  Pd {out[name]['pd']}; SNR(Pd 0.9) {out[name]['snr_at_pd90_db']} dB")
    # the ideal ED for each scale's window, at its per-window Pfa (the engine's grid at FS)
    bin_hz = FS / 256
    k = int(round(B_HZ / bin_hz))
    n_pos = int(256 * 0.96) - 2 * k - 4
    ideal = {}
    for s in cfg.scales_s:
        pfa = pfa_of_scale(s, n_pos, k)
        e = {"pfa_window": float(f"{pfa:.3g}"), "ideal_snr_min_db": round(ideal_snr_min_db(s, pfa), 2)}
        for name in ("impaired", "clean"):
            curve = list(zip(snrs, out[name]["window_pd"][s]))
            at = snr_at(curve)
            e[f"{name}_snr_at_pd90_db"] = at
            e[f"{name}_gap_db"] = None if at is None else round(at - e["ideal_snr_min_db"], 2)
        ideal[str(s)] = e
    out["window"] = ideal
    out["ideal_1s_pfa_1.7e-6_db"] = round(ideal_snr_min_db(1.0, 1.7e-6), 2)  # THEORY's table: −12.5 dB
    # the alert against the ideal ED at the same false alerts per hour (THEORY §1.2 item 8): one
    # decision per T over the band's 12.5 kHz channels, the stage's whole budget; T = 24 s (the two
    # 12 s windows behind a 2-of-2 alert within 30 s) and T = 30 s (all the time allowed)
    n_ch = (FS * (1 - 2 * EngineConfig().detection.edge_crop) - 2 * EngineConfig().detection.dc_half_width_hz) / B_HZ
    out["ideal"] = {}
    for t_s in (24.0, 30.0):
        pfa = cfg.fa_per_hour / (n_ch * 3600.0 / t_s)
        e = {"pfa": float(f"{pfa:.3g}"), "channels": round(n_ch, 1), "snr_min_db": round(ideal_snr_min_db(t_s, pfa), 2)}
        for name in ("impaired", "clean"):
            at = out[name]["snr_at_pd90_db"]
            e[f"{name}_gap_db"] = None if at is None else round(at - e["snr_min_db"], 2)
        out["ideal"][str(t_s)] = e
    log("false alerts on noise only …")
    out["fa_iq"] = fa_iq(5.0 if q else 30.0)
    out["fa_psd"] = fa_psd(5.0 if q else 50.0)
    log(f"  IQ {out['fa_iq']['alerts']} alerts in {out['fa_iq']['hours']} h; PSD {out['fa_psd']['alerts']} in {out['fa_psd']['hours']} h")
    out["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        for key, v in out.items():
            print(f"{key:26} {v}")


if __name__ == "__main__":
    main()
