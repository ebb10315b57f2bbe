"""``examwatch spectrum``: average and max-hold spectrum of a recording or a dongle, with peaks."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from detector.app.analysis import DEFAULT_FRAME_S, summarize_source
from detector.cli._common import CenterOpt, FormatOpt, JsonOpt, RateOpt, check_figure_path, console_err, opt_hz, positive_hz, progress_bar
from detector.core.errors import InputError
from detector.app.sources import open_source
from detector.sources import recording_help
from detector.core.units import format_hz


@contextmanager
def _source_warnings():
    """Warnings of ``examwatch.sources`` (a WAV header never finished …) as ``warning:`` lines on
    stderr, once each, instead of logging's bare last-resort lines."""
    seen: list[str] = []

    class _Say(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if msg not in seen:
                seen.append(msg)
                console_err.print(f"[yellow]warning:[/] {msg}", highlight=False)

    logger = logging.getLogger("examwatch.sources")
    handler, propagate = _Say(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def spectrum(
    source: Annotated[str, typer.Argument(help=f"{recording_help()}, sim:default / sim:SCENE.toml, or rtlsdr:0.")],
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    rbw: Annotated[Optional[str], typer.Option("--rbw", help="Resolution bandwidth, e.g. 1k (default: fs/683, a 1024-point Hann FFT).")] = None,
    frame: Annotated[float, typer.Option("--frame-s", help="Frame length for max-hold in seconds (short bursts need short frames).")] = DEFAULT_FRAME_S,
    duration: Annotated[Optional[float], typer.Option("--duration", help="Seconds to read (default: the whole recording; 1 s for rtlsdr:).")] = None,
    max_peaks: Annotated[int, typer.Option("--max-peaks", help="How many peaks to report (strongest SNR first).", min=1)] = 10,
    keep_dc: Annotated[bool, typer.Option("--keep-dc", help="Keep the DC-spike bins (default: interpolated over and not reported).")] = False,
    json_out: JsonOpt = False,
    png: Annotated[Optional[Path], typer.Option("--png", help="Draw average and max-hold spectra with the peaks marked to this PNG file.")] = None,
) -> None:
    """Print center, rate, duration, RBW, noise floor and the strongest emissions of SOURCE.

    Peaks come from the average spectrum and from the max-hold over short frames, so short bursts
    in long recordings are not averaged away. Powers are dBFS per RBW bin (0 dBFS = full-scale tone).

    A peak ≥ 15 dB below the max-hold at its mirror frequency (about the tuned center) is the IQ
    image of a stronger emission: it stays listed, flagged "image".

    With --json, stdout holds one object: {"center_hz", "sample_rate_hz", "duration_s", "rbw_hz",
    "noise_floor_dbfs", "peaks": [{"freq_hz", "peak_dbfs", "snr_db", "bandwidth_hz", "image"}, ...],
    "nonfinite_samples", "frames_excluded"}. NaN/inf samples are counted, left out of the spectra
    (the frames that held them) and reported on stderr.
    """
    rate_hz = positive_hz(rate, "--rate")
    center_hz = opt_hz(center, "--center")
    rbw_hz = positive_hz(rbw, "--rbw")
    if frame <= 0:
        raise InputError(f"--frame-s must be > 0, got {frame}")
    if duration is not None and not duration > 0:
        raise InputError(f"--duration must be > 0, got {duration}")
    if png is not None:
        check_figure_path(png)
    with _source_warnings():
        src = open_source(source, sample_format=format, sample_rate_hz=rate_hz, center_hz=center_hz)
        if duration is None and src.info.n_samples is None:
            duration = 1.0
        try:
            total = duration if duration is not None else src.info.duration_s
            with progress_bar(f"reading {src.info.name}", total) as update:
                summary = summarize_source(src, rbw_hz=rbw_hz, frame_s=frame, max_duration_s=duration,
                                           keep_dc=keep_dc, progress=update)
        finally:
            src.close()
    if summary.nonfinite_samples:
        console_err.print(f"[yellow]warning:[/] {src.info.name}: {summary.nonfinite_samples} non-finite (NaN/inf) samples; "
                          f"the {summary.frames_excluded} frame(s) that held them (of {summary.n_frames + summary.frames_excluded}) "
                          "are left out of the spectrum", highlight=False)
    result = summary.to_json(max_peaks)
    if png is not None:
        from dashboards.spectrum import save_figure, spectrum_summary_figure

        save_figure(spectrum_summary_figure(summary, max_peaks=max_peaks, title=src.info.name), png)
    if json_out:
        typer.echo(json.dumps(result))
        return
    console_err.print(
        f"[bold]{src.info.name}[/]: center {format_hz(summary.center_hz)}, rate {format_hz(summary.sample_rate_hz).replace('Hz', 'S/s')}, "
        f"duration {summary.duration_s:.3f} s, RBW {summary.rbw_hz:.1f} Hz, noise floor {summary.noise_floor_dbfs:.1f} dBFS"
    )
    table = Table(title=f"strongest emissions ({len(result['peaks'])} of {len(summary.peaks)})")
    for col in ("frequency", "offset", "peak dBFS", "SNR dB", "bandwidth", "note"):
        table.add_column(col, justify="right")
    for p in result["peaks"]:
        table.add_row(format_hz(p["freq_hz"]), f"{(p['freq_hz'] - summary.center_hz) / 1e3:+.1f} kHz",
                      f"{p['peak_dbfs']:.1f}", f"{p['snr_db']:.1f}", format_hz(p["bandwidth_hz"]),
                      "IQ image" if p["image"] else "")
    typer.echo(f"center_hz {summary.center_hz:.0f}  sample_rate_hz {summary.sample_rate_hz:.0f}  "
               f"duration_s {summary.duration_s:.3f}  rbw_hz {summary.rbw_hz:.1f}  noise_floor_dbfs {summary.noise_floor_dbfs:.1f}")
    from rich.console import Console

    Console().print(table)
    if png is not None:
        console_err.print(f"wrote {png}")
