"""Opening several SOURCE arguments as one timeline (shared by survey and replay)."""

from __future__ import annotations

from detector.cli._common import console_err, opt_hz, positive_hz
from detector.app.sources import open_source
from detector.sources import source_kind


def open_all(specs: list[str], fmt: str | None, rate: str | None, center: str | None, *,
             sim_window: str = "exam", sim_seed: int | None = None, tz: str = "UTC") -> list:
    """Open every source up front so that a bad one fails before any work is done; ``tz`` is the
    zone of sweep CSV timestamps that carry none."""
    from detector.sources.sweep import _resolve_tz

    _resolve_tz(tz)  # an unknown --tz is an error whatever the sources are
    rate_hz = positive_hz(rate, "--rate")
    center_hz = opt_hz(center, "--center")
    out = []
    for spec in specs:
        if source_kind(spec) == "sweep":
            from detector.sources.sweep import read_sweeps

            sweeps = read_sweeps(spec, tz=tz)
            # the file's oddities (a truncated row, nan values, hops out of order) are survived, and said
            for w in sweeps.warnings:
                console_err.print(f"[yellow]warning:[/] {spec}: {w}", highlight=False)
            out.append(sweeps)
        else:
            out.append(open_source(spec, sample_format=fmt, sample_rate_hz=rate_hz, center_hz=center_hz,
                                   sim_window=sim_window, sim_seed=sim_seed))
    return out
