"""RTL-SDR source: fails cleanly without librtlsdr or a dongle; settles after retune (fake device)."""

from __future__ import annotations

import builtins
import subprocess
import sys

import numpy as np
import pytest

from detector.core.errors import DeviceError, InputError
from detector.app.sources import open_source
from detector.sources.rtlsdr import SETTLE_SAMPLES, parse_rtlsdr_spec


class FakeRtlSdr:
    """Stateful fake with pyrtlsdr's interface and a failure switch (pyrtlsdr tests' pattern)."""

    def __init__(self, fail_after: int | None = None):
        self.sample_rate = 0.0
        self.center_freq = 0.0
        self.gain = None
        self.freq_correction = 0
        self.reads: list[int] = []
        self.fail_after = fail_after
        self.closed = False

    def read_bytes(self, n):
        if self.fail_after is not None and len(self.reads) >= self.fail_after:
            raise OSError("LIBUSB_ERROR_NO_DEVICE")
        self.reads.append(n)
        return bytearray(np.full(n, 128, np.uint8).tobytes())

    def close(self):
        self.closed = True


def test_spec_parsing():
    assert parse_rtlsdr_spec("rtlsdr:0").index == 0
    s = parse_rtlsdr_spec("rtlsdr:serial=00000001,gain=30,ppm=-37")
    assert (s.serial, s.gain_db, s.ppm) == ("00000001", 30.0, -37)
    with pytest.raises(InputError, match="unknown rtlsdr option 'foo'"):
        parse_rtlsdr_spec("rtlsdr:foo=1")
    with pytest.raises(InputError, match="bad value 'x' for gain"):
        parse_rtlsdr_spec("rtlsdr:0,gain=x")


def test_settling_samples_discarded_after_retune():
    dev = FakeRtlSdr()
    src = open_source("rtlsdr:0,gain=20,ppm=5", center_hz=446e6, sample_rate_hz=2.4e6, device_factory=lambda: dev)
    assert dev.freq_correction == 5 and dev.gain == 20.0 and dev.center_freq == 446e6
    b1 = src.read(1024)
    b2 = src.read(1024)
    assert dev.reads == [2 * SETTLE_SAMPLES, 2048, 2048]
    assert b1.retuned and not b2.retuned and b1.samples.size == 1024
    src.tune(433.92e6)
    src.read(10)
    assert dev.reads[-2:] == [2 * SETTLE_SAMPLES, 20]
    with pytest.raises(InputError, match="24–1766 MHz"):
        src.tune(2.4e9)


def test_unplugged_dongle_is_a_device_error():
    src = open_source("rtlsdr:0", center_hz=446e6, device_factory=lambda: FakeRtlSdr(fail_after=2))
    src.read(100)
    with pytest.raises(DeviceError, match="unplugged"):
        src.read(100)


def test_open_failure_is_one_clear_sentence():
    def boom():
        raise OSError("Error opening device: LIBUSB_ERROR_NOT_FOUND")

    with pytest.raises(DeviceError, match="no RTL-SDR available"):
        open_source("rtlsdr:0", center_hz=446e6, device_factory=boom)


@pytest.mark.parametrize("exc", [ImportError("Error loading librtlsdr"), AttributeError("undefined symbol: rtlsdr_set_dithering")])
def test_missing_or_mismatched_librtlsdr(monkeypatch, exc):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "rtlsdr":
            raise exc
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DeviceError, match="no RTL-SDR available"):
        open_source("rtlsdr:0", center_hz=446e6)


def test_cli_without_dongle_exits_2_with_one_line():
    r = subprocess.run([sys.executable, "-m", "detector", "spectrum", "rtlsdr:0", "--center", "433.92M"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "no RTL-SDR available" in r.stderr and "Traceback" not in r.stderr


def test_center_outside_rtl_range_exits_2():
    r = subprocess.run([sys.executable, "-m", "detector", "spectrum", "rtlsdr:0", "--center", "10M"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "24–1766 MHz" in r.stderr and "Traceback" not in r.stderr
