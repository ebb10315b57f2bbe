"""``examwatch doctor``: every failure a check names, shown with fakes of the system (``Probes``);
the gpsd client against a scripted gpsd on loopback; the port check and the CLI's exit codes
against a port really taken."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from detector.alerts.schema import SchemaState
from detector.app import doctor as d
from detector.app.doctor import Check, Dongle, Probes, exit_code, run_checks
from detector.cli import app
from detector.core.errors import DeviceError, InputError

runner = CliRunner()
Usage = namedtuple("Usage", "total used free")
GiB = 1024**3


class FakeLib:
    """A librtlsdr: every symbol examwatch needs, minus ``lacking``."""

    def __init__(self, lacking=()):
        for s in d.RTLSDR_SYMBOLS:
            if s not in lacking:
                setattr(self, s, object())


def healthy(**over) -> Probes:
    """A machine where everything is fine; ``over`` replaces one probe with a failing fake."""
    base = Probes(
        find_library=lambda name: "librtlsdr.so.0",
        load_library=lambda path: FakeLib(),
        pyrtlsdr=lambda: "0.3.0",
        dongles=lambda lib: [Dongle(0, "Generic RTL2832U OEM", "Realtek", "RTL2838UHIDIR", "00000101")],
        read_text=lambda path: "snd 1 0 - Live 0x0\nusbcore 2 0 - Live 0x0\n",
        run=lambda argv: (0, "yes") if argv[0] == "timedatectl" else None,
        gpsd_lines=lambda host, port, t: ['{"class":"VERSION"}', '{"class":"DEVICES","devices":[{"path":"/dev/ttyACM0"}]}',
                                          '{"class":"TPV","mode":3,"lat":50.0,"lon":10.0}'],
        gps_client=lambda: True,
        disk_usage=lambda path: Usage(100 * GiB, 50 * GiB, 50 * GiB),
        writable=lambda path: True,
        port_free=lambda host, port: None,
        short_read=lambda device, rate, seconds: (int(rate * seconds), seconds * 1.01),
        schema_state=lambda url, center: SchemaState("current", "vehicle_0001", "vehicle_0001"),
    )
    return replace(base, **over)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def run(probes: Probes, **kw) -> dict[str, Check]:
    return by_name(run_checks(probes, db=kw.pop("db", "sqlite:///x.db"), **kw))


def test_a_healthy_vehicle_passes_every_check():
    checks = run_checks(healthy(), db="sqlite:///x.db")
    assert [c.name for c in checks] == ["librtlsdr", "dongles", "dvb_driver", "short_read", "gpsd", "clock", "disk", "port",
                                        "schema"]
    assert {c.name: c.status for c in checks} == dict.fromkeys([c.name for c in checks], "ok")
    assert exit_code(checks) == 0
    c = by_name(checks)
    assert c["dongles"].detail == "1 dongle(s): 0: Generic RTL2832U OEM, serial 00000101"
    assert c["short_read"].detail.startswith("1200000 samples in 0.51 s at 2.4 MS/s")
    assert c["gpsd"].detail == "3D fix from gpsd on 127.0.0.1:2947"


# --- librtlsdr and pyrtlsdr ----------------------------------------------------------------------
def test_librtlsdr_missing_fails_and_the_dongle_checks_are_skipped():
    c = run(healthy(find_library=lambda name: None))
    assert c["librtlsdr"].status == "fail" and "apt install librtlsdr0" in c["librtlsdr"].fix
    assert c["dongles"].status == "skip" and c["short_read"].status == "skip"


def test_librtlsdr_that_cannot_be_loaded_fails():
    def boom(path):
        raise OSError("wrong ELF class: ELFCLASS32")

    c = run(healthy(load_library=boom))["librtlsdr"]
    assert c.status == "fail" and "wrong ELF class" in c.detail and "--reinstall" in c.fix


def test_librtlsdr_without_the_functions_fails():
    c = run(healthy(load_library=lambda p: FakeLib(lacking=("rtlsdr_read_sync",))))["librtlsdr"]
    assert c.status == "fail" and "lacks rtlsdr_read_sync" in c.detail


def test_pyrtlsdr_newer_than_librtlsdr_fails_with_both_remedies():
    def mismatch():
        raise DeviceError("the installed librtlsdr does not match pyrtlsdr (undefined symbol: rtlsdr_set_dithering)")

    checks = run_checks(healthy(pyrtlsdr=mismatch))
    c = by_name(checks)["librtlsdr"]
    assert c.status == "fail" and "rtlsdr_set_dithering" in c.detail
    assert "pip install pyrtlsdrlib" in c.fix and "pyrtlsdr<0.3" in c.fix
    assert by_name(checks)["dongles"].status == "ok"  # librtlsdr itself still lists the dongles
    assert exit_code(checks) == 1


def test_pyrtlsdr_not_installed_fails():
    def missing():
        raise DeviceError("no RTL-SDR available: librtlsdr could not be loaded (No module named 'rtlsdr')")

    c = run(healthy(pyrtlsdr=missing))["librtlsdr"]
    assert c.status == "fail" and c.fix == "pip install pyrtlsdr"


# --- dongles ---------------------------------------------------------------------------------------
def test_no_dongle_fails_and_the_read_is_skipped():
    c = run(healthy(dongles=lambda lib: []))
    assert c["dongles"].status == "fail" and c["dongles"].detail == "no RTL-SDR dongle found"
    assert "0bda:2838" in c["dongles"].fix and "99-examwatch-rtlsdr.rules" in c["dongles"].fix
    assert c["short_read"].status == "skip"


def test_listing_usb_devices_refused_fails():
    def denied(lib):
        raise OSError("LIBUSB_ERROR_ACCESS")

    c = run(healthy(dongles=denied))["dongles"]
    assert c.status == "fail" and "LIBUSB_ERROR_ACCESS" in c.detail and "plugdev" in c.fix


def test_two_dongles_with_one_serial_warn():
    two = [Dongle(0, "Generic RTL2832U OEM", serial="00000001"), Dongle(1, "Generic RTL2832U OEM", serial="00000001")]
    checks = run_checks(healthy(dongles=lambda lib: two))
    c = by_name(checks)["dongles"]
    assert c.status == "warn" and "serial 00000001 is shared" in c.detail and "rtl_eeprom -d INDEX -s SERIAL" in c.fix
    assert exit_code(checks) == 0  # a warning is not a failure


# --- the DVB-T driver ------------------------------------------------------------------------------
def test_the_dvb_t_driver_loaded_fails_with_the_blacklist():
    mods = "dvb_usb_rtl28xxu 36864 0 - Live 0x0\nrtl2832 28672 1 dvb_usb_rtl28xxu, Live 0x0\n"
    c = run(healthy(read_text=lambda p: mods))["dvb_driver"]
    assert c.status == "fail" and "dvb_usb_rtl28xxu is loaded" in c.detail
    assert "blacklist dvb_usb_rtl28xxu" in c.fix and "modprobe -r dvb_usb_rtl28xxu" in c.fix


def test_no_proc_modules_warns():
    def none(path):
        raise FileNotFoundError(2, "No such file or directory")

    c = run(healthy(read_text=none))["dvb_driver"]
    assert c.status == "warn" and "lsmod" in c.fix


# --- the short read --------------------------------------------------------------------------------
def test_a_slow_read_means_drops_and_fails():
    c = run(healthy(short_read=lambda dev, rate, s: (int(rate * s), s * 1.5)))["short_read"]
    assert c.status == "fail" and "samples are dropped" in c.detail and "(1.600 MS/s delivered)" in c.detail
    assert "lower --rate (e.g. 1.024M)" in c.fix


def test_a_short_count_fails():
    c = run(healthy(short_read=lambda dev, rate, s: (int(rate * s) // 2, s)))["short_read"]
    assert c.status == "fail" and "dropped" in c.detail


def test_a_busy_dongle_fails_naming_who_holds_it():
    def busy(dev, rate, s):
        raise OSError("Error code -6 when opening SDR (device index = 0)")

    c = run(healthy(short_read=busy))["short_read"]
    assert c.status == "fail" and "-6" in c.detail and "another program holds the dongle" in c.fix


def test_the_read_uses_the_chosen_device_and_rate():
    seen = []
    run(healthy(short_read=lambda dev, rate, s: seen.append((dev, rate, s)) or (int(rate * s), s)), device="serial=VAN1",
        rate_hz=1.024e6)
    assert seen == [("serial=VAN1", 1.024e6, 0.5)]


# --- gpsd ------------------------------------------------------------------------------------------
def test_gpsd_unreachable_warns_or_fails_when_required():
    def refused(host, port, t):
        raise ConnectionRefusedError(111, "Connection refused")

    assert run(healthy(gpsd_lines=refused))["gpsd"].status == "warn"
    c = run(healthy(gpsd_lines=refused), gps_required=True)["gpsd"]
    assert c.status == "fail" and "Connection refused" in c.detail and "systemctl enable --now gpsd" in c.fix


def test_gpsd_without_a_receiver_fails_when_required():
    c = run(healthy(gpsd_lines=lambda h, p, t: ['{"class":"VERSION"}', '{"class":"DEVICES","devices":[]}']),
            gps_required=True)["gpsd"]
    assert c.status == "fail" and c.detail == "gpsd runs but has no GPS receiver" and "DEVICES" in c.fix


def test_gpsd_without_a_fix_warns():
    c = run(healthy(gpsd_lines=lambda h, p, t: ['{"class":"TPV","mode":1}']))["gpsd"]
    assert c.status == "warn" and "no fix within 3 s" in c.detail and "sees the sky" in c.fix


def test_gpsd_with_a_fix_but_no_client_library_warns():
    c = run(healthy(gps_client=lambda: False))["gpsd"]
    assert c.status == "warn" and c.fix.startswith("pip install gps")


class ScriptedGpsd(threading.Thread):
    """A gpsd on loopback that answers ``?WATCH`` with the given lines."""

    def __init__(self, lines: list[str]):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.lines, self.got = lines, b""

    def run(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(b'{"class":"VERSION","release":"3.25"}\n')
            self.got = conn.recv(1024)
            for line in self.lines:
                conn.sendall(line.encode() + b"\n")
            conn.recv(1)  # hold the connection until the client closes it


def test_the_gpsd_client_sends_watch_and_stops_at_the_first_fix():
    g = ScriptedGpsd(['{"class":"DEVICES","devices":[{"path":"/dev/ttyACM0"}]}', '{"class":"TPV","mode":1}',
                      '{"class":"TPV","mode":3,"lat":50.0}'])
    g.start()
    lines = d._gpsd_lines("127.0.0.1", g.port, 3.0)
    g.join(2)
    assert g.got.startswith(b"?WATCH={") and b'"enable":true' in g.got
    assert [json.loads(x)["class"] for x in lines] == ["VERSION", "DEVICES", "TPV", "TPV"]
    c = d.check_gpsd(replace(healthy(), gpsd_lines=lambda h, p, t: lines), "127.0.0.1", g.port)
    assert c.status == "ok" and c.detail == f"3D fix from gpsd on 127.0.0.1:{g.port}"


# --- clock, disk, port, schema -----------------------------------------------------------------------
def test_clock_not_synchronised_warns():
    c = run(healthy(run=lambda argv: (0, "no") if argv[0] == "timedatectl" else None))["clock"]
    assert c.status == "warn" and "NTPSynchronized=no" in c.detail and "timedatectl set-ntp true" in c.fix


def test_clock_from_chrony_when_timedatectl_cannot_answer():
    answers = {"timedatectl": (1, "System has not been booted with systemd"),
               "chronyc": (0, "Reference ID    : 00000000 ()\nLeap status     : Not synchronised")}
    c = run(healthy(run=lambda argv: answers.get(argv[0])))["clock"]
    assert c.status == "warn" and "leap status Not synchronised" in c.detail
    answers["chronyc"] = (0, "Leap status     : Normal")
    assert run(healthy(run=lambda argv: answers.get(argv[0])))["clock"].detail == "synchronised (chrony)"


def test_clock_unknown_warns():
    c = run(healthy(run=lambda argv: None))["clock"]
    assert c.status == "warn" and c.detail.startswith("cannot tell")


@pytest.mark.parametrize("free, status, words", [(100 * 1024**2, "fail", "0.10 GiB free"), (1 * GiB, "warn", "may not fit"),
                                                 (10 * GiB, "ok", "10.0 GiB free")])
def test_disk_space(free, status, words, tmp_path):
    c = run(healthy(disk_usage=lambda p: Usage(100 * GiB, 0, free)), data_dir=tmp_path)["disk"]
    assert c.status == status and words in c.detail


def test_a_data_folder_not_writable_fails(tmp_path):
    c = run(healthy(writable=lambda p: False), data_dir=tmp_path / "new" / "data")["disk"]
    assert c.status == "fail" and f"{tmp_path} is not writable" in c.detail and "chown examwatch" in c.fix


def test_a_port_in_use_fails_with_the_real_bind():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        c = run(healthy(port_free=d._port_free), port=port)["port"]
    assert c.status == "fail" and f"127.0.0.1:{port}" in c.detail and "--port" in c.fix
    assert run(healthy(port_free=d._port_free), port=port)["port"].status == "ok"  # free again


def test_center_checks_and_its_default_port():
    seen = []
    checks = run_checks(healthy(port_free=lambda h, p: seen.append(p)), center=True)
    assert [c.name for c in checks] == ["clock", "disk", "port", "schema"] and seen == [8760]
    assert by_name(checks)["schema"].status == "skip"


@pytest.mark.parametrize("state, status, words", [
    (SchemaState("older", "vehicle_0001", "vehicle_0002"), "fail", "examwatch db upgrade --db URL"),
    (SchemaState("newer", "vehicle_0009", "vehicle_0001"), "fail", "install that release"),
    (SchemaState("foreign", None, "vehicle_0001", others=("center",)), "fail", "its own database"),
    (SchemaState("empty", None, "vehicle_0001"), "ok", ""),
])
def test_schema_states(state, status, words):
    c = run(healthy(schema_state=lambda url, center: state))["schema"]
    assert c.status == status and words in c.fix


def test_schema_unreachable_fails():
    def down(url, center):
        raise InputError("cannot open the alert database postgresql://x@127.0.0.1:1/db: connection refused.")

    c = run(healthy(schema_state=down))["schema"]
    assert c.status == "fail" and "connection refused" in c.detail


# --- the command ---------------------------------------------------------------------------------------
def test_cli_json_and_exit_code_1_when_a_check_fails(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = runner.invoke(app, ["doctor", "--center", "--json", "--port", str(port), "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["role"] == "center"
    assert {c["name"]: c["status"] for c in out["checks"]}["port"] == "fail"


def test_cli_schema_check_reads_a_real_store(tmp_path):
    from detector.alerts import open_store

    open_store(None, data_dir=tmp_path).close()
    db = tmp_path / "examwatch.db"
    before = db.read_bytes()
    r = runner.invoke(app, ["doctor", "--center", "--json", "--port", "0", "--db", f"sqlite:///{db}", "--data-dir", str(tmp_path)])
    schema = {c["name"]: c for c in json.loads(r.stdout)["checks"]}["schema"]
    assert schema["status"] == "fail" and "another store (vehicle)" in schema["detail"]  # a vehicle's db for a center
    assert db.read_bytes() == before


def test_cli_on_a_machine_without_a_dongle_says_so_and_exits_1(tmp_path):
    """The vehicle checks with the real system but no librtlsdr/dongle (faked only where this
    machine might have one): the message names the missing dongle and the exit code is 1."""
    checks = run_checks(replace(Probes(), dongles=lambda lib: [], find_library=lambda n: "librtlsdr.so.0",
                                load_library=lambda p: FakeLib(), pyrtlsdr=lambda: "0.3.0",
                                gpsd_lines=lambda h, p, t: []), data_dir=Path(tmp_path), port=0)
    c = by_name(checks)
    assert c["dongles"].detail == "no RTL-SDR dongle found" and c["short_read"].status == "skip"
    assert exit_code(checks) == 1


class PacedDongle:
    """pyrtlsdr's interface; delivers samples at ``speed`` × the sample rate (1.0: in time)."""

    def __init__(self, speed: float):
        self.speed, self.sample_rate, self.center_freq, self.gain, self.freq_correction = speed, 0.0, 0.0, None, 0
        self.closed = False

    def read_bytes(self, n):
        time.sleep(n / 2 / self.sample_rate / self.speed)
        return bytearray(b"\x80" * n)

    def close(self):
        self.closed = True


@pytest.mark.parametrize("speed, status", [(1.2, "ok"), (0.6, "fail")])
def test_the_short_read_measures_what_the_dongle_delivers(speed, status):
    dev = PacedDongle(speed)
    probes = healthy(short_read=lambda device, rate, s: d._short_read(device, rate, s, device_factory=lambda: dev))
    c = d.check_short_read(probes, [Dongle(0, "x")], "0", 1.024e6, seconds=0.2)
    assert c.status == status, c.detail
    assert dev.closed and dev.sample_rate == 1.024e6 and dev.center_freq == 100e6
