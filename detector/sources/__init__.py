"""Sources: IQ recordings, the RTL-SDR and sweep CSVs (the I/O edge).

A source spec is one string, as SDR tools use (``DESIGN.md``):

* a path: raw ``.cu8 .cs8 .cs16 .cf32`` (and ``.data .bin .raw .complex`` with ``--format``),
  WAV IQ (``.wav``), SigMF (``.sigmf-meta``/``.sigmf-data``), rtl_power CSV (``.csv``, spectra);
* ``rtlsdr:0``, ``rtlsdr:serial=00000001,gain=30,ppm=-37``: a live dongle.

:func:`open_iq` resolves the spec plus the common options (``--format``, ``--rate``,
``--center``) into an :class:`IQSource` (``info``, ``state``, ``blocks()``, ``read()``, ``tune()``,
``ended``, ``close()``). Missing metadata is an
:class:`~detector.core.errors.InputError` naming the option, never a silent default. The
simulated site (``sim:``) is a source too, but it lives above this layer: the dispatcher that
also opens it is :func:`detector.app.sources.open_source`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from detector.core.errors import InputError
from detector.sources._base import DEFAULT_BLOCK_SAMPLES, IQSource, SourceInfo, SourceState, as_source
from detector.sources._files import SIGMF_DATATYPES, RawIQFile, SigMFFile, WavIQFile
from detector.sources._names import NEEDS_FORMAT_EXTENSIONS, RAW_FORMATS, format_from_extension, metadata_from_name, recording_help

__all__ = [
    "recording_help",
    "IQSource",
    "SourceInfo",
    "SourceState",
    "as_source",
    "DEFAULT_BLOCK_SAMPLES",
    "RawIQFile",
    "WavIQFile",
    "SigMFFile",
    "open_iq",
    "check_source_options",
    "source_kind",
    "RAW_FORMATS",
    "SIGMF_DATATYPES",
]


def _check_rate(rate: float | None) -> None:
    if rate is not None and not rate > 0:
        raise InputError(f"--rate must be > 0 Hz, got {rate:g}")
    if rate is not None and not 1e3 <= rate <= 100e6:
        raise InputError(f"--rate {rate:g} Hz is not a receiver's sample rate (1 kS/s … 100 MS/s)")


def _check_center(center: float | None) -> None:
    if center is not None and not 0 <= center <= 10e9:
        raise InputError(f"--center {center:g} Hz is outside 0 … 10 GHz")


def source_kind(spec: str) -> str:
    """``"rtlsdr"``, ``"sim"``, ``"sigmf"``, ``"wav"``, ``"sweep"`` or ``"raw"`` for a spec."""
    if spec.startswith("rtlsdr"):
        return "rtlsdr"
    if spec.startswith("sim:"):
        return "sim"
    suffix = Path(spec).suffix.lower()
    if suffix in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        return "sigmf"
    if suffix == ".wav":
        return "wav"
    if suffix == ".csv":
        return "sweep"
    return "raw"


def check_source_options(sample_format: str | None, sample_rate_hz: float | None, center_hz: float | None) -> None:
    """Refuse a ``--format``, ``--rate`` or ``--center`` no receiver has (InputError)."""
    _check_rate(sample_rate_hz)
    _check_center(center_hz)
    if sample_format is not None and sample_format not in RAW_FORMATS:
        raise InputError(f"--format {sample_format!r} is not one of {', '.join(RAW_FORMATS)}")


def open_iq(
    spec: str,
    *,
    sample_format: str | None = None,
    sample_rate_hz: float | None = None,
    center_hz: float | None = None,
    start: datetime | None = None,
    device_factory=None,
):
    """Open an IQ recording or a dongle from a spec and the common source options.

    Parameters
    ----------
    spec : str
        Path or device spec (see the module docstring).
    sample_format : {"cu8", "cs8", "cs16", "cf32"}, optional
        Sample type of raw files (``--format``); overrides the extension. Ignored for WAV and
        SigMF, whose headers say what they hold.
    sample_rate_hz, center_hz : float, optional
        ``--rate`` and ``--center``; for raw files they override the file name.

    Raises
    ------
    InputError
        Unknown extension without ``--format``, missing rate or center, non-positive rate, a
        missing, empty or truncated file.
    DeviceError
        ``rtlsdr:`` with no librtlsdr or no dongle.
    """
    check_source_options(sample_format, sample_rate_hz, center_hz)
    kind = source_kind(spec)
    if kind == "rtlsdr":
        from detector.sources.rtlsdr import RtlSdrSource, check_rtl_center, parse_rtlsdr_spec

        parsed = parse_rtlsdr_spec(spec)
        if center_hz is None:
            raise InputError("rtlsdr: needs --center (the frequency to tune, 24M–1766M)")
        check_rtl_center(center_hz)
        return RtlSdrSource(parsed, center_hz=center_hz, sample_rate_hz=sample_rate_hz or 2.4e6, device_factory=device_factory)
    if kind == "sim":
        raise InputError(f"{spec}: the simulated site is opened by detector.app.sources.open_source")
    path = Path(spec)
    if kind == "sigmf":
        if not path.with_suffix(".sigmf-meta").exists() and not path.exists():
            raise InputError(f"{spec}: no such file")
        return SigMFFile(path, center_hz=center_hz, sample_rate_hz=sample_rate_hz)
    if not path.exists():
        raise InputError(f"{spec}: no such file")
    if not path.is_file():
        raise InputError(f"{spec}: not a file")
    named = metadata_from_name(path)
    if kind == "wav":
        # --center, else the auxi chunk's, else the file name's (WavIQFile says when none is there)
        return WavIQFile(path, center_hz=center_hz, sample_rate_hz=sample_rate_hz, start=start,
                         default_center_hz=named.get("center_hz"))
    if kind == "sweep":
        raise InputError(f"{spec}: a sweep CSV holds spectra, not IQ samples (survey and replay read sweeps)")
    fmt = sample_format or format_from_extension(path)
    if fmt is None:
        hint = (" (this extension can hold any sample type)" if path.suffix.lower() in NEEDS_FORMAT_EXTENSIONS
                else f" (unknown extension {path.suffix or '(none)'!r})")
        raise InputError(f"{spec}: give --format cu8|cs8|cs16|cf32{hint}")
    rate = sample_rate_hz if sample_rate_hz is not None else named.get("sample_rate_hz")
    center = center_hz if center_hz is not None else named.get("center_hz")
    if rate is None:
        raise InputError(f"{spec}: the sample rate is unknown; give --rate (e.g. --rate 250k)")
    if center is None:
        raise InputError(f"{spec}: the center frequency is unknown; give --center (e.g. --center 433.92M)")
    return RawIQFile(path, sample_format=fmt, sample_rate_hz=rate, center_hz=center, start=start)
