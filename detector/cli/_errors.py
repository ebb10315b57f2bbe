"""Domain errors → exit codes of the command line: the one table (``DESIGN.md``, CLI conventions).

0 ok, 1 a failure while working, 2 bad usage, bad input (a file, an option, a baseline that does
not fit the receiver's grid, a store that cannot be opened or an invalid alert transition), or a
missing device or library. The most specific class listed first wins.
"""

from __future__ import annotations

import functools

from detector.core.errors import DeviceError, ExamwatchError, InputError, SourceEnded

__all__ = ["exit_codes", "exit_code_for"]


@functools.cache
def exit_codes() -> tuple[tuple[type[BaseException], int], ...]:
    """(error class, exit code), most specific first (imported when first needed: the store and
    the baseline are not loaded for ``--help``)."""
    from detector.alerts._store import InvalidTransition
    from detector.baseline._regrid import RegridError

    return (
        (RegridError, 2),        # baseline mismatch: another grid, RBW or unit than the receiver's
        (InvalidTransition, 2),  # store: an alert status change that is not allowed
        (InputError, 2),         # bad input, including a store that cannot be opened
        (DeviceError, 2),        # source: no librtlsdr, no dongle, a dongle that went away
        (SourceEnded, 1),        # source: ended while a command still needed samples
        (ExamwatchError, 1),     # any other failure while working
    )


def exit_code_for(exc: BaseException) -> int:
    """The exit code of ``exc`` (1 for an error not in :func:`exit_codes`)."""
    for cls, code in exit_codes():
        if isinstance(exc, cls):
            return code
    return 1
