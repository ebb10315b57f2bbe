"""Ground truth of a simulated run (``SCENES.md`` §3.7), written beside any run as JSON.

``scene_truth(sdr)`` gives: seed, version, origin, buildings, receiver (with the ppm at t=0 and
the drift), propagation, timeline, emitters (true ``f_c_hz`` and as-received ``f_obs_hz`` at the
window's start and end, positions ENU and lat/lon, on-air intervals), the vehicle's true and
GPS-reported track at 1 Hz, and the received power of each emitter over time (one value per
generated block while the emitter is on the air). JSON instead of Parquet: one file, no extra
dependency (a simplification of §3.7).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detector.sim.world import enu_to_llh

__all__ = ["scene_truth", "write_truth", "load_truth", "CLASS_OF_MODULATION"]

#: The classification a correct detector should give each modulation.
CLASS_OF_MODULATION = {"nfm": "nfm_voice", "fsk": "fsk_data", "cw": "carrier", "wfm": "wideband", "ofdm": "wideband"}


def _r(x, nd=3):
    return [round(float(v), nd) for v in x]


def scene_truth(sdr) -> dict:
    """Ground truth of a :class:`~detector.sim.sdr.SimSDR` or ``SimPsd`` (after or before its run)."""
    scene = sdr.scene
    lat0, lon0 = scene.site.lat0, scene.site.lon0
    t0, t1 = sdr.t_start, sdr.t_end
    emitters = []
    for e in scene.emitters:
        lat, lon = enu_to_llh(e.position[0], e.position[1], lat0, lon0)
        emitters.append({
            "id": e.id, "class": e.kind, "f_c_hz": e.f_c_hz,
            "f_obs_hz": [round(sdr.observed_hz(e, t0), 1), round(sdr.observed_hz(e, t1), 1)],
            "modulation": e.modulation, "expected_class": CLASS_OF_MODULATION[e.modulation],
            "occ_bw_hz": e.bandwidth_hz, "eirp_dbm": e.eirp_dbm,
            "position_enu": list(e.position), "position_llh": [float(lat), float(lon)], "height_m": e.height_m,
            "velocity_mps": list(e.velocity_mps), "indoor": e.indoor, "whitelisted": e.whitelisted,
            "schedule": [[round(a, 3), round(b, 3)] for a, b in sdr.intervals[e.id]],
        })
    ts = np.arange(np.floor(t0), np.ceil(t1) + 1e-9, 1.0)
    true_xy = sdr.world.vehicle.true_xy(ts)
    rep_xy = sdr.world.vehicle.reported_xy(ts)
    tl = enu_to_llh(true_xy[:, 0], true_xy[:, 1], lat0, lon0)
    rl = enu_to_llh(rep_xy[:, 0], rep_xy[:, 1], lat0, lon0)
    power = getattr(sdr, "truth_power", [])
    rx = scene.receiver
    return {
        "seed": sdr.seed, "version": scene.version, "scene": scene.name, "window": [t0, t1],
        "origin": {"lat": lat0, "lon": lon0},
        "buildings": [[list(p) for p in poly] for poly in scene.site.buildings],
        "receiver": {"kind": "rtl-sdr-sim", "fs": rx.sample_rate_hz, "center_hz": rx.center_hz, "gain_db": rx.gain_db,
                     "nf_db": rx.nf_db, "eps_ppm_t0": rx.ppm, "drift": {"ppm": rx.drift_ppm, "tau_s": rx.drift_tau_s},
                     "iq": {"g_db": rx.iq_gain_db, "phi_deg": rx.iq_phase_deg}, "dc_lsb": list(rx.dc_offset_lsb)},
        "propagation": scene.propagation.model_dump(),
        "timeline": {"survey": list(scene.timeline.survey), "exam": [list(w) for w in scene.timeline.exam]},
        "emitters": emitters,
        "vehicle_track": {"t": _r(ts, 1), "true_enu": [_r(p, 2) for p in true_xy],
                          "true_llh": [[round(float(a), 7), round(float(b), 7)] for a, b in zip(*tl)],
                          "gps_reported_llh": [[round(float(a), 7), round(float(b), 7)] for a, b in zip(*rl)]},
        "rx_power": [{"t": round(t, 3), "emitter_id": eid, "rx_power_dbm": round(p, 2)} for t, eid, p in power],
    }


def write_truth(truth: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(truth, separators=(",", ":")))
    return path


def load_truth(path: str | Path) -> dict:
    from detector.core.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: truth file not found")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or "emitters" not in data or "timeline" not in data:
        raise InputError(f"{p}: not an examwatch ground-truth file (no emitters/timeline)")
    return data
