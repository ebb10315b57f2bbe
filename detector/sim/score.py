"""Scoring alerts against the ground truth (``SCENES.md`` §3.8).

Matching. An alerting track matches emitter e when |f̂ − f_obs,e| ≤ max(occ_bw_e/2 + 2 kHz,
1.5 ppm·f) and its alert time lies within [t_on, t_off + 5 s] of one of e's on-air intervals.
The alert time is the ``last_seen_s`` of the track's first event with ``"alert": true`` (when the
decision was made); f̂ is that track's ``center_hz`` in its last alerting event. Alerts matched to
``anomalous_benign`` emitters are nuisance alerts; alerts matched to nothing, or to background or
licensed emitters, are false alarms.

Metrics: ``pd`` (targets with ≥ 1 matched alert ÷ targets on the air), ``false_alarms_per_hour``
(false alarms ÷ monitored hours: the exam sessions inside the truth's window), ``nuisance_alerts``,
``tta_median_s``/``tta_p90_s`` (first matched alert − the target's first on-air time),
``freq_error_median_hz`` (|f̂ − f_c,true|) and ``freq_error_obs_median_hz`` (|f̂ − f_obs|),
``classification_accuracy`` over matched alerts, ``location_error_m`` (median 2-D distance of the
last location estimate of matched target alerts whose status is ``located``, null when none was),
``targets_not_located`` (matched target alerts whose last location is not ``located``: the rough
fallback position they carry is not scored).
"""

from __future__ import annotations

import math

import numpy as np

from detector.sim.world import llh_to_enu

__all__ = ["score_alerts", "first_alerts"]


def first_alerts(events: list[dict]) -> dict[str, dict]:
    """Per alerting track: the first alerting event (time of decision) and the last one (final state)."""
    out: dict[str, dict] = {}
    for ev in events:
        if not ev.get("alert") or ev.get("event") in ("missing", "jamming", "overload", "declared_jammer"):
            continue
        tid = ev["track_id"]
        if tid not in out:
            out[tid] = {"first": ev, "last": ev}
        else:
            out[tid]["last"] = ev
    return out


def _matches(em: dict, f_hat: float, t_alert: float) -> bool:
    f_obs = em["f_obs_hz"]
    tol = max(em["occ_bw_hz"] / 2 + 2e3, 1.5e-6 * em["f_c_hz"])
    if min(abs(f_hat - f) for f in (f_obs if isinstance(f_obs, list) else [f_obs])) > tol:
        return False
    return any(a <= t_alert <= b + 5.0 for a, b in em["schedule"])


def score_alerts(events: list[dict], truth: dict) -> dict:
    """Score track events (``replay --jsonl``) against a truth dict; returns the metrics dict."""
    w0, w1 = truth.get("window", [0.0, math.inf])
    sessions = [(max(a, w0), min(b, w1)) for a, b in truth["timeline"]["exam"] if min(b, w1) > max(a, w0)]
    hours = sum(b - a for a, b in sessions) / 3600.0
    emitters = truth["emitters"]
    targets = [e for e in emitters if e["class"] == "target" and any(a < w1 and b > w0 for a, b in e["schedule"])]
    alerts = first_alerts(events)
    lat0, lon0 = truth["origin"]["lat"], truth["origin"]["lon"]
    matched_target: dict[str, list] = {e["id"]: [] for e in targets}
    nuisance = false_alarms = 0
    freq_err, freq_err_obs, class_ok, class_n, loc_err = [], [], 0, 0, []
    not_located = 0
    alert_rows = []
    for pair in alerts.values():
        first, last = pair["first"], pair["last"]
        t_alert = float(first["last_seen_s"])
        f_hat = float(last["center_hz"])
        hit = next((e for e in emitters if _matches(e, float(first["center_hz"]), t_alert) or _matches(e, f_hat, t_alert)), None)
        kind = "false_alarm" if hit is None or hit["class"] in ("background", "licensed_intermittent") else \
            "nuisance" if hit["class"] == "anomalous_benign" else "target"
        alert_rows.append({**last, "match": None if hit is None else hit["id"], "match_kind": kind, "alert_time_s": t_alert})
        if kind == "false_alarm":
            false_alarms += 1
            continue
        if kind == "nuisance":
            nuisance += 1
            continue
        matched_target[hit["id"]].append(t_alert)
        freq_err.append(abs(f_hat - hit["f_c_hz"]))
        freq_err_obs.append(min(abs(f_hat - f) for f in hit["f_obs_hz"]))
        class_n += 1
        class_ok += last.get("classification") == hit["expected_class"]
        loc = next((ev.get("location") for ev in [last] if ev.get("location")), None)
        if loc and loc.get("status") != "located":
            not_located += 1  # a rough fallback position is not an estimate to score
        elif loc and loc.get("lat") is not None:
            x, y = llh_to_enu(loc["lat"], loc["lon"], lat0, lon0)
            tx, ty = hit["position_enu"]
            loc_err.append(float(np.hypot(x - tx, y - ty)))
    detected = [tid for tid, times in matched_target.items() if times]
    tta = []
    for e in targets:
        times = matched_target[e["id"]]
        if times:
            onset = min(a for a, b in e["schedule"] if b > w0)
            tta.append(min(times) - max(onset, w0))

    def med(v):
        return None if not v else round(float(np.median(v)), 3)

    return {
        "pd": (len(detected) / len(targets)) if targets else None,
        "false_alarms_per_hour": round(false_alarms / hours, 3) if hours > 0 else None,
        "false_alarms": false_alarms,
        "nuisance_alerts": nuisance,
        "tta_median_s": med(tta),
        "tta_p90_s": None if not tta else round(float(np.percentile(tta, 90)), 3),
        "freq_error_median_hz": med(freq_err),
        "freq_error_obs_median_hz": med(freq_err_obs),
        "classification_accuracy": None if not class_n else round(class_ok / class_n, 3),
        "location_error_m": med(loc_err),
        "targets_not_located": not_located,
        "monitored_hours": round(hours, 4),
        "targets": len(targets),
        "alerts": alert_rows,
    }
