"""Exception hierarchy of examwatch.

Every error a user can cause (bad input, a missing device or library) derives from
:class:`ExamwatchError` and carries a one-sentence, actionable message; the CLI prints that sentence
and exits with :attr:`ExamwatchError.exit_code` (2 for bad usage, bad input or a missing
device/library; 1 for a failure while working), following the CLI conventions of ``DESIGN.md``.
"""

from __future__ import annotations


class ExamwatchError(Exception):
    """Base class of all examwatch errors. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(ExamwatchError, ValueError):
    """Bad user input: an unreadable, empty or truncated file, a bad option value, a wrong format."""

    exit_code = 2


class DeviceError(ExamwatchError):
    """A receiver that cannot be used: no librtlsdr, no dongle, a dongle that went away."""

    exit_code = 2


class SourceEnded(ExamwatchError):
    """Raised by a source that has no more samples (a recording's end)."""


class StoreUnavailable(ExamwatchError):
    """The store cannot take a write now (the database is locked, read-only or full, or its server
    is away); the change was not made and may be retried later. The API answers 503."""
