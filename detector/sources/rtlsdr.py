"""Live RTL-SDR through ``pyrtlsdr`` (the only module that imports ``rtlsdr``).

``pyrtlsdr`` is imported only when a device is opened. Every way the dongle can be unavailable —
no librtlsdr (``ImportError``), a librtlsdr too old for pyrtlsdr (``AttributeError``, e.g. the
missing ``rtlsdr_set_dithering`` symbol with Debian's librtlsdr0 0.6.0), no device plugged in
(``LibUSBError`` / ``IOError``) — becomes one :class:`~detector.core.errors.DeviceError` sentence.
Installing the ``pyrtlsdrlib`` package provides a matching librtlsdr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
import numpy as np

from detector.dsp import cu8_to_complex64
from detector.core.errors import DeviceError, InputError
from detector.sources._base import IQSource, SourceInfo
from detector.core.types import IQBlock

__all__ = ["RtlSdrSpec", "RtlSdrSource", "parse_rtlsdr_spec", "RTL_MIN_HZ", "RTL_MAX_HZ", "check_rtl_center"]

#: Tuning range of the R820T/R820T2 dongles (Hz).
RTL_MIN_HZ = 24e6
RTL_MAX_HZ = 1766e6
#: Samples discarded after each retune while the tuner's PLL settles (≈ 30 ms at 2.4 MS/s).
SETTLE_SAMPLES = 1 << 16


@dataclass(frozen=True)
class RtlSdrSpec:
    """A parsed ``rtlsdr:`` source spec: device index or serial, gain (dB or None = auto), ppm."""

    index: int = 0
    serial: str | None = None
    gain_db: float | None = None
    ppm: int = 0


def parse_rtlsdr_spec(spec: str) -> RtlSdrSpec:
    """Parse ``rtlsdr:0``, ``rtlsdr:serial=00000001``, ``rtlsdr:0,gain=30,ppm=-37``.

    Raises :class:`InputError` for unknown keys or bad values.
    """
    if not spec.startswith("rtlsdr"):
        raise InputError(f"not an rtlsdr spec: {spec!r}")
    body = spec[len("rtlsdr"):].lstrip(":")
    index, serial, gain, ppm = 0, None, None, 0
    for part in filter(None, (p.strip() for p in body.replace(":", ",").split(","))):
        key, sep, value = part.partition("=")
        try:
            if not sep:
                index = int(key)
            elif key == "serial":
                serial = value
            elif key == "gain":
                gain = None if value in ("auto", "") else float(value)
            elif key == "ppm":
                ppm = int(round(float(value)))
            elif key == "index":
                index = int(value)
            else:
                raise InputError(f"{spec!r}: unknown rtlsdr option {key!r} (use serial=, gain=, ppm=)")
        except InputError:
            raise
        except ValueError:
            raise InputError(f"{spec!r}: bad value {value or key!r} for {key if sep else 'device index'}") from None
    return RtlSdrSpec(index=index, serial=serial, gain_db=gain, ppm=ppm)


def check_rtl_center(center_hz: float) -> None:
    """Raise :class:`InputError` when ``center_hz`` is outside the RTL-SDR tuning range."""
    if not RTL_MIN_HZ <= center_hz <= RTL_MAX_HZ:
        raise InputError(
            f"center frequency {center_hz / 1e6:.3f} MHz is outside the RTL-SDR range 24–1766 MHz"
        )


_MISSING = (
    "no RTL-SDR available: {why}. Plug in the dongle and make sure a matching librtlsdr is installed "
    "(e.g. `pip install pyrtlsdrlib`), or read a recording or `sim:default` instead"
)


def _import_rtlsdr():
    try:
        import rtlsdr  # noqa: PLC0415 - lazy on purpose
    except ImportError as exc:
        raise DeviceError(_MISSING.format(why=f"librtlsdr could not be loaded ({str(exc).splitlines()[0]})")) from None
    except (AttributeError, OSError) as exc:
        raise DeviceError(_MISSING.format(why=f"the installed librtlsdr does not match pyrtlsdr ({exc})")) from None
    return rtlsdr


class RtlSdrSource(IQSource):
    """A live RTL-SDR, tunable: :meth:`tune` retunes and discards the settling samples.

    Parameters
    ----------
    spec : RtlSdrSpec
    center_hz, sample_rate_hz : float
        Initial tuning; the center must be within 24–1766 MHz.
    device_factory : callable, optional
        Injected for tests: returns an object with pyrtlsdr's ``RtlSdr`` interface.

    Raises
    ------
    DeviceError
        No librtlsdr, a mismatched librtlsdr, or no dongle (see the module docstring).
    """

    readable = True
    tunable = True

    def __init__(self, spec: RtlSdrSpec, *, center_hz: float, sample_rate_hz: float, device_factory=None) -> None:
        check_rtl_center(center_hz)
        if not 225e3 <= sample_rate_hz <= 3.2e6:
            raise InputError(f"sample rate {sample_rate_hz:g} Hz is outside the RTL-SDR range 225 kS/s–3.2 MS/s")
        self.spec = spec
        if device_factory is None:
            mod = _import_rtlsdr()
            device_factory = ((lambda: mod.RtlSdr(serial_number=spec.serial)) if spec.serial
                              else (lambda: mod.RtlSdr(device_index=spec.index)))
        try:
            self._dev = device_factory()
        except DeviceError:
            raise
        except Exception as exc:  # LibUSBError, IOError: no such device
            raise DeviceError(_MISSING.format(why=f"opening the dongle failed ({exc})")) from None
        self._dev.sample_rate = sample_rate_hz
        if spec.ppm:
            self._dev.freq_correction = spec.ppm
        self._dev.gain = "auto" if spec.gain_db is None else spec.gain_db
        self._t0 = time.monotonic()
        self._settle = True
        self.info = SourceInfo(kind="rtlsdr", name=f"rtlsdr:{spec.serial or spec.index}", center_hz=center_hz,
                               sample_rate_hz=float(self._dev.sample_rate), serial=spec.serial)
        self.tune(center_hz)

    def tune(self, center_hz: float) -> None:
        """Retune; the next read first discards :data:`SETTLE_SAMPLES`."""
        check_rtl_center(center_hz)
        self._dev.center_freq = center_hz
        self.info = SourceInfo(**{**self.info.__dict__, "center_hz": float(center_hz)})
        self._settle = True

    def _read_block(self, n_samples: int) -> IQBlock:
        """Read one block of ``n_samples`` at the current tuning. Raises :class:`DeviceError` on USB errors."""
        try:
            if self._settle:
                self._dev.read_bytes(2 * SETTLE_SAMPLES)
            raw = self._dev.read_bytes(2 * n_samples)
        except Exception as exc:
            raise DeviceError(f"RTL-SDR read failed (unplugged?): {exc}") from None
        retuned, self._settle = self._settle, False
        arr = np.frombuffer(bytes(raw), dtype=np.uint8)
        now = datetime.now(timezone.utc)
        return IQBlock(cu8_to_complex64(arr), self.info.center_hz, self.info.sample_rate_hz, start=now,
                       offset_s=time.monotonic() - self._t0, gain_db=self.spec.gain_db, retuned=retuned)

    def _close(self) -> None:
        if self._dev is not None:
            try:
                self._dev.close()
            finally:
                self._dev = None
