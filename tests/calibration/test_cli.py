"""``examwatch calibrate ppm|iq|power``: JSON contracts, recordings without a serial, profiles, errors.

In-process tests use typer's CliRunner after importing :mod:`detector.cli.calibrate` (which
registers the sub-app). The subprocess tests (``python -m detector calibrate ...``: one JSON line
on stdout, exit 2 with one line on stderr) run once ``detector/cli/__init__.py`` imports it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import calibration as cal
import detector.cli.calibrate  # noqa: F401  (registers "calibrate" on the app)
from calibration.profiles import load_profile
from detector.cli import app
from detector.core.errors import InputError
from detector.sim._synth import cu8_bytes
from detector.sim.sdr import SimSDR
from tests.calibration import calibration_scene, far_emitter

REPO = Path(__file__).resolve().parents[2]
REGISTERED = "calibrate" in (REPO / "detector" / "cli" / "__init__.py").read_text()
runner = CliRunner()

PPM_KEYS = {"ppm", "uncertainty_ppm", "reference_hz", "measured_hz"}
IQ_KEYS = {"dc_offset", "gain_imbalance_db", "phase_imbalance_deg", "image_rejection_before_db",
           "image_rejection_after_db"}

SCENE_TOML = """
name = "cal-test"
seed = 5
[timeline]
survey = [0.0, 700.0]
exam = [[0.0, 30.0]]
[receiver]
center_hz = "446.0M"
sample_rate_hz = "1.024M"
gain_db = 20.0
ppm = -37.0
iq_gain_db = 0.8
iq_phase_deg = 4.0
drop_probability = 0.0
[propagation]
shadow_sigma_db = 0.0
fast_fading = "none"
[route]
antenna_ripple_db = 0.0
[[emitters]]
id = "CW"
f_c_hz = "446.1M"
modulation = "cw"
bandwidth_hz = 100
eirp_dbm = 70.0
position = [20000.0, 0.0]
height_m = 100.0
path_loss_exponent = 2.5
schedule = [[0.0, 100000.0]]
"""


@pytest.fixture(scope="module")
def scene_spec(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("scene") / "cal.toml"
    p.write_text(SCENE_TOML)
    return f"sim:{p}"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """1 s of a −37 ppm dongle with a 446.1 MHz carrier, as an rtl_433-style cu8 file (no serial)."""
    sc = calibration_scene([far_emitter("CW", 446.1e6, "cw", 70.0, bandwidth_hz=100.0)], ppm=-37.0,
                           iq_gain_db=0.8, iq_phase_deg=4.0)
    b = SimSDR(sc, window="all").read(1_024_000)
    p = tmp_path_factory.mktemp("rec") / "cal_446M_1024k.cu8"
    cu8_bytes(b.samples).tofile(p)
    return p


def invoke(*args):
    return runner.invoke(app, ["calibrate", *args])


def ok_json(*args):
    r = invoke(*args, "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


class TestPpm:
    def test_recording_without_serial(self, recording):
        out = ok_json("ppm", str(recording), "--reference-hz", "446.1M", "--clock", "lo")
        assert PPM_KEYS <= set(out)
        print(f"calibrate ppm on a cu8 recording: {out['ppm']:+.4f} ± {out['uncertainty_ppm']:.1e} ppm")
        assert out["ppm"] == pytest.approx(-37.0, abs=0.5)
        assert out["reference_hz"] == 446.1e6
        assert out["measured_hz"] == pytest.approx(446.1e6 + 37e-6 * 446e6, abs=25)
        assert out["freq_correction"] == -37 and out["serial"] is None and out["profile"] is None

    def test_sim_source_with_drift_windows_and_profile(self, scene_spec, tmp_path):
        prof = tmp_path / "dongle.json"
        out = ok_json("ppm", scene_spec, "--reference-hz", "446.1M", "--duration", "1", "--window-s", "0.25",
                      "--serial", "00000042", "--profile-out", str(prof))
        assert out["clock"] == "lo"  # auto for sim:
        assert out["ppm"] == pytest.approx(-37.0, abs=0.5)
        assert out["drift"]["n_windows"] == 4 and len(out["windows"]) == 4
        p = load_profile(prof, serial="00000042")
        assert p.ppm.ppm == pytest.approx(out["ppm"]) and p.ppm.method == "carrier" and p.ppm.date_utc.endswith("Z")

    def test_human_output(self, recording):
        r = invoke("ppm", str(recording), "--reference-hz", "446.1M", "--clock", "lo")
        assert r.exit_code == 0 and "freq_correction -37" in r.stdout

    def test_no_reference_signal(self, recording):
        r = invoke("ppm", str(recording), "--reference-hz", "445.8M", "--json")
        assert isinstance(r.exception, cal.CalibrationError) and r.stdout == ""
        assert "no reference signal" in str(r.exception)

    def test_fm_pilot_on_the_simulator_is_refused_with_a_hint(self, scene_spec):
        r = invoke("ppm", scene_spec, "--reference-hz", "446.1M", "--method", "fm", "--duration", "0.6")
        assert isinstance(r.exception, InputError) and "fm-carrier" in str(r.exception)

    def test_profile_needs_a_serial(self, recording, tmp_path):
        r = invoke("ppm", str(recording), "--reference-hz", "446.1M", "--profile-out", str(tmp_path / "p.json"))
        assert isinstance(r.exception, InputError) and "--serial" in str(r.exception)

    def test_raster_needs_a_step(self, recording):
        r = invoke("ppm", str(recording), "--reference-hz", "446.1M", "--method", "raster")
        assert isinstance(r.exception, InputError) and "--raster-step" in str(r.exception)


class TestIq:
    def test_recording_json(self, recording):
        out = ok_json("iq", str(recording))
        assert IQ_KEYS <= set(out) and set(out["dc_offset"]) == {"i", "q"}
        print(f"calibrate iq: {out['gain_imbalance_db']:.3f} dB / {out['phase_imbalance_deg']:.3f}°, "
              f"image rejection {out['image_rejection_before_db']:.1f} → {out['image_rejection_after_db']:.1f} dB")
        assert out["dc_offset"]["i"] == pytest.approx(1.5 / 127.5, abs=0.002)
        assert out["gain_imbalance_db"] == pytest.approx(0.8, abs=0.05)
        assert out["phase_imbalance_deg"] == pytest.approx(4.0, abs=0.2)
        assert out["image_rejection_before_db"] == pytest.approx(24.8, abs=1.0)
        assert out["image_rejection_after_db"] >= 45.0

    def test_real_recording(self, real_dir, manifest):
        entry = next(e for e in manifest["iq"] if e["file"].endswith("PT2262-01__gfile002.data"))
        out = ok_json("iq", str(real_dir / entry["file"]), "--format", entry["dtype"],
                      "--rate", str(entry["sample_rate_hz"]), "--center", str(entry["center_hz"]))
        assert out["image_rejection_after_db"] >= out["image_rejection_before_db"] - 0.5

    def test_profile_of_another_dongle_is_not_overwritten(self, recording, tmp_path):
        prof = tmp_path / "p.toml"
        ok_json("iq", str(recording), "--serial", "00000042", "--profile-out", str(prof))
        assert load_profile(prof).iq.gain_imbalance_db == pytest.approx(0.8, abs=0.05)
        r = invoke("iq", str(recording), "--serial", "00000007", "--profile-out", str(prof))
        assert isinstance(r.exception, cal.ProfileMismatchError)
        assert load_profile(prof).serial == "00000042"


class TestPower:
    CSV = ("gen_dbm,freq_hz,gain_db,measured_dbfs,noise_dbfs_per_hz\n"
           "-70,430e6,20,-28.1,-125\n-70,450e6,20,-28.6,-125.2\n-80,430e6,30,-28.3,-115\n-80,450e6,30,-28.9,\n")

    def test_table_to_profile(self, tmp_path):
        csv = tmp_path / "ref.csv"
        csv.write_text(self.CSV)
        prof = tmp_path / "00000042.json"
        out = ok_json("power", str(csv), "--serial", "00000042", "-o", str(prof))
        assert out["n_rows"] == 4 and [g["gain_db"] for g in out["gains"]] == [20.0, 30.0]
        table = load_profile(prof, serial="00000042").power.table
        assert cal.dbfs_to_dbm(-28.1, 430e6, 20.0, table) == pytest.approx(-70.0)
        # ppm and power sections live side by side in one profile
        r = invoke("power", str(csv), "--serial", "00000042", "-o", str(prof))
        assert r.exit_code == 0 and "gain  20.0 dB" in r.stdout

    def test_wrong_columns_and_too_few_points(self, tmp_path):
        bad = tmp_path / "bad.csv"
        bad.write_text("level,freq,gain\n1,2,3\n")
        r = invoke("power", str(bad), "--serial", "1")
        assert isinstance(r.exception, cal.CalibrationError) and "missing column" in str(r.exception)
        few = tmp_path / "few.csv"
        few.write_text("gen_dbm,freq_hz,gain_db,measured_dbfs\n-60,433.92e6,20,-20\n")
        r = invoke("power", str(few), "--serial", "1")
        assert isinstance(r.exception, cal.CalibrationError) and "too few points" in str(r.exception)
        r = invoke("power", str(tmp_path / "none.csv"), "--serial", "1")
        assert isinstance(r.exception, InputError) and "no such file" in str(r.exception)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "detector", "calibrate", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


@pytest.mark.skipif(not REGISTERED, reason="detector/cli/__init__.py does not import detector.cli.calibrate yet")
class TestSubprocess:
    def test_ppm_json_is_one_line(self, recording):
        r = run_cli("ppm", str(recording), "--reference-hz", "446.1M", "--clock", "lo", "--json")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.strip().splitlines()
        assert len(lines) == 1 and PPM_KEYS <= set(json.loads(lines[0]))

    def test_iq_json(self, recording):
        r = run_cli("iq", str(recording), "--json")
        assert r.returncode == 0, r.stderr
        assert IQ_KEYS <= set(json.loads(r.stdout))

    def test_no_reference_exits_2_with_one_line(self, recording):
        r = run_cli("ppm", str(recording), "--reference-hz", "445.8M", "--json")
        assert r.returncode == 2 and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and "no reference signal" in r.stderr

    def test_wrong_columns_exit_2(self, tmp_path):
        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\n1,2\n")
        r = run_cli("power", str(bad), "--serial", "1")
        assert r.returncode == 2 and "missing column" in r.stderr


def test_samples_helper_reads_whole_recording(recording):
    """The recording fixture holds exactly 1 s (sanity for the figures above)."""
    assert np.fromfile(recording, dtype=np.uint8).size == 2 * 1_024_000


def test_ppm_warns_when_the_reference_is_implausibly_far_and_says_bands_in_mhz(real_dir):
    """PT2262-01 has no steady reference: asked for 433.92 MHz, the search (±200 ppm) finds the
    remote's own carrier 83.5 kHz away (+192 ppm), and a warning says so; a reference outside the
    band is one line in MHz."""
    f = str(real_dir / "iq" / "PT2262-01__gfile002.data")
    base = ["calibrate", "ppm", f, "-f", "cu8", "-r", "250k", "-c", "433.92M"]
    r = runner.invoke(app, [*base, "-F", "433.92M"])
    assert r.exit_code == 0, r.output
    err = " ".join(r.stderr.split())
    assert "warning: +192.5 ppm is more than an RTL-SDR's crystal is usually off" in err
    r = subprocess.run([sys.executable, "-m", "detector", *base, "-F", "900M"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "the reference 900.000000 MHz (±180.0 kHz) is outside the captured band 433.795000–434.045000 MHz" in r.stderr
