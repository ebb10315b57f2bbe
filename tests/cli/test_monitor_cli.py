"""``examwatch monitor``: what it refuses before starting (exit 2, one line), and its GPS feed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import numpy as np
import pytest
from detector.app.gps import position_provider
from detector.sources.gps import Fix, GpsTrack
from detector.core.types import IQBlock, Position
from tests._helpers import free_port

class _Result:
    def __init__(self, p):
        self.exit_code, self.output = p.returncode, p.stderr


def monitor(tmp_path, *args):
    """The console script's way (one line and exit 2 on bad input), in a subprocess."""
    p = subprocess.run([sys.executable, "-m", "detector", "monitor", "sim:default", "--site", "S", "--port", str(free_port()),
                        *args], capture_output=True, text=True, timeout=120)
    return _Result(p)


@pytest.mark.parametrize("spec, needle", [
    ("fixed:91,10", "outside -90..90"), ("fixed:50,200", "outside -90..90"), ("fixed:nan,nan", "outside -90..90"),
    ("fixed:50", "fixed:LAT,LON"), ("track.xyz", "unknown GPS spec"),
])
def test_bad_gps_is_refused_before_anything_starts(tmp_path, spec, needle):
    r = monitor(tmp_path, "--gps", spec, "--data-dir", str(tmp_path / "d"))
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert not (tmp_path / "d").exists()  # nothing opened or written


def test_bad_data_dir_and_token_files_are_one_line_errors(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = monitor(tmp_path, "--data-dir", str(afile / "sub"))
    assert r.exit_code == 2 and "--data-dir" in r.output and "Traceback" not in r.output
    d = tmp_path / "d"
    for content, needle in ((b"\xff\xfe\x00bad", "not a text file"), (b"short\n", "at least 8 characters"),
                            (b"two words\n", "at least 8 characters")):
        tok = tmp_path / "tok"
        tok.write_bytes(content)
        r = monitor(tmp_path, "--data-dir", str(d), "--token-file", str(tok))
        assert r.exit_code == 2 and needle in r.output, r.output
    r = monitor(tmp_path, "--data-dir", str(d), "--token-file", "/proc/nonexistent/tok")
    assert r.exit_code == 2 and "--token-file /proc/nonexistent/tok" in r.output


def test_token_file_note_warns_when_others_can_read_it(tmp_path):
    from detector.api.auth import load_or_create_token, token_file_note

    tok, path = load_or_create_token(tmp_path)
    assert len(tok) >= 32 and "(mode 0600)" in token_file_note(path)
    os.chmod(path, 0o644)
    assert load_or_create_token(tmp_path) == (tok, path)
    note = token_file_note(path)
    assert "0644" in note and "chmod 600" in note and "(mode 0600)" not in note


def _block():
    return IQBlock(np.zeros(16, np.complex64), 446e6, 1e6, start=datetime.now(timezone.utc))


def test_a_fixed_position_is_given_to_every_block():
    pos = position_provider(GpsTrack.fixed_position(50.1, 10.2))
    assert [pos(_block()), pos(_block())] == [Position(50.1, 10.2)] * 2


def test_a_gps_log_gives_the_position_at_the_blocks_time():
    t0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
    from datetime import timedelta

    track = GpsTrack(t0.timestamp() + np.arange(3.0), 50.0 + np.arange(3) * 1e-4, np.full(3, 10.0))
    pos = position_provider(track)
    b = IQBlock(np.zeros(16, np.complex64), 446e6, 1e6, start=t0 + timedelta(seconds=1))
    got = pos(b)
    assert got is not None and abs(got.lat - 50.0001) < 1e-7 and got.lon == 10.0
    assert pos(IQBlock(np.zeros(16, np.complex64), 446e6, 1e6)) is None  # no wall clock: no position


def test_a_gps_log_gives_the_locator_its_positions_on_the_engine_timeline():
    from detector.app.gps import track_positions

    t0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
    track = GpsTrack(t0.timestamp() + 10.0 + np.arange(3.0), 50.0 + np.arange(3) * 1e-4, np.full(3, 10.0))
    positions = track_positions(track, t0)
    lat, lon = positions(np.array([10.5, 12.0, 20.0]))  # timeline s: half-way, the last fix, past the log
    assert np.allclose(lat[:2], [50.00005, 50.0002]) and np.allclose(lon[:2], 10.0) and np.isnan(lat[2])
    assert track_positions(track, None) is None and track_positions(GpsTrack.fixed_position(50.1, 10.2), t0) is None


def test_the_monitor_gives_blocks_without_a_position_the_gps_position():
    from detector.detection.engine import EngineConfig
    from detector.pipeline import Monitor
    from detector.sources import IQSource, SourceInfo

    class Rec(IQSource):
        info = SourceInfo(kind="raw", name="rec", center_hz=446e6, sample_rate_hz=250e3, n_samples=1 << 15)

        def blocks(self, bs):
            for i in range(0, 1 << 15, bs):
                x = np.random.default_rng(i).standard_normal(bs).astype(np.complex64) * 1e-3  # distinct blocks
                yield IQBlock(x, 446e6, 250e3, offset_s=i / 250e3, retuned=i == 0)

    from detector.detection.engine import DetectionEngine

    seen = []

    class Spy(DetectionEngine):
        def process_block(self, block):
            seen.append(block.position)
            return super().process_block(block)

    eng = Spy(EngineConfig())
    mon = Monitor(Rec, eng, block_samples=1 << 13, coalesce_samples=0,
                  positions=position_provider(GpsTrack.fixed_position(50.1, 10.2))).start()
    assert mon.finished.wait(20)
    mon.stop()
    assert seen == [Position(50.1, 10.2)] * 4


def test_live_gpsd_positions_follow_the_latest_fix_and_survive_a_lost_gpsd():
    go, first_block_done = threading.Event(), threading.Event()

    class FakeGpsd:
        calls = 0

        def fixes(self):
            FakeGpsd.calls += 1
            if FakeGpsd.calls == 1:
                raise ConnectionError("refused")  # gpsd not up yet: logged, retried
            first_block_done.wait(10)
            yield Fix(t=datetime.now(timezone.utc), lat=50.2, lon=10.3, source="gpsd")
            go.wait(10)

    import detector.app.gps as m

    seen = []
    try:
        pos = position_provider(FakeGpsd(), gpsd_retry_s=0.01)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            seen.append(pos(_block()))
            first_block_done.set()
            if seen[-1] is not None:
                break
            time.sleep(0.02)
    finally:
        go.set()
    assert seen[0] is None  # before the first fix: no position rather than a stale one
    assert seen[-1] == Position(50.2, 10.3)
    assert m.GPSD_MAX_AGE_S == 5.0


def test_one_monitor_per_data_dir(tmp_path):
    from detector.app.monitor_app import lock_data_dir as _lock_data_dir
    from detector.core.errors import InputError

    held = _lock_data_dir(tmp_path)
    try:
        assert (tmp_path / "monitor.lock").read_text().strip() == str(os.getpid())
        r = monitor(tmp_path, "--data-dir", str(tmp_path))  # a second monitor on the same folder
        assert r.exit_code == 2 and f"another examwatch monitor (pid {os.getpid()}) uses --data-dir" in r.output
    finally:
        held.close()
    again = _lock_data_dir(tmp_path)  # released: the next monitor gets it
    again.close()
    with pytest.raises(InputError, match="cannot write"):
        _lock_data_dir(tmp_path / "no" / "such")


def test_files_that_are_not_utf8_text_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[[band]]\n")
    for args, what in ((["--plan", str(bad)], "watch plan"), (["--config", str(bad)], "--config")):
        r = monitor(tmp_path, *args, "--data-dir", str(tmp_path / "d"))
        assert r.exit_code == 2 and f"{what} {bad} is not UTF-8 text" in r.output and "Traceback" not in r.output
    r = monitor(tmp_path, "--data-dir", os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff\xfe"))
    assert r.exit_code == 2 and "is not a UTF-8 path" in r.output
    assert not any(p.name.startswith("\udcff") for p in tmp_path.iterdir())  # nothing left behind


def test_read_text_names_the_option_and_the_file(tmp_path):
    from detector.core.errors import InputError
    from detector.core.textfile import read_text

    p = tmp_path / "x.csv"
    p.write_bytes("\ufeffcenter_hz\n".encode())
    assert read_text(p, "--whitelist") == "center_hz\n"  # a BOM (Excel's CSV) is dropped
    p.write_bytes(b"ok\n\x80")
    with pytest.raises(InputError, match=r"--whitelist .*x.csv is not UTF-8 text \(byte 3"):
        read_text(p, "--whitelist")
    with pytest.raises(InputError, match="is a folder"):
        read_text(tmp_path, "--plan")
    with pytest.raises(InputError, match="No such file"):
        read_text(tmp_path / "nope", "--plan")


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf"])
def test_a_watchdog_that_could_never_fire_is_refused(tmp_path, value):
    r = monitor(tmp_path, "--watchdog-s", value, "--data-dir", str(tmp_path / "d"))
    assert r.exit_code == 2 and "--watchdog-s must be a number of seconds > 0" in r.output


@pytest.mark.parametrize("args, needle", [
    (["--bearings", "ftp://kraken/DOA_value.html"], "--bearings 'ftp://kraken/DOA_value.html': use a file or an http(s):// URL"),
    (["--bearings", "."], "is a folder, not a bearings file"),
    (["--bearings", "http://127.0.0.1:9/DOA_value.html", "--bearings-poll-s", "0"],
     "--bearings-poll-s must be a number of seconds > 0"),
])
def test_bad_bearings_are_refused_before_anything_starts(tmp_path, args, needle):
    r = monitor(tmp_path, *args, "--data-dir", str(tmp_path / "d"))
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert not (tmp_path / "d").exists()


def test_a_dongle_without_center_opens_on_the_plans_first_hop(tmp_path):
    """``--plan`` help: without --center a dongle watches the default exam-band plan. The dongle
    is opened on the plan's first hop (no "needs --center"); here no dongle is attached."""
    from detector.app.monitor_setup import first_tune_hz
    from detector.config.plan import Scheduler, default_plan

    hop = Scheduler(default_plan(), 2.4e6).hops[0]
    assert first_tune_hz("rtlsdr", None, None, None) == hop.center_hz
    assert 446.0e6 <= hop.center_hz <= 446.2e6  # PMR446 leads the default plan (priority 5)
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "t"\n[[band]]\nname = "b"\nstart_hz = 150e6\nstop_hz = 151e6\n')
    assert abs(first_tune_hz("rtlsdr", plan, None, 2.4e6) - 150.5e6) < 1.0
    assert first_tune_hz("rtlsdr", plan, 433.92e6, 2.4e6) == 433.92e6  # --center wins
    assert first_tune_hz("sim", None, None, 2.4e6) is None  # only a dongle is tuned by us
    r = subprocess.run([sys.executable, "-m", "detector", "monitor", "rtlsdr:0", "--site", "x", "--port", str(free_port()),
                        "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "needs --center" not in r.stderr and "no RTL-SDR available" in r.stderr
