"""Errors of the calibration layer.

Both derive from :class:`detector.core.errors.InputError` (itself a ``ValueError``), so the CLI turns
them into one line on stderr and exit code 2, and library callers may catch ``ValueError``.
"""

from __future__ import annotations

from detector.core.errors import InputError

__all__ = ["CalibrationError", "ProfileMismatchError"]


class CalibrationError(InputError):
    """Calibration input that cannot give a trustworthy result: no reference signal, too few
    points, a malformed table, an ambiguous raster. The message says what was expected, what was
    found and how to fix it."""


class ProfileMismatchError(CalibrationError):
    """A calibration profile that belongs to another dongle (serial) than the one in use."""
