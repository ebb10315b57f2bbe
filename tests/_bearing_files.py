"""Bearing files as direction finders write them, for tests: KrakenSDR DoA lines (the f-string of
krakensdr_doa's ``SignalProcessor.run``, Kraken App format) and plain CSV."""

from __future__ import annotations

import numpy as np

from detector.localization import LocalFrame

ORIGIN = LocalFrame(50.0, 10.0)  # SCENES.md §3.1
TARGET = np.array([8.0, -6.0])
T0_MS = 1_717_660_800_000


def loop_bearings(step_m=16.0, sigma_deg=5.0, heading_err_deg=0.0, seed=0, target=TARGET):
    """Places every ``step_m`` on the inner loop, the vehicle's heading (direction of travel), and
    bearings relative to it with ``sigma_deg`` DoA noise and a heading error of ``heading_err_deg``
    (1σ, independent per bearing). Returns (x, y, heading_deg, rel_bearing_deg)."""
    wp = np.array([(-120, -90), (120, -90), (120, 90), (-120, 90), (-120, -90)], float)
    pts, hdg = [], []
    for a, b in zip(wp[:-1], wp[1:]):
        k = int(round(np.linalg.norm(b - a) / step_m))
        pts.append(a + (b - a) * (np.arange(k) / k)[:, None])
        hdg.append(np.full(k, np.degrees(np.arctan2(b[0] - a[0], b[1] - a[1])) % 360.0))
    p = np.concatenate(pts)
    heading = np.concatenate(hdg)
    rng = np.random.default_rng(seed)
    true = np.degrees(np.arctan2(target[0] - p[:, 0], target[1] - p[:, 1]))
    rel = true - heading + sigma_deg * rng.standard_normal(len(p)) + heading_err_deg * rng.standard_normal(len(p))
    return p[:, 0], p[:, 1], heading, rel % 360.0


def kraken_line(t_ms, bearing, conf, power, freq, lat, lon, heading, n_spec=8):
    """One line as krakensdr_doa writes it (``theta_0`` = 360 − bearing)."""
    theta_0 = 360 - bearing
    sub = f"{t_ms}, {360 - theta_0}, {conf}, {power}, "
    sub += f"{freq}, UCA, 100, NOCALL, "
    sub += f"{lat}, {lon}, {heading}, {heading}, "
    sub += "GPS, R, R, R, R"
    for v in np.linspace(0, 30, n_spec):
        sub += ", " + "{:.2f}".format(v)
    return sub + " \n"


def write_kraken(path, x, y, heading, rel, conf=12.0, freq=446_006_250, extra=""):
    lat, lon = ORIGIN.to_geodetic(np.asarray(x, float), np.asarray(y, float))
    with open(path, "w") as fh:
        for i, (a, b, h, r) in enumerate(zip(lat, lon, heading, rel)):
            fh.write(kraken_line(T0_MS + 1000 * i, float(r), conf, -60.5, freq, float(a), float(b), float(h)))
        fh.write(extra)
    return path
