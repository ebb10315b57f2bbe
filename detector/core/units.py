"""Parsing and formatting of physical quantities given on the command line.

Conventions (also in ``DESIGN.md``): frequencies and rates in Hz as float64; power in dB of power
per RBW bin, with 0 dBFS the power of a full-scale complex exponential (|x| = 1, see
:mod:`detector.dsp`); times in seconds; UTC everywhere.
"""

from __future__ import annotations

import math
import re

from detector.core.errors import InputError

__all__ = ["parse_hz", "format_hz"]

_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}
_NUM_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([kKmMgG]?)(?:[hH][zZ])?\s*$")


def parse_hz(text: str | float | int, *, name: str = "value") -> float:
    """Parse a frequency or a rate such as ``433.92M``, ``250k``, ``2.4e6``, ``1G`` or ``12.5kHz``.

    Suffixes ``k``, ``M``, ``G`` multiply by 1e3, 1e6, 1e9 (``m`` is read as mega, as SDR tools do).

    Returns the value in Hz (float). Raises :class:`~detector.core.errors.InputError` naming ``name``
    when the text is not a number or is not finite.
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _NUM_RE.match(str(text))
        if not m:
            raise InputError(f"{name}: cannot read {text!r} as a frequency (examples: 433.92M, 250k, 2.4e6)")
        value = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not math.isfinite(value):
        raise InputError(f"{name}: {text!r} is not a finite number")
    return value


def format_hz(hz: float) -> str:
    """Format a frequency for people: ``433.920000 MHz``, ``250.000 kHz``, ``12 Hz``."""
    a = abs(hz)
    if a >= 1e9:
        return f"{hz / 1e9:.6f} GHz"
    if a >= 1e6:
        return f"{hz / 1e6:.6f} MHz"
    if a >= 1e3:
        return f"{hz / 1e3:.3f} kHz"
    return f"{hz:.0f} Hz"
