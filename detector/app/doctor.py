"""``examwatch doctor``: is this machine ready to run a monitor (or a center)? Each check says what to do.

Every check returns a :class:`Check`: ``ok``, ``warn`` (works, but something is off), ``fail``
(the monitor or the center will not work as it is) or ``skip`` (not applicable, or it needs
something that failed before), with the finding (``detail``) and, unless ok, what to do (``fix``).

The checks touch the system only through a :class:`Probes` object (the library loader, the dongle
list, ``/proc/modules``, commands, the gpsd socket, the disk, the ports, a short read), so that
tests give fakes for every failure a check names. :func:`run_checks` runs them in order:

vehicle (default)
    ``librtlsdr`` (found, loadable, the symbols pyrtlsdr needs, pyrtlsdr importable against it),
    ``dongles`` (count, names, serials; duplicate serials), ``dvb_driver`` (the DVB-T kernel
    driver ``dvb_usb_rtl28xxu`` that claims RTL2832U dongles), ``short_read`` (about half a second
    at the chosen rate: samples delivered in time, none dropped), ``gpsd`` (127.0.0.1:2947, a fix,
    the ``gps`` client library), ``clock`` (NTP synchronisation), ``disk`` (free space of the data
    folder), ``port`` (the API port free), and ``schema`` when a database URL is given.
center (``center=True``)
    ``clock``, ``disk``, ``port`` (8760), ``schema``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Check", "Dongle", "Probes", "run_checks", "exit_code", "DVB_MODULES", "RTLSDR_SYMBOLS",
           "MIN_FREE_BYTES", "WARN_FREE_BYTES"]

Status = Literal["ok", "warn", "fail", "skip"]

#: kernel modules of the DVB-T driver that claims RTL2832U dongles before librtlsdr can
DVB_MODULES = ("dvb_usb_rtl28xxu", "rtl2832_sdr")
#: librtlsdr functions examwatch uses through pyrtlsdr (any release of librtlsdr has them)
RTLSDR_SYMBOLS = ("rtlsdr_get_device_count", "rtlsdr_get_device_usb_strings", "rtlsdr_open", "rtlsdr_set_sample_rate",
                  "rtlsdr_set_center_freq", "rtlsdr_read_sync", "rtlsdr_close")
#: below this free space in the data folder the check fails; below WARN_FREE_BYTES it warns
MIN_FREE_BYTES = 500 * 1024**2
WARN_FREE_BYTES = 2 * 1024**3
#: a short read must deliver at least this share of the rate's samples per second of reading
MIN_THROUGHPUT = 0.95
BLACKLIST = ("echo 'blacklist dvb_usb_rtl28xxu' | sudo tee /etc/modprobe.d/examwatch-rtlsdr.conf && "
             "sudo modprobe -r dvb_usb_rtl28xxu (deploy/modprobe-examwatch-rtlsdr.conf is that file), then replug the dongle")


@dataclass(frozen=True)
class Check:
    """One finding: ``name``, ``status`` (ok/warn/fail/skip), ``detail`` and ``fix`` (what to do)."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class Dongle:
    index: int
    name: str
    manufacturer: str = ""
    product: str = ""
    serial: str = ""


# --- the real system ----------------------------------------------------------------------------
def _run(argv: list[str], timeout: float = 3.0) -> tuple[int, str] | None:
    """(exit status, stdout+stderr) of a command, or None when it is not installed."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return p.returncode, (p.stdout + p.stderr).strip()


def _dongles(lib: Any) -> list[Dongle]:
    n = int(lib.rtlsdr_get_device_count())
    out = []
    lib.rtlsdr_get_device_name.restype = ctypes.c_char_p
    for i in range(n):
        bufs = [ctypes.create_string_buffer(256) for _ in range(3)]
        lib.rtlsdr_get_device_usb_strings(ctypes.c_uint32(i), *bufs)
        name = (lib.rtlsdr_get_device_name(ctypes.c_uint32(i)) or b"").decode(errors="replace")
        m, p, s = (b.value.decode(errors="replace") for b in bufs)
        out.append(Dongle(index=i, name=name, manufacturer=m, product=p, serial=s))
    return out


def _pyrtlsdr() -> str:
    """The pyrtlsdr version, after importing it the way a monitor does; raises DeviceError."""
    from importlib.metadata import PackageNotFoundError, version

    from detector.sources.rtlsdr import _import_rtlsdr

    _import_rtlsdr()
    try:
        return version("pyrtlsdr")
    except PackageNotFoundError:
        return "unknown"


def _gpsd_lines(host: str, port: int, timeout_s: float) -> list[str]:
    """The JSON lines gpsd sends within ``timeout_s`` after ``?WATCH`` (stops at the first TPV with
    a fix); raises OSError when gpsd cannot be reached."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=min(timeout_s, 2.0)) as s:
        s.sendall(b'?WATCH={"enable":true,"json":true};\n')
        buf = b""
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for raw in done:
                line = raw.decode(errors="replace").strip()
                if line:
                    lines.append(line)
                    if '"class":"TPV"' in line.replace(" ", "") and _tpv_mode(line) >= 2:
                        return lines
    return lines


def _tpv_mode(line: str) -> int:
    try:
        msg = json.loads(line)
    except ValueError:
        return 0
    return int(msg.get("mode") or 0) if msg.get("class") == "TPV" else 0


def _port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))


def _short_read(device: str, rate_hz: float, seconds: float, device_factory: Callable[[], Any] | None = None) -> tuple[int, float]:
    """(samples read, seconds taken) from the dongle ``device`` (an index or ``serial=…``), tuned
    to 100 MHz, after a first read that is not timed; ``device_factory`` as for
    :class:`~detector.sources.rtlsdr.RtlSdrSource` (tests)."""
    from detector.sources.rtlsdr import RtlSdrSource, parse_rtlsdr_spec

    src = RtlSdrSource(parse_rtlsdr_spec(f"rtlsdr:{device}"), center_hz=100e6, sample_rate_hz=rate_hz,
                       device_factory=device_factory)
    try:
        src.read(1 << 14)  # settle: the first buffers after opening are not timed
        want = int(rate_hz * seconds)
        got, t0 = 0, time.monotonic()
        while got < want:
            got += len(src.read(min(1 << 18, want - got)).samples)
        return got, time.monotonic() - t0
    finally:
        src.close()


def _gps_client() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("gps", "gpsd"))


@dataclass
class Probes:
    """How the checks look at the system; every field is replaceable (tests give fakes).

    Errors: ``load_library`` raises OSError; ``pyrtlsdr`` raises
    :class:`~detector.core.errors.DeviceError`; ``dongles`` may raise OSError; ``read_text`` and
    ``gpsd_lines`` raise OSError; ``port_free`` raises OSError when the port cannot be bound;
    ``short_read`` raises any error of opening or reading the dongle.
    """

    find_library: Callable[[str], str | None] = ctypes.util.find_library
    load_library: Callable[[str], Any] = ctypes.CDLL
    pyrtlsdr: Callable[[], str] = _pyrtlsdr
    dongles: Callable[[Any], list[Dongle]] = _dongles
    read_text: Callable[[str], str] = field(default=lambda p: Path(p).read_text())
    run: Callable[[list[str]], tuple[int, str] | None] = _run
    gpsd_lines: Callable[[str, int, float], list[str]] = _gpsd_lines
    gps_client: Callable[[], bool] = _gps_client
    disk_usage: Callable[[str], Any] = shutil.disk_usage
    writable: Callable[[str], bool] = field(default=lambda p: os.access(p, os.W_OK))
    port_free: Callable[[str, int], None] = _port_free
    short_read: Callable[[str, float, float], tuple[int, float]] = _short_read
    schema_state: Callable[[str, bool], Any] | None = None


# --- the checks -----------------------------------------------------------------------------------
def check_librtlsdr(p: Probes) -> tuple[Check, Any]:
    """librtlsdr found and loadable with the functions examwatch uses, pyrtlsdr importable against it."""
    path = p.find_library("rtlsdr")
    if path is None:
        return Check("librtlsdr", "fail", "librtlsdr is not installed (no librtlsdr.so on the library path)",
                     "sudo apt install librtlsdr0 (Debian/Ubuntu; rtl-sdr on Fedora), or pip install pyrtlsdrlib"), None
    try:
        lib = p.load_library(path)
    except OSError as exc:
        return Check("librtlsdr", "fail", f"{path} cannot be loaded ({exc})",
                     "reinstall librtlsdr for this machine's architecture (sudo apt install --reinstall librtlsdr0)"), None
    missing = [s for s in RTLSDR_SYMBOLS if not hasattr(lib, s)]
    if missing:
        return Check("librtlsdr", "fail", f"{path} lacks {', '.join(missing)}: not a usable librtlsdr",
                     "install the distribution's librtlsdr0, or pip install pyrtlsdrlib"), None
    from detector.core.errors import DeviceError

    try:
        ver = p.pyrtlsdr()
    except DeviceError as exc:
        text = str(exc)
        if "does not match" in text or "undefined symbol" in text:
            return Check("librtlsdr", "fail", f"pyrtlsdr does not work with {path}: {text}",
                         "pip install pyrtlsdrlib (a librtlsdr that matches pyrtlsdr), or pip install 'pyrtlsdr<0.3' "
                         "for the distribution's older librtlsdr"), lib
        return Check("librtlsdr", "fail", f"pyrtlsdr cannot be imported: {text}", "pip install pyrtlsdr"), lib
    return Check("librtlsdr", "ok", f"{path}, pyrtlsdr {ver}"), lib


def check_dongles(p: Probes, lib: Any) -> tuple[Check, list[Dongle]]:
    if lib is None:
        return Check("dongles", "skip", "needs librtlsdr (see above)"), []
    try:
        found = p.dongles(lib)
    except OSError as exc:
        return Check("dongles", "fail", f"listing the USB devices failed ({exc})",
                     "check that this user may read USB devices (deploy/99-examwatch-rtlsdr.rules, group plugdev)"), []
    if not found:
        return Check("dongles", "fail", "no RTL-SDR dongle found",
                     "plug the dongle in (lsusb should list 0bda:2838 or 0bda:2832); install deploy/99-examwatch-rtlsdr.rules "
                     "so that this user may open it; in a container pass the USB device through"), []
    desc = "; ".join(f"{d.index}: {d.name or d.product or 'RTL2832U'}" + (f", serial {d.serial}" if d.serial else ", no serial")
                     for d in found)
    serials = [d.serial for d in found if d.serial]
    dup = sorted({s for s in serials if serials.count(s) > 1})
    if len(found) > 1 and dup:
        return Check("dongles", "warn", f"{len(found)} dongle(s): {desc}; serial {', '.join(dup)} is shared",
                     "give each dongle its own serial (rtl_eeprom -d INDEX -s SERIAL, then replug) so that "
                     "rtlsdr:serial=… and calibration profiles pick the right one"), found
    return Check("dongles", "ok", f"{len(found)} dongle(s): {desc}"), found


def check_dvb_driver(p: Probes) -> Check:
    try:
        modules = {line.split()[0] for line in p.read_text("/proc/modules").splitlines() if line.strip()}
    except OSError as exc:
        return Check("dvb_driver", "warn", f"cannot tell which kernel modules are loaded ({exc.strerror or exc})",
                     "on the host: lsmod | grep dvb_usb_rtl28xxu; if listed, " + BLACKLIST)
    loaded = [m for m in DVB_MODULES if m in modules]
    if loaded:
        return Check("dvb_driver", "fail", f"the DVB-T driver {', '.join(loaded)} is loaded: it claims RTL2832U dongles "
                     "before librtlsdr can open them", BLACKLIST)
    return Check("dvb_driver", "ok", "dvb_usb_rtl28xxu not loaded")


def check_short_read(p: Probes, dongles: list[Dongle], device: str, rate_hz: float, seconds: float = 0.5) -> Check:
    if not dongles:
        return Check("short_read", "skip", "no dongle to read from")
    try:
        got, took = p.short_read(device, rate_hz, seconds)
    except Exception as exc:  # noqa: BLE001 - any failure of the device is the finding
        why = " ".join(str(exc).split())[:300]
        busy = "busy" in why.lower() or "-6" in why
        return Check("short_read", "fail", f"reading rtlsdr:{device} failed: {why}",
                     ("another program holds the dongle (a running monitor, rtl_tcp, the DVB-T driver): stop it"
                      if busy else "replug the dongle; check dmesg for USB errors; try another USB port"))
    rate = got / took if took > 0 else float("inf")
    detail = f"{got} samples in {took:.2f} s at {rate_hz / 1e6:g} MS/s ({rate / 1e6:.3f} MS/s delivered)"
    if got < int(rate_hz * seconds) or rate < MIN_THROUGHPUT * rate_hz:
        return Check("short_read", "fail", detail + ": samples are dropped",
                     "plug the dongle straight into a USB 2.0/3.0 port (no passive hub, short cable), close other USB "
                     f"load, or use a lower --rate (e.g. {min(rate_hz, 1.024e6) / 1e6:g}M)")
    return Check("short_read", "ok", detail)


def check_gpsd(p: Probes, host: str = "127.0.0.1", port: int = 2947, *, required: bool = False,
               timeout_s: float = 3.0) -> Check:
    bad: Status = "fail" if required else "warn"
    try:
        lines = p.gpsd_lines(host, port, timeout_s)
    except OSError as exc:
        return Check("gpsd", bad, f"gpsd is not reachable on {host}:{port} ({exc.strerror or exc})",
                     "sudo apt install gpsd; set DEVICES=\"/dev/ttyACM0\" (your receiver) and GPSD_OPTIONS=\"-n\" in "
                     "/etc/default/gpsd; sudo systemctl enable --now gpsd; or run the monitor with --gps fixed:LAT,LON")
    msgs = []
    for line in lines:
        try:
            msgs.append(json.loads(line))
        except ValueError:
            continue
    devices = [m for m in msgs if m.get("class") == "DEVICES"]
    if devices and not any(m.get("devices") for m in devices):
        return Check("gpsd", bad, "gpsd runs but has no GPS receiver",
                     "plug the receiver in and name it in DEVICES of /etc/default/gpsd (e.g. /dev/ttyACM0), then "
                     "sudo systemctl restart gpsd")
    modes = [int(m.get("mode") or 0) for m in msgs if m.get("class") == "TPV"]
    best = max(modes, default=0)
    if best < 2:
        return Check("gpsd", bad, f"gpsd answers but has no fix within {timeout_s:g} s",
                     "put the antenna where it sees the sky and wait (a cold start takes minutes); cgps shows the satellites")
    if not p.gps_client():
        return Check("gpsd", bad, f"{'3D' if best >= 3 else '2D'} fix, but no gpsd client library for the monitor",
                     "pip install gps (or gpsd-py3) in examwatch's environment")
    return Check("gpsd", "ok", f"{'3D' if best >= 3 else '2D'} fix from gpsd on {host}:{port}")


def check_clock(p: Probes) -> Check:
    r = p.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if r is not None and r[0] == 0 and r[1].strip() in ("yes", "no"):
        if r[1].strip() == "yes":
            return Check("clock", "ok", "synchronised (timedatectl)")
        return Check("clock", "warn", "the system clock is not synchronised (timedatectl: NTPSynchronized=no)",
                     "sudo timedatectl set-ntp true (systemd-timesyncd) or install chrony; alert times and the GPS "
                     "track's clock offset depend on it")
    r = p.run(["chronyc", "-n", "tracking"])
    if r is not None and r[0] == 0:
        status = next((ln.split(":", 1)[1].strip() for ln in r[1].splitlines() if ln.startswith("Leap status")), "")
        if status == "Normal":
            return Check("clock", "ok", "synchronised (chrony)")
        return Check("clock", "warn", f"chrony is not synchronised (leap status {status or 'unknown'})",
                     "check chrony's sources: chronyc sources -v; the vehicle needs network or a GPS PPS source")
    r = p.run(["ntpstat"])
    if r is not None and r[0] in (0, 1):
        return (Check("clock", "ok", "synchronised (ntpd)") if r[0] == 0 else
                Check("clock", "warn", "ntpd is not synchronised", "check ntpd's servers: ntpq -p"))
    return Check("clock", "warn", "cannot tell whether the clock is synchronised (no timedatectl, chrony or ntpd answered)",
                 "install and enable a time service (systemd-timesyncd or chrony); alert times depend on the clock")


def check_disk(p: Probes, data_dir: Path) -> Check:
    where = Path(data_dir)
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = p.disk_usage(str(probe))
    except OSError as exc:
        return Check("disk", "fail", f"cannot read the free space of {probe} ({exc.strerror or exc})",
                     "check that the data folder's disk is mounted")
    free = usage.free
    gib = free / 1024**3
    if not p.writable(str(probe)):
        return Check("disk", "fail", f"{probe} is not writable by this user ({gib:.1f} GiB free)",
                     f"sudo chown examwatch: {where} (the user the service runs as), or give --data-dir")
    if free < MIN_FREE_BYTES:
        return Check("disk", "fail", f"{gib:.2f} GiB free for {where}",
                     "free space on that disk (old evidence: examwatch report, then archive the database), or use another --data-dir")
    if free < WARN_FREE_BYTES:
        return Check("disk", "warn", f"{gib:.2f} GiB free for {where}: an exam day of evidence may not fit",
                     "free space or move --data-dir to a larger disk")
    return Check("disk", "ok", f"{gib:.1f} GiB free for {where}" + ("" if where.exists() else f" (on {probe}; created at start)"))


def check_port(p: Probes, host: str, port: int, what: str) -> Check:
    try:
        p.port_free(host, port)
    except OSError as exc:
        return Check("port", "fail", f"{host}:{port} ({what}) cannot be listened on ({exc.strerror or exc})",
                     f"stop what uses it (ss -ltnp 'sport = :{port}'; if it is examwatch's own running service that is "
                     "fine), or give --port")
    return Check("port", "ok", f"{host}:{port} is free for the {what}")


def check_schema(p: Probes, url: str | None, center: bool) -> Check:
    if url is None or p.schema_state is None:
        return Check("schema", "skip", "no --db given")
    from detector.core.errors import InputError

    flag = " --center" if center else ""
    try:
        st = p.schema_state(url, center)
    except InputError as exc:
        return Check("schema", "fail", str(exc), "check the URL, the server and the credentials")
    if st.kind in ("current", "empty", "unversioned"):
        return Check("schema", "ok", {"current": f"at {st.head}", "empty": "empty: created at the first start",
                                      "unversioned": "made before migrations: adopted as revision 1 at the first start"}[st.kind])
    if st.kind == "older":
        return Check("schema", "fail", f"at {st.revision}, older than this release's {st.head}",
                     f"back the database up, then examwatch db upgrade{flag} --db URL")
    if st.kind == "newer":
        return Check("schema", "fail", f"at {st.revision}, made by a newer examwatch", "install that release")
    return Check("schema", "fail", f"the database holds another store ({', '.join(st.others)})",
                 "give the " + ("center" if center else "monitor") + " its own database")


def run_checks(probes: Probes | None = None, *, center: bool = False, data_dir: Path = Path("examwatch-data"),
               host: str = "127.0.0.1", port: int | None = None, device: str = "0", rate_hz: float = 2.4e6,
               gps_required: bool = False, gps_host: str = "127.0.0.1", gps_port: int = 2947,
               db: str | None = None, skip: tuple[str, ...] = ()) -> list[Check]:
    """Run the checks of a vehicle (or of a center) in order; see the module docstring. ``skip``
    names checks not to run (reported as ``skip``)."""
    p = probes or Probes()
    out: list[Check] = []

    def add(name: str, fn: Callable[[], Check]) -> None:
        out.append(Check(name, "skip", "not asked for") if name in skip else fn())

    if not center:
        lib_check, lib = check_librtlsdr(p) if "librtlsdr" not in skip else (Check("librtlsdr", "skip", "not asked for"), None)
        out.append(lib_check)
        found: list[Dongle] = []
        if "dongles" in skip:
            out.append(Check("dongles", "skip", "not asked for"))
        else:
            dongle_check, found = check_dongles(p, lib)
            out.append(dongle_check)
        add("dvb_driver", lambda: check_dvb_driver(p))
        add("short_read", lambda: check_short_read(p, found, device, rate_hz))
        add("gpsd", lambda: check_gpsd(p, gps_host, gps_port, required=gps_required))
    add("clock", lambda: check_clock(p))
    add("disk", lambda: check_disk(p, data_dir))
    add("port", lambda: check_port(p, host, port or (8760 if center else 8750), "command center" if center else "monitor's API"))
    add("schema", lambda: check_schema(p, db, center))
    return out


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed (warnings allowed), 1 when a check failed."""
    return 1 if any(c.status == "fail" for c in checks) else 0
