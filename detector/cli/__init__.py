"""The ``examwatch`` command line (typer).

Conventions for every command (``DESIGN.md``): ``--json`` prints exactly one JSON object on one
line of stdout and ``--jsonl`` one object per line; progress, tables and logs go to stderr. Exit
codes: 0 ok, 1 failure while working, 2 bad usage, bad input, or a missing device/library (the one
table: :func:`detector.cli._errors.exit_codes`).
"""

from __future__ import annotations

import inspect
import re
import sys

import typer

from detector.cli._common import console_err, fail
from detector.cli._errors import exit_code_for
from detector.core.errors import ExamwatchError

app = typer.Typer(
    name="examwatch",
    help="Protect exams from radio cheating: survey a site's spectrum, detect new emissions, locate them.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# the commands, registered here in the order of --help (the command modules register nothing)
from detector.cli.spectrum import spectrum  # noqa: E402
from detector.cli.survey import replay, survey  # noqa: E402
from detector.cli.demo import demo  # noqa: E402
from detector.cli.sim import sim_app  # noqa: E402
from detector.cli.monitor import monitor  # noqa: E402
from detector.cli.locate import locate  # noqa: E402
from detector.cli.calibrate import calibrate_app  # noqa: E402
from detector.cli.report import report  # noqa: E402
from detector.cli.db import db_app  # noqa: E402
from detector.cli.doctor import doctor  # noqa: E402
from detector.cli.serve import serve  # noqa: E402
from detector.cli.plan import plan_app  # noqa: E402
from detector.cli.library import library_app  # noqa: E402

app.command()(spectrum)
app.command()(survey)
app.command()(replay)
app.command()(demo)
app.add_typer(sim_app, name="sim")
app.command()(monitor)
app.command()(locate)
app.add_typer(calibrate_app, name="calibrate")
app.command()(report)
app.add_typer(db_app, name="db")
app.command()(doctor)
app.command()(serve)
app.add_typer(plan_app, name="plan")
app.add_typer(library_app, name="library")


@app.callback()
def _root() -> None:
    """examwatch: radio monitoring of exam sites (see README.md)."""


_LIST_ITEM = re.compile(r"\s*([-*•]|\d+[.)])\s")


def _reflow(doc: str) -> str:
    """A docstring as ``--help`` text: the lines of each paragraph joined (the docstrings are
    wrapped at 100 columns; the terminal wraps them itself), list items and indented lines kept."""
    paragraphs = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        lines: list[str] = []
        for line in para.split("\n"):
            if lines and not _LIST_ITEM.match(line) and not line.startswith(" "):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = _reflow(info.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)


def main() -> None:
    """Console-script entry point: one clear line and the right exit code on expected errors."""
    try:
        app()
    except ExamwatchError as exc:
        fail(str(exc), exit_code_for(exc))
    except KeyboardInterrupt:
        console_err.print("interrupted")
        sys.exit(130)
