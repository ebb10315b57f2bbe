"""``examwatch plan check`` (issue #19): the catch-rate table, its JSON, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from detector.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "detector", *args], capture_output=True, text=True, timeout=120)


def test_a_one_band_plan_stares_and_catches_every_burst_longer_than_the_on_time(tmp_path):
    p = tmp_path / "pmr.toml"
    p.write_text('[[band]]\nname = "PMR446"\nstart_hz = "446.0M"\nstop_hz = "446.2M"\npriority = 5\n'
                 'reason = "licence-free hand-helds"\n')
    r = runner.invoke(app, ["plan", "check", str(p), "--burst-s", "0.5", "--period-s", "60", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"plan", "receivers", "burst_s", "period_s", "session_s", "min_on_s", "retune_s", "settle_s", "bands",
            "assignment", "warnings", "weighted_catch"} <= set(out)
    (band,) = out["bands"]
    assert {"name", "priority", "hops", "receivers", "dwell_s", "revisit_s", "revisit_achieved_s", "stare", "p_burst",
            "p_session", "time_to_detect_s", "reason"} <= set(band)
    assert band["stare"] and band["p_burst"] == 1.0 and band["p_session"] == 1.0 and band["reason"] == "licence-free hand-helds"
    assert out["warnings"] == [] and out["min_on_s"] == 0.03


def test_the_default_plan_with_four_receivers_and_its_table():
    r = runner.invoke(app, ["plan", "check", "--receivers", "4", "--json"])
    out = json.loads(r.stdout)
    assert out["plan"] == "default-exam" and out["receivers"] == 4 and len(out["assignment"]) == 4
    pmr = next(b for b in out["bands"] if b["name"] == "PMR446")
    assert pmr["stare"] and pmr["p_burst"] == 1.0
    t = runner.invoke(app, ["plan", "check", "default"], env=WIDE)
    assert t.exit_code == 0 and "P(one burst)" in t.stdout and "VHF-220" in t.stdout
    assert "revisited every" in t.stderr  # one receiver cannot revisit 30 MHz–1 GHz in time


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, needle in ((["--burst-s", "0"], "--burst-s must be a positive number"),
                         (["--receivers", "0"], "--receivers must be 1–64"),
                         (["--rate", "10M"], "outside the RTL-SDR range")):
        r = run("plan", "check", *args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run("plan", "check", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "watch plan not found" in r.stderr


def test_help():
    r = runner.invoke(app, ["plan", "check", "--help"], env=WIDE)
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    for opt in ("--receivers", "--burst-s", "--period-s", "--session-s", "--json"):
        assert opt in text
    assert "seen long enough to detect" in text
