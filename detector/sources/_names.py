"""Recording metadata from file names and extensions.

rtl_433 names its captures ``g001_433.92M_250k.cu8``: tokens between ``_`` carry the center
frequency (``433.92M``) and the sample rate (``250k``); the extension carries the sample type.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["RAW_FORMATS", "format_from_extension", "metadata_from_name", "NEEDS_FORMAT_EXTENSIONS", "recording_help"]

#: Raw sample types: numpy dtype of one interleaved value, bytes per complex sample.
RAW_FORMATS: dict[str, tuple[str, int]] = {
    "cu8": ("u1", 2),
    "cs8": ("i1", 2),
    "cs16": ("<i2", 4),
    "cf32": ("<f4", 8),
}

#: Extensions that name a raw format (rtl_433 and URH spellings included).
_EXTENSIONS = {
    ".cu8": "cu8",
    ".cs8": "cs8",
    ".cs16": "cs16",
    ".cf32": "cf32",
    ".complex16u": "cu8",
    ".complex16s": "cs8",
    ".complex32s": "cs16",
    ".fc32": "cf32",
}

#: Extensions of raw files whose sample type is ambiguous: they need ``--format``.
NEEDS_FORMAT_EXTENSIONS = (".data", ".bin", ".raw", ".complex", ".iq", ".dat")


def recording_help() -> str:
    """The readable recordings, for ``--help`` texts (one list for every command)."""
    return (f"IQ recording ({' '.join(_EXTENSIONS)} .wav .sigmf-meta, or {' '.join(NEEDS_FORMAT_EXTENSIONS)} "
            "with --format)")

_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)([kMG])(?:hz|Hz|HZ)?$")
_MULT = {"k": 1e3, "M": 1e6, "G": 1e9}


def format_from_extension(path: str | Path) -> str | None:
    """Raw sample type named by the file's extension, or None when it names none."""
    return _EXTENSIONS.get(Path(path).suffix.lower())


def metadata_from_name(path: str | Path) -> dict[str, float]:
    """Center frequency and sample rate from an rtl_433-style file name.

    ``tech_433.92M_250k.cu8`` → ``{"center_hz": 433.92e6, "sample_rate_hz": 250e3}``. A token of
    10 MHz or more is the center frequency, a smaller one the sample rate (RTL-SDR rates are at
    most 3.2 MS/s; its tuning range starts at 24 MHz). Keys are absent when the name has no token.
    """
    out: dict[str, float] = {}
    stem = Path(path).name
    for suffix in Path(path).suffixes:
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    for tok in re.split(r"[_\s]+", stem):
        m = _TOKEN.match(tok)
        if not m:
            continue
        value = float(m.group(1)) * _MULT[m.group(2)]
        if value >= 10e6:
            out.setdefault("center_hz", value)
        elif value > 0:
            out.setdefault("sample_rate_hz", value)
    return out
