"""``examwatch monitor`` with several receivers (issue #19 item 1): N simulated dongles in one vehicle,
each staring at its own span, one store; errors for impossible set-ups are exit 2 before anything runs."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from detector.alerts import open_store

SCENE = """
name = "two-rx"
seed = 11
[timeline]
survey = [0.0, 5.0]
exam = [[0.0, 8.0]]
[receiver]
center_hz = "446.0M"
sample_rate_hz = "1.024M"
gain_db = 30.0
ppm = 0.0
drop_probability = 0.0
count = 2
[propagation]
shadow_sigma_db = 0.0
fast_fading = "none"
[route]
antenna_ripple_db = 0.0
[[emitters]]
id = "NEAR"
f_c_hz = "446.1M"
modulation = "cw"
bandwidth_hz = 100
eirp_dbm = 20.0
position = [3000.0, 0.0]
height_m = 30.0
path_loss_exponent = 2.5
schedule = [[2.0, 100000.0]]
[[emitters]]
id = "UP"
f_c_hz = "446.9M"
modulation = "cw"
bandwidth_hz = 100
eirp_dbm = 20.0
position = [3000.0, 500.0]
height_m = 30.0
path_loss_exponent = 2.5
schedule = [[2.0, 100000.0]]
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "detector", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


@pytest.fixture(scope="module")
def two_rx(tmp_path_factory):
    d = tmp_path_factory.mktemp("rx")
    (d / "scene.toml").write_text(SCENE)
    # two receivers from the scene's own [receiver] count (sim:SCENE?receivers=2 is the same)
    r = run("monitor", f"sim:{d / 'scene.toml'}", "--site", "two", "--exit-when-done",
            "--port", str(_port()), "--data-dir", str(d / "data"), "--sites-dir", str(d / "sites"), cwd=d)
    return d, r


def test_two_simulated_receivers_find_one_carrier_each(two_rx):
    d, r = two_rx
    assert r.returncode == 0, r.stderr
    assert "receiver rx0: sim:two-rx[exam], bands dwell" in r.stderr
    assert "receiver rx1: sim:two-rx[exam] receiver 1, bands dwell+1" in r.stderr
    assert "monitoring 2 receivers" in r.stderr
    store = open_store(None, data_dir=d / "data")
    try:
        alerts, _ = store.list(site="two")
    finally:
        store.close()
    by_rx = {}
    for a in alerts:
        by_rx.setdefault("rx1" if a.track_id.startswith("T1-") else "rx0", []).append(a.center_hz)
    # rx0 stares at 446.0 MHz ± 410 kHz (ppm 0); rx1 at 446.819 MHz, its crystal 5.5 ppm high
    # (Scene.receiver_variant), so the 446.9 MHz carrier shows 2.46 kHz low
    assert by_rx["rx0"] == [pytest.approx(446.1e6, abs=1e3)]
    assert by_rx["rx1"] == [pytest.approx(446.9e6 - 5.5e-6 * 446.8192e6, abs=1e3)]


@pytest.mark.parametrize("args, needle", [
    (["sim:default?receivers=2", "rtlsdr:0"], "either all simulated"),
    (["sim:default?receivers=40"], "receivers must be 1–16"),
    (["sim:default?receivers=2", "--profile", "p.json"], "--profile is one dongle's"),
])
def test_impossible_receiver_setups_are_exit_2(tmp_path, args, needle):
    r = run("monitor", *args, "--site", "x", "--port", str(_port()), "--data-dir", str(tmp_path / "d"), cwd=tmp_path,
            timeout=120)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert not (tmp_path / "d").exists()  # nothing was created


def test_without_source_or_receiver_tables_is_exit_2(tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "s.toml").write_text('name = "s"\n')
    r = run("monitor", "--site", "s", "--sites-dir", str(tmp_path / "sites"), "--port", str(_port()),
            "--data-dir", str(tmp_path / "d"), cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "give a SOURCE" in r.stderr


def test_sim_receiver_counts_expand_into_receivers(tmp_path):
    from detector.app.receivers import receiver_entries

    entries, warning = receiver_entries(["sim:default?receivers=3"])
    assert [(e.name, e.spec, e.sim_index) for e in entries] == [("rx0", "sim:default", 0), ("rx1", "sim:default", 1),
                                                                ("rx2", "sim:default", 2)]
    p = tmp_path / "s.toml"
    p.write_text(SCENE)
    assert len(receiver_entries([f"sim:{p}"])[0]) == 2  # the scene's count
    assert len(receiver_entries([f"sim:{p}?receivers=1"])[0]) == 1  # the spec wins
