"""Shared CLI pieces: the source options, parsing helpers, stderr console and progress."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from detector.core.errors import InputError
from detector.core.units import parse_hz

# soft_wrap: a message is one line however narrow the output (logs and pipes get whole lines; a
# terminal wraps them itself)
console_err = Console(stderr=True, soft_wrap=True)

FormatOpt = Annotated[
    Optional[str],
    typer.Option("--format", "-f", help="Sample type of raw IQ files: cu8, cs8, cs16, cf32 (overrides the extension; WAV and SigMF use their headers)."),
]
RateOpt = Annotated[Optional[str], typer.Option("--rate", "-r", help="Sample rate, e.g. 250k, 2.4M, 2.4e6 (overrides the file name).")]
CenterOpt = Annotated[Optional[str], typer.Option("--center", "-c", help="Center frequency, e.g. 433.92M (overrides the file name).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (nothing else on stdout).")]


def fail(message: str, code: int = 2) -> None:
    """Print one error line to stderr and exit with ``code``."""
    from rich.markup import escape

    # escaped: messages quote user input and TOML ("[[band]]"), which is not markup
    console_err.print(f"[bold red]examwatch: error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def opt_hz(text: str | None, name: str) -> float | None:
    """Parse an optional frequency option; InputError names the option."""
    return None if text is None else parse_hz(text, name=name)


def positive_hz(text: str | None, name: str) -> float | None:
    value = opt_hz(text, name)
    if value is not None and not value > 0:
        raise InputError(f"{name} must be > 0, got {text}")
    return value


@contextmanager
def progress_bar(description: str, total: float | None, *, enabled: bool = True) -> Iterator:
    """A rich progress bar on stderr; yields ``update(completed)``. Hidden when stderr is not a terminal."""
    if not enabled:
        yield lambda completed: None
        return
    prog = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console_err,
        transient=True,
        disable=not console_err.is_terminal,
    )
    with prog:
        task = prog.add_task(description, total=total)
        yield lambda completed: prog.update(task, completed=completed)


_FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_out_path(path, *, what: str, suffixes: tuple[str, ...] | None = None, sources: list[str] | None = None) -> None:
    """Refuse an output path that cannot be written or would overwrite an input (InputError, exit 2)."""
    from pathlib import Path

    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise InputError(f"{what} {p}: use one of {', '.join(suffixes)}")
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory")
    if not p.parent.is_dir():
        raise InputError(f"{what} {p}: folder {p.parent} does not exist")
    for src in sources or ():
        try:
            if Path(src).exists() and p.exists() and p.resolve() == Path(src).resolve():
                raise InputError(f"{what} {p} is one of the sources; refusing to overwrite a recording")
            if p.resolve() == Path(src).resolve():
                raise InputError(f"{what} {p} is one of the sources; refusing to overwrite a recording")
        except OSError:
            continue


def check_figure_path(path, what: str = "--png") -> None:
    check_out_path(path, what=what, suffixes=_FIGURE_SUFFIXES)


PpmRefOpt = Annotated[Optional[str], typer.Option("--ppm-reference", help="Track the frequency error during the run from this carrier (true frequency, e.g. 446.1M): re-measured every --drift-interval-s, a drift model fitted, its value applied.")]
DriftIntervalOpt = Annotated[float, typer.Option("--drift-interval-s", help="Seconds between drift estimates (with --ppm-reference).")]
IntegrationOpt = Annotated[bool, typer.Option(
    "--integration/--no-integration",
    help="Long integration (on by default): the frames summed over 4/12/36 s windows and a 12.5 kHz "
         "channel energy detector on each, for a steady transmitter far weaker than any 10 ms frame "
         "sees (-18 dB in its channel within 30 s); --no-integration: the frames only (the stage "
         "costs about 5-8 % of the pipeline's time).")]


def integration_config(on: bool):
    """The engine's ``integration`` setting for ``--integration/--no-integration``."""
    from detector.detection import IntegrationConfig

    return IntegrationConfig() if on else None


def live_drift(ppm_reference: str | None, interval_s: float, *, sim: bool):
    """A :class:`~detector.app.correction.LiveDrift` for ``--ppm-reference`` (None without it)."""
    import math

    if not (interval_s > 0 and math.isfinite(interval_s)):
        raise InputError(f"--drift-interval-s must be a positive number of seconds, got {interval_s}")
    if ppm_reference is None:
        return None
    from detector.app.correction import LiveDrift

    ref = positive_hz(ppm_reference, "--ppm-reference")
    # the simulator models the LO error only; a real dongle's one crystal drives LO and ADC
    return LiveDrift(ref, interval_s=interval_s, clock="lo" if sim else "shared")


def check_reference_in_band(drift, sources) -> None:
    """Refuse (exit 2) a --ppm-reference that lies in none of the sources' bands (sources of
    unknown tuning, e.g. a dongle that will hop, are not judged here)."""
    if drift is None:
        return
    bands = []
    for src in sources:
        info = getattr(src, "info", None)
        c, fs = getattr(info, "center_hz", None), getattr(info, "sample_rate_hz", None)
        if c is None or fs is None:
            return
        bands.append((c, fs))
    if bands and not any(abs(drift.reference_hz - c) < 0.45 * fs for c, fs in bands):
        c, fs = bands[0]
        raise InputError(f"--ppm-reference {drift.reference_hz / 1e6:.6f} MHz is outside the captured band "
                         f"({(c - fs / 2) / 1e6:.3f}–{(c + fs / 2) / 1e6:.3f} MHz)")


def utf8_path(path, what: str) -> None:
    """Refuse a path that is not valid UTF-8 (the store's URL and the logs need text)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} {str(path)!r} is not a UTF-8 path; use a name of plain characters") from None
