"""The hunt page's logic (dashboards/static/hunt.js) run headless under Node: its pure functions against
analytic values, and a simulated walk-in from 100 m (tests/dashboards/hunt_walk.js) that follows the
page's advice."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HUNT_JS = REPO / "dashboards" / "static" / "hunt.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not on PATH: the hunt page's logic runs under it")

#: the README's figure (section "The last 100 m"): runs and first seed of the walk-in
WALK_RUNS, WALK_SEED = 200, 1


def js(expr: str):
    """The JSON value of ``expr``, with ``H`` the page's exported logic."""
    code = f"const H = require({json.dumps(str(HUNT_JS))}); console.log(JSON.stringify({expr}));"
    r = subprocess.run([NODE, "-e", code], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_distance_and_bearing_are_great_circle():
    got = js("[H.distanceM(0, 0, 0, 1), H.bearingDeg(0, 0, 0, 1), H.bearingDeg(0, 0, 1, 0), H.bearingDeg(0, 0, -1, 0),"
             " H.distanceM(50, 10, 50.0009, 10), H.bearingDeg(50, 10, 49.999, 9.999),"
             " H.distanceM(39.9042, 116.4074, 31.2304, 121.4737), H.bearingDeg(39.9042, 116.4074, 31.2304, 121.4737)]")
    assert got[0] == pytest.approx(math.pi / 180 * 6371008.8, rel=1e-9)  # one degree of the equator
    assert got[1] == pytest.approx(90) and got[2] == pytest.approx(0) and got[3] == pytest.approx(180)
    assert got[4] == pytest.approx(100.07, abs=0.05)
    assert 180 < got[5] < 270  # south-west
    # Beijing → Shanghai: 1067 km on the sphere, initial bearing 153.6° (spherical formulae)
    p1, l1, p2, l2 = map(math.radians, (39.9042, 116.4074, 31.2304, 121.4737))
    hav = 2 * 6371008.8 * math.asin(math.sqrt(math.sin((p2 - p1) / 2) ** 2
                                              + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2))
    brg = math.degrees(math.atan2(math.sin(l2 - l1) * math.cos(p2),
                                  math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(l2 - l1))) % 360
    assert got[6] == pytest.approx(hav, rel=1e-9) and got[6] == pytest.approx(1.067e6, rel=2e-3)
    assert got[7] == pytest.approx(brg, abs=1e-6)


def test_pitch_rises_an_octave_per_10_db_within_its_range():
    got = js("[H.pitchHz(-100, -100), H.pitchHz(-90, -100), H.pitchHz(-70, -100), H.pitchHz(-120, -100),"
             " H.pitchHz(0, -100), H.pitchHz(null, -100)]")
    assert got == [220, 440, 1760, 220, 3520, 220]


def test_peak_hold_and_gradient():
    got = js("[[-50, -40, null, -45].reduce((s, v, i) => H.peakHold(s, v, i), null),"
             " H.gradient([-60, -60, -60, -55, -55, -55]), H.gradient([-50, -50, -50, -53, -53, -53]),"
             " H.gradient([-50, -51, -50, -50, -51, -50]), H.gradient([-50, -50])]")
    assert got[0] == {"peak": -40, "at": 1}
    assert got[1] == {"trend": "rising", "delta_db": 5}
    assert got[2] == {"trend": "falling", "delta_db": -3}
    assert got[3]["trend"] == "steady" and got[4]["trend"] == "unknown"


def test_a_sweep_points_to_its_strongest_heading():
    got = js("[H.sweepBest(Array.from({length: 24}, (_, i) => ({heading_deg: i * 15,"
             " level_db: -60 + 20 * Math.pow((1 + Math.cos((i * 15 - 120) * Math.PI / 180)) / 2, 4)}))),"
             " H.sweepBest([0, 30, 60, 90, 120, 150].map(h => ({heading_deg: h, level_db: -50})))]")
    assert got[0]["heading_deg"] == 120 and got[0]["spread_db"] > 10
    assert got[1] is None  # a half turn is not a sweep


def test_advice_sweep_then_walk_then_sweep_when_falling():
    got = js("(() => { let s = H.sweepDone({}, Array.from({length: 24}, (_, i) => ({heading_deg: i * 15,"
             " level_db: -60 + 20 * Math.pow((1 + Math.cos((i * 15 - 60) * Math.PI / 180)) / 2, 4)}))).state; const out = [s.heading_deg];"
             " for (const v of [-50, -50, -50, -50, -50, -50, -54, -54]) { const r = H.huntStep(s, {level_db: v, moved_m: 1});"
             " s = r.state; out.push(r.advice); } return out; })()")
    assert got[0] == 60
    # one reading 4 dB lower is 1.3 dB on the mean of three: walk on; a second makes it 2.7 dB: sweep
    assert got[1:] == ["walk"] * 7 + ["sweep"]


def test_walk_in_from_100_m_ends_within_10_m_in_80_percent_of_seeded_runs():
    r = subprocess.run([NODE, str(REPO / "tests" / "dashboards" / "hunt_walk.js"), str(WALK_RUNS), str(WALK_SEED)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["runs"] == WALK_RUNS >= 100
    assert out["success"] >= 0.80, out
    # the page's advice is what brings the walker in: walking a random way after each sweep does not
    assert out["control_success"] < 0.10, out
    assert out["median_steps"] < 250, out
