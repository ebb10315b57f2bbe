"""Writing spectra as an rtl_power CSV file (the layout :func:`detector.sources.sweep.read_sweeps` reads)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import timezone
from os import PathLike

import numpy as np
from numpy.typing import NDArray

from detector.core.errors import InputError
from detector.core.types import Spectrum

__all__ = ["write_sweeps"]


def _fmt_hz(x: float) -> str:
    """Integer Hz as rtl_power prints them; other frequencies with 6 decimals, trailing zeros cut."""
    nearest = round(x)
    if abs(x - nearest) < 5e-7:
        return str(int(nearest))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _fmt_step(step: float) -> str:
    return f"{step:.2f}" if step >= 1.0 else f"{step:.6g}"


def _fmt_db(values: NDArray[np.float64]) -> str:
    return ", ".join(f"{v:.2f}" if math.isfinite(v) else ("nan" if math.isnan(v) else f"{v:.0f}")
                     for v in values.tolist())


def _hops(freqs: NDArray[np.float64], hop_hz: float | None) -> Iterator[tuple[int, int]]:
    """Inclusive (first, last) bin indices of each hop: uniform spacing, span ≤ hop_hz, shared edges."""
    m = freqs.size
    s = 0
    while True:
        e = s + 1
        spacing = freqs[e] - freqs[s]
        tol = 1e-6 * spacing + 1e-6
        while (
            e + 1 < m
            and abs(freqs[e + 1] - freqs[e] - spacing) <= tol
            and (hop_hz is None or freqs[e + 1] - freqs[s] <= hop_hz * (1 + 1e-12) + tol)
        ):
            e += 1
        yield s, e
        if e == m - 1:
            return
        s = e


def write_sweeps(
    path: str | PathLike[str], spectra: Iterable[Spectrum], *, hop_hz: float | None = None
) -> int:
    """Write spectra as an rtl_power CSV file (the layout :func:`read_sweeps` reads).

    Parameters
    ----------
    path : str or path-like
        The file to write (replaced if it exists).
    spectra : iterable of Spectrum
        Frames with a ``start`` time (naive datetimes are taken as UTC); each becomes one sweep.
    hop_hz : float, optional
        Largest span ``Hz high − Hz low`` of one row (Hz). Default: one row per spectrum. A hop
        always holds at least two bins, and a hop also ends wherever the grid spacing changes.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    InputError
        A spectrum without ``start`` or without bins, two spectra with the same timestamp (readers
        that group rows by timestamp would take them as one sweep), a spectrum whose first bin lies
        above the previous one's (:func:`~detector.sources.sweep.read_sweeps` starts a sweep at a
        frequency wrap-around, so it would read back as part of the previous sweep), a
        non-positive ``hop_hz``.

    Notes
    -----
    Rows follow rtl_power's inclusive layout: ``date`` ``YYYY-MM-DD`` and ``time`` ``HH:MM:SS`` in
    UTC (with ``.ffffff`` microseconds, as hackrf_sweep writes them, only when the start has a
    fraction of a second), ``Hz low`` and ``Hz high`` the first and last bin of the hop, ``Hz step``
    the spacing with two decimals, ``samples`` = ``round(n_looks)``, then the values with two
    decimals (``nan`` for NaN). Neighbouring hops share their edge bin, as rtl_power's do.

    rtl_power prints ``Hz low``/``Hz high`` as integers; this writer does too when a frequency is a
    whole number of Hz, and otherwise prints 6 decimals (soapy_power also writes fractional Hz),
    so that a read gives back every bin within 1e-3 Hz: the reader spaces bins by
    ``(high − low)/(N − 1)``, not by the rounded step. Powers come back within 0.005 dB; ``rbw_hz``
    comes back as the grid spacing (the CSV has no RBW column) and ``n_looks`` rounded to an integer.
    """
    if hop_hz is not None and not (math.isfinite(hop_hz) and hop_hz > 0):
        raise InputError(f"hop_hz must be a positive number of Hz, got {hop_hz!r}")
    rows: list[str] = []
    seen: dict[str, int] = {}
    prev_low: float | None = None
    for i, spectrum in enumerate(spectra):
        if spectrum.start is None:
            raise InputError(f"spectrum {i} has no start time; an rtl_power CSV row needs one")
        start = spectrum.start
        start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start.astimezone(timezone.utc)
        stamp = start.strftime("%Y-%m-%d, %H:%M:%S") + (f".{start.microsecond:06d}" if start.microsecond else "")
        if stamp in seen:
            raise InputError(
                f"spectra {seen[stamp]} and {i} share the timestamp {stamp!r} and would read back as one sweep"
            )
        seen[stamp] = i
        freqs = np.asarray(spectrum.freqs_hz, dtype=np.float64)
        power = np.asarray(spectrum.power, dtype=np.float64)
        if freqs.size == 0:
            raise InputError(f"spectrum {i} has no bins to write")
        if prev_low is not None and freqs[0] > prev_low:
            raise InputError(
                f"spectrum {i} starts at {_fmt_hz(freqs[0])} Hz, above the {_fmt_hz(prev_low)} Hz of spectrum {i - 1}: "
                "a sweep begins where the frequency wraps around, so it would read back as part of the previous sweep"
            )
        prev_low = float(freqs[0])
        samples = max(int(round(spectrum.n_looks)), 0)
        if freqs.size == 1:
            step = spectrum.rbw_hz if spectrum.rbw_hz > 0 else 1.0
            f0 = _fmt_hz(freqs[0])
            rows.append(f"{stamp}, {f0}, {f0}, {_fmt_step(step)}, {samples}, {_fmt_db(power)}\n")
            continue
        for s, e in _hops(freqs, hop_hz):
            step = (freqs[e] - freqs[s]) / (e - s)
            rows.append(
                f"{stamp}, {_fmt_hz(freqs[s])}, {_fmt_hz(freqs[e])}, {_fmt_step(step)}, {samples}, "
                f"{_fmt_db(power[s:e + 1])}\n"
            )
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.writelines(rows)
    return len(rows)
