"""Power sweeps in the rtl_power CSV layout (rtl_power, soapy_power, hackrf_sweep): read and write.

A sweep file holds spectra, not IQ: each row is one *hop* (one tuning of the receiver) of one sweep,

.. code-block:: text

    date, time, Hz low, Hz high, Hz step, samples, dB, dB, ...
    2018-11-18, 12:40:07, 76450000, 76550000, 781.25, 12480, -27.68, -26.39, ...

and a sweep is the run of rows from the band's low end upwards. The hops of one sweep usually carry
the same timestamp, but not always: rtl_power and hackrf_sweep format the clock as they go, so a
sweep that takes more than a second carries two or three timestamps. :func:`read_sweeps` therefore
groups rows by the *frequency wrap-around*, never by equal timestamps: a row whose ``Hz low`` is at
or below the current sweep's start (its first row's ``Hz low``) begins a new sweep, and each sweep is
stamped with its first row's time. (One exception keeps shuffled hops together: a row with the very
same timestamp as the row before it whose band does not overlap a hop already in the sweep — the
hops of one tuning written out of order — continues the sweep.) The layout comes from ``csv_dbm()``
in keenerd's rtl-sdr ``src/rtl_power.c`` (also described in the ``rtl_power -h`` help and the
rtl_power man page):

* ``date`` ``time`` are the *local* time of the machine that recorded (``%Y-%m-%d``, ``%H:%M:%S``),
  with no zone: :func:`read_sweeps` converts them with the rules of ``tz``
  (:mod:`detector.sources._sweep_time`): rows in the hour repeated when daylight saving ends are
  resolved by their order (first pass, then second), rows in the hour skipped when it starts are
  read with the offset before the jump; both are flagged and named in a warning. hackrf_sweep
  appends microseconds (``13:22:53.532179``); soapy_power writes the same columns as rtl_power.
* ``Hz low`` / ``Hz high`` are integers in rtl_power (``center - bw2``, ``center + bw2``, with ``bw2``
  truncated to whole Hz); soapy_power may write floats. ``Hz step`` is the bin spacing printed with
  two decimals (``%.2f``), so it is rounded to 0.01 Hz.
* ``samples`` is, in rtl_power, the number of FFT frames summed into the row (times the
  downsampling factor, so an upper bound on the looks); hackrf_sweep writes its FFT size there.
* The dB values are ``10·log10`` of the averaged periodogram divided by sample rate and frame count:
  uncalibrated dB, labelled ``"dBFS"`` here because :class:`~detector.core.types.Spectrum` knows only
  ``"dBFS"`` and ``"dBm"``; apply a calibration profile before reading them as absolute levels.

Two row layouts exist, and :func:`read_sweeps` tells them apart by the number ``N`` of values:

* **rtl_power** (``N = (high − low)/step + 1``): the values are the bins from ``Hz low`` to
  ``Hz high`` *inclusive*, bin ``k`` at ``low + k·step``. ``csv_dbm()`` prints the last FFT bin
  twice, so the value at ``Hz high`` is a copy of the one before it, and the next hop starts at
  that same frequency with a real measurement. Where two hops share a frequency the reader keeps
  the value of the hop that *starts* there (the later hop in frequency order) — see
  :data:`MERGE_FRACTION`.
* **hackrf_sweep / soapy_power** (``N = (high − low)/step``): the values are the bins of
  ``[low, high)``, bin ``k`` at ``low + k·step``; hops do not share edges. hackrf_sweep's
  ``samples`` column is its FFT size and each row is one FFT, so such rows get ``n_looks = 1``.

The bin spacing is taken from ``Hz low``/``Hz high`` (``(high − low)/(N − 1)`` or ``/N``) when the
row is consistent, because those are exact to 1 Hz over the whole hop while the printed step is
rounded to 0.01 Hz per bin; the two agree to within that rounding. Rows that fit neither layout are
kept with ``low + k·step`` from the row's own step (a truncated row keeps its values at the right
frequencies); values that would land above ``Hz high`` are dropped, and a warning says so.

Known quirks that are survived, and counted in :class:`SweepFile`: ``nan``/``-nan``/``inf``/
``-inf`` (rtl_power prints ``log10`` of 0 or of a negative sum) and any unparseable token become
NaN (``bad_values``), a missing bin that baselines, noise floors and detection skip, and one
warning names how many values, on which lines and at which times; blank lines are ignored; lines with fewer than seven fields or a bad
timestamp, bad or non-positive ``Hz`` fields are skipped (``skipped_rows``); hops come in any order
within a sweep (hackrf_sweep interleaves them) and are sorted.

:func:`write_sweeps` writes the rtl_power layout back, and a write followed by a read returns the same
frequencies (within 1e-3 Hz, see its notes) and powers (within 0.01 dB, the ``%.2f`` rounding).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from os import PathLike
from pathlib import Path

import numpy as np

from detector.core.errors import InputError
from detector.core.types import Spectrum
from detector.sources._sweep_rows import LAYOUT_HACKRF, MERGE_FRACTION, N_HEAD, Hop, Warnings, hop_from_row, stitch
from detector.sources._sweep_time import LocalClock, line_runs
from detector.sources._sweep_time import resolve_tz as _resolve_tz
from detector.sources._sweep_write import write_sweeps

__all__ = ["SweepFile", "read_sweeps", "iter_sweeps", "write_sweeps", "MERGE_FRACTION"]


@dataclass(frozen=True)
class SweepFile:
    """All sweeps of one CSV file, plus what the reader had to work around.

    Attributes
    ----------
    spectra : list of Spectrum
        One frame per sweep (rows grouped by the frequency wrap-around), in time order; every hop
        of the sweep stitched into one strictly increasing frequency axis (Hz), power in
        uncalibrated dB labelled ``"dBFS"``.
    path : Path
        The file read.
    n_rows : int
        Non-blank lines in the file (rows used plus rows skipped).
    skipped_rows : int
        Lines that were not usable rows: too few fields, a bad timestamp, bad ``Hz`` fields.
    bad_values : int
        Power values that were ``nan``, ``-nan``, ``inf``, ``-inf`` or unparseable; NaN in ``power``.
    warnings : list of str
        One sentence per oddity (per-line ones capped at 50, with a final count of the rest; the
        summaries of bad values and of repeated or missing local hours are always kept).
    repeated_hour_rows : int
        Rows whose local time fell in an hour the zone repeats (resolved by their order).
    nonexistent_hour_rows : int
        Rows whose local time does not exist in the zone (the hour skipped when clocks go forward).
    """

    spectra: list[Spectrum]
    path: Path
    n_rows: int
    skipped_rows: int
    bad_values: int
    warnings: list[str] = field(default_factory=list)
    repeated_hour_rows: int = 0
    nonexistent_hour_rows: int = 0

    def __len__(self) -> int:
        return len(self.spectra)

    def __iter__(self) -> Iterator[Spectrum]:
        return iter(self.spectra)


@dataclass
class _Sweep:
    """The rows of one sweep, in file order."""

    start: datetime  # the first row's time (UTC)
    stamp: str  # the first row's date and time as written
    low: float  # the first row's Hz low: a row at or below it begins the next sweep
    hops: list[Hop] = field(default_factory=list)
    stamps: set[str] = field(default_factory=set)
    flag: str | None = None  # the first row's local-time flag

    def overlaps(self, hop: Hop) -> bool:
        """Whether ``hop`` covers a band a hop of this sweep already holds (more than a shared edge)."""
        for h in self.hops:
            tol = MERGE_FRACTION * min(h.spacing, hop.spacing)
            if abs(h.low - hop.low) < tol and abs(h.high - hop.high) < tol:
                return True
            if max(h.low, hop.low) < min(h.high, hop.high) - tol:
                return True
        return False


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: no such sweep file")
    if not path.is_file():
        raise InputError(f"{path}: not a file (expected an rtl_power CSV sweep file)")
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the sweep file ({exc.strerror or exc})") from exc
    return text.lstrip("\ufeff")


def _bad_values_warning(n_bad: int, rows: list[tuple[int, str]]) -> str:
    """How many values were bad, on which lines, between which written times."""
    lines = line_runs([line for line, _ in rows])
    times = rows[0][1] if rows[0][1] == rows[-1][1] else f"{rows[0][1]} to {rows[-1][1]}"
    what = "1 value was" if n_bad == 1 else f"{n_bad} values were"
    on = "1 row" if len(rows) == 1 else f"{len(rows)} rows"
    return (f"{what} nan, inf or unparseable, on {on} (lines {lines}; {times}): read as missing bins (NaN), "
            "kept out of baselines, noise floors and detection")


def read_sweeps(path: str | PathLike[str], *, tz: str | tzinfo = "UTC") -> SweepFile:
    """Read an rtl_power / soapy_power / hackrf_sweep CSV file as one spectrum per sweep.

    Parameters
    ----------
    path : str or path-like
        The CSV file (see the module docstring for its layout).
    tz : str or tzinfo, default "UTC"
        Zone of timestamps written without one (rtl_power writes the recorder's local time): an
        IANA name such as ``"Asia/Shanghai"``, ``"UTC"``, or a :class:`~datetime.tzinfo`.
        Timestamps that carry an offset keep it. Local times in an hour the zone repeats are
        resolved by their order in the file (the first pass until the time goes backwards, then
        the second); local times the zone skips are read with the offset before the jump; both
        are flagged (``meta["local_time"]``, the counts of :class:`SweepFile`) and warned about.

    Returns
    -------
    SweepFile
        ``spectra`` holds one :class:`~detector.core.types.Spectrum` per sweep — the rows from one
        frequency wrap-around to the next (a row whose ``Hz low`` is at or below the sweep's first
        ``Hz low`` begins the next sweep) — sorted by time, with:

        * ``freqs_hz`` — every hop's bins (Hz) stitched and sorted, coinciding bins merged
          (:data:`MERGE_FRACTION`), strictly increasing;
        * ``power`` — the file's dB values (float32, ``unit="dBFS"``, uncalibrated), NaN where a
          value was missing or bad;
        * ``rbw_hz`` — the bin spacing (Hz) of the hop with the most bins: the ``Hz step`` column,
          recomputed from ``Hz low``/``Hz high`` to undo its 0.01 Hz rounding;
        * ``start`` — the sweep's first row's time, tz-aware UTC; ``offset_s`` — seconds since the
          first sweep; ``duration_s`` — seconds to the next sweep, 0 for the last;
        * ``n_looks`` — the ``samples`` column (rtl_power's count of summed FFT frames, an upper
          bound on the looks when it downsampled), the smallest over the sweep's hops; 1 for
          hackrf_sweep-layout rows, whose column is the FFT size of a single FFT;
        * ``center_hz=None``; ``meta`` with ``hops``, ``samples`` (mean of the column),
          ``layout``, ``bad_values``, ``first_line``, ``timestamps`` (distinct times its rows
          carry) and ``local_time`` (None, or the flag of its first row's local time).

    Raises
    ------
    InputError
        A missing or unreadable file, an empty file, a file without one usable row, an unknown
        ``tz``.

    Notes
    -----
    A row whose value count fits neither layout is kept at ``Hz low + k·Hz step`` and values
    above ``Hz high`` are dropped (a warning names the line). When the hops of one sweep have
    different spacings, ``rbw_hz`` is that of the hop with the most bins and a warning says so.
    """
    path = Path(path)
    clock = LocalClock(_resolve_tz(tz))
    text = _read_text(path)

    warnings = Warnings()
    sweeps: list[_Sweep] = []
    bad_rows: list[tuple[int, str]] = []
    prev_stamp: str | None = None
    n_rows = skipped = bad_values = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        n_rows += 1
        fields = [f.strip() for f in line.split(",")]
        while fields and not fields[-1]:
            fields.pop()  # rtl_power forks and hackrf_sweep variants end rows with ", "
        if len(fields) < N_HEAD + 1:
            skipped += 1
            warnings.add(f"line {line_no}: {len(fields)} fields, fewer than the 7 of a sweep row; skipped")
            continue
        try:
            start, flag = clock.utc(fields[0], fields[1], line_no)
        except ValueError:
            skipped += 1
            warnings.add(f"line {line_no}: {fields[0]!r} {fields[1]!r} is not a date and time; skipped")
            continue
        stamp = f"{fields[0]} {fields[1]}"
        current = sweeps[-1] if sweeps else None
        hop, n_bad, reason = hop_from_row(fields, line_no, len(current.hops) if current else 0, warnings)
        if hop is None:
            skipped += 1
            warnings.add(f"line {line_no}: {reason}; skipped")
            continue
        wraps = current is None or hop.low <= current.low + MERGE_FRACTION * hop.spacing
        if wraps and current is not None and stamp == prev_stamp and not current.overlaps(hop):
            wraps = False  # hops of one tuning out of order under one timestamp: the same sweep
        if wraps:
            current = _Sweep(start, stamp, hop.low, flag=flag)
            sweeps.append(current)
            hop.order = 0
        assert current is not None
        current.hops.append(hop)
        current.stamps.add(stamp)
        prev_stamp = stamp
        if n_bad:
            bad_values += n_bad
            bad_rows.append((line_no, stamp))

    if n_rows == 0:
        raise InputError(f"{path}: the sweep file is empty")
    if not sweeps:
        raise InputError(
            f"{path}: none of its {n_rows} lines is an rtl_power sweep row "
            "('date, time, Hz low, Hz high, Hz step, samples, dB, ...')"
        )
    for message in clock.warnings():
        warnings.add_summary(message)
    if bad_values:
        warnings.add_summary(_bad_values_warning(bad_values, bad_rows))
    back = [(a, b) for a, b in zip(sweeps, sweeps[1:]) if b.start < a.start]
    if back:
        a, b = back[0]
        times = "1 time" if len(back) == 1 else f"{len(back)} times"
        warnings.add_summary(
            f"the sweeps' times go backwards {times} in the file (first at line {b.hops[0].line}: {b.stamp} after "
            f"{a.stamp}); the sweeps are put in time order. A local-time file over a clock change needs its zone (--tz)"
        )
    spectra = _spectra(sorted(sweeps, key=lambda s: s.start), warnings)
    return SweepFile(spectra, path, n_rows, skipped, bad_values, warnings.result(),
                     repeated_hour_rows=clock.n_repeated, nonexistent_hour_rows=clock.n_nonexistent)


def _spectra(ordered: list[_Sweep], warnings: Warnings) -> list[Spectrum]:
    """One spectrum per sweep (sorted by time)."""
    first = ordered[0].start
    spectra: list[Spectrum] = []
    for i, sweep in enumerate(ordered):
        hops = sweep.hops
        label = f"the sweep of {sweep.stamp} (line {hops[0].line})"
        freqs, power, _ = stitch(label, hops, warnings)
        widest = max(hops, key=lambda h: h.freqs.size)
        spacings = np.array([h.spacing for h in hops])
        if np.ptp(spacings) > 1e-6 * widest.spacing:
            warnings.add(
                f"{label}: hops have bin spacings from {spacings.min():g} to {spacings.max():g} Hz; "
                f"rbw_hz is {widest.spacing:g} Hz, that of the widest hop"
            )
        looks = [1.0 if h.layout == LAYOUT_HACKRF else max(h.samples, 1.0) for h in hops]
        layouts = sorted({h.layout for h in hops})
        start = sweep.start
        duration = (ordered[i + 1].start - start).total_seconds() if i + 1 < len(ordered) else 0.0
        spectra.append(
            Spectrum(
                freqs_hz=freqs,
                power=power,
                rbw_hz=widest.spacing,
                unit="dBFS",
                start=start,
                offset_s=(start - first).total_seconds(),
                duration_s=duration,
                n_looks=float(min(looks)),
                center_hz=None,
                meta={
                    "hops": len(hops),
                    "samples": float(np.mean([h.samples for h in hops])),
                    "layout": layouts[0] if len(layouts) == 1 else "mixed",
                    "bad_values": int(np.count_nonzero(np.isnan(power))),
                    "first_line": min(h.line for h in hops),
                    "timestamps": len(sweep.stamps),
                    "local_time": sweep.flag,
                },
            )
        )
    return spectra


def iter_sweeps(path: str | PathLike[str], *, tz: str | tzinfo = "UTC") -> Iterator[Spectrum]:
    """Yield the spectra of :func:`read_sweeps` one by one (the file is read whole at the first step).

    Errors are those of :func:`read_sweeps`, raised when iteration starts.
    """
    yield from read_sweeps(path, tz=tz).spectra
