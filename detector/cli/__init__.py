"""The ``examwatch`` command line (typer).

Conventions for every command (``DESIGN.md``): ``--json`` prints exactly one JSON object on one
line of stdout and ``--jsonl`` one object per line; progress, tables and logs go to stderr. Exit
codes: 0 ok, 1 failure while working, 2 bad usage, bad input, or a missing device/library.
"""

from __future__ import annotations

import sys

import typer

from detector.cli._common import console_err, fail
from detector.errors import ExamwatchError

app = typer.Typer(
    name="examwatch",
    help="Protect exams from radio cheating: survey a site's spectrum, detect new emissions, locate them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

from detector.cli import spectrum as _spectrum  # noqa: E402,F401  (registers the command)
from detector.cli import survey as _survey  # noqa: E402,F401
from detector.cli import demo as _demo  # noqa: E402,F401
from detector.cli import sim as _sim  # noqa: E402,F401
from detector.cli import monitor as _monitor  # noqa: E402,F401
from detector.cli import locate as _locate  # noqa: E402,F401
from detector.cli import calibrate as _calibrate  # noqa: E402,F401
from detector.cli import report as _report  # noqa: E402,F401
from detector.cli import serve as _serve  # noqa: E402,F401


@app.callback()
def _root() -> None:
    """examwatch: radio monitoring of exam sites (see README.md)."""


def main() -> None:
    """Console-script entry point: one clear line and the right exit code on expected errors."""
    try:
        app()
    except ExamwatchError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        console_err.print("interrupted")
        sys.exit(130)
