"""Power sweeps in the rtl_power CSV layout (rtl_power, soapy_power, hackrf_sweep): read and write.

A sweep file holds spectra, not IQ: each row is one *hop* (one tuning of the receiver) of one sweep,

.. code-block:: text

    date, time, Hz low, Hz high, Hz step, samples, dB, dB, ...
    2018-11-18, 12:40:07, 76450000, 76550000, 781.25, 12480, -27.68, -26.39, ...

and every hop of one sweep carries the same timestamp (rtl_power formats the clock once per sweep
and prints it in front of each hop). The layout comes from ``csv_dbm()`` in keenerd's rtl-sdr
``src/rtl_power.c`` (also described in the ``rtl_power -h`` help and the rtl_power man page):

* ``date`` ``time`` are the *local* time of the machine that recorded (``%Y-%m-%d``, ``%H:%M:%S``),
  with no zone: :func:`read_sweeps` interprets them in ``tz``. hackrf_sweep appends microseconds
  (``13:22:53.532179``); soapy_power writes the same columns as rtl_power.
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
NaN (``bad_values``); blank lines are ignored; lines with fewer than seven fields or a bad
timestamp, bad or non-positive ``Hz`` fields are skipped (``skipped_rows``); hops come in any order
(hackrf_sweep interleaves them) and are sorted.

:func:`write_sweeps` writes the rtl_power layout back, and a write followed by a read returns the same
frequencies (within 1e-3 Hz, see its notes) and powers (within 0.01 dB, the ``%.2f`` rounding).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from os import PathLike
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from detector.core.errors import InputError
from detector.core.types import Spectrum

__all__ = ["SweepFile", "read_sweeps", "iter_sweeps", "write_sweeps", "MERGE_FRACTION"]

#: Bins of one sweep closer than this fraction of the (smallest) bin spacing are one bin: the
#: shared edge of two rtl_power hops, or a hop repeated under one timestamp. The reader keeps the
#: value of the later hop in frequency order (the one that starts at that frequency; for a repeated
#: hop, the later row in the file), unless that value is NaN and an earlier one is not.
MERGE_FRACTION = 0.1

_N_HEAD = 6  # date, time, Hz low, Hz high, Hz step, samples
_MAX_WARNINGS = 50
_LAYOUT_RTL = "rtl_power"
_LAYOUT_HACKRF = "hackrf_sweep"
_LAYOUT_IRREGULAR = "irregular"


@dataclass(frozen=True)
class SweepFile:
    """All sweeps of one CSV file, plus what the reader had to work around.

    Attributes
    ----------
    spectra : list of Spectrum
        One frame per distinct timestamp, in time order; every hop of the sweep stitched into one
        strictly increasing frequency axis (Hz), power in uncalibrated dB labelled ``"dBFS"``.
    path : Path
        The file read.
    n_rows : int
        Non-blank lines in the file (rows used plus rows skipped).
    skipped_rows : int
        Lines that were not usable rows: too few fields, a bad timestamp, bad ``Hz`` fields.
    bad_values : int
        Power values that were ``nan``, ``-nan``, ``inf``, ``-inf`` or unparseable; NaN in ``power``.
    warnings : list of str
        One sentence per oddity (capped at 50, with a final count of the rest).
    """

    spectra: list[Spectrum]
    path: Path
    n_rows: int
    skipped_rows: int
    bad_values: int
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spectra)

    def __iter__(self) -> Iterator[Spectrum]:
        return iter(self.spectra)


@dataclass
class _Hop:
    line: int  # 1-based line number in the file
    order: int  # position among the sweep's rows in file order
    low: float
    high: float
    spacing: float  # bin spacing used for the frequencies (Hz)
    samples: float
    layout: str
    freqs: NDArray[np.float64]
    values: NDArray[np.float64]


class _Warnings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < _MAX_WARNINGS:
            self.items.append(message)
        else:
            self.dropped += 1

    def result(self) -> list[str]:
        if self.dropped:
            return [*self.items, f"{self.dropped} more warnings not shown"]
        return list(self.items)


def _resolve_tz(tz: str | tzinfo | None) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if tz is None or str(tz).upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(str(tz))
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise InputError(f"unknown time zone {tz!r}: give an IANA name such as 'Asia/Shanghai', or 'UTC'") from exc


def _parse_time(date: str, time: str, zone: tzinfo) -> datetime:
    """UTC datetime of an rtl_power ``date``, ``time`` pair; naive times are taken in ``zone``."""
    if not date or not time:
        raise ValueError("empty date or time")
    stamp = datetime.fromisoformat(f"{date}T{time}")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=zone)
    return stamp.astimezone(timezone.utc)


def _to_float(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return math.nan


def _parse_values(tokens: list[str]) -> tuple[NDArray[np.float64], int]:
    """Power tokens → float64 array with NaN for every non-finite or unparseable token, and their count."""
    try:
        values = np.asarray(tokens, dtype=np.float64)
    except ValueError:
        values = np.array([_to_float(t) for t in tokens], dtype=np.float64)
    bad = ~np.isfinite(values)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        values[bad] = np.nan
    return values, n_bad


def _hop_from_row(
    fields: list[str], line: int, order: int, warnings: _Warnings
) -> tuple[_Hop | None, int, str | None]:
    """Parse the frequency columns and values of one row; (hop, bad values, reason if skipped)."""
    try:
        low, high, step, samples = (float(f) for f in fields[2:_N_HEAD])
    except ValueError:
        return None, 0, "a non-numeric Hz low/Hz high/Hz step/samples field"
    if not all(math.isfinite(x) for x in (low, high, step, samples)):
        return None, 0, "a non-finite Hz low/Hz high/Hz step/samples field"
    if step <= 0 or high < low:
        return None, 0, f"Hz step {step:g} ≤ 0 or Hz high {high:g} below Hz low {low:g}"
    values, n_bad = _parse_values(fields[_N_HEAD:])
    n = values.size
    span = high - low
    ratio = span / step
    tol = min(0.45, 0.05 + 0.01 * n / step)  # the printed step is rounded to 0.01 Hz
    if abs(ratio - (n - 1)) <= tol:
        layout = _LAYOUT_RTL
        spacing = span / (n - 1) if n > 1 else step
        freqs = np.linspace(low, high, n) if n > 1 else np.array([low])
    elif abs(ratio - n) <= tol:
        layout = _LAYOUT_HACKRF
        spacing = span / n
        freqs = low + spacing * np.arange(n)
    else:
        layout = _LAYOUT_IRREGULAR
        spacing = step
        freqs = low + step * np.arange(n)
        expected = int(round(ratio)) + 1
        keep = freqs <= high + MERGE_FRACTION * step
        n_drop = n - int(np.count_nonzero(keep))
        if n_drop:
            n_bad -= int(np.count_nonzero(np.isnan(values[~keep])))
            freqs, values = freqs[keep], values[keep]
            warnings.add(
                f"line {line}: {n} values where {low:.0f}–{high:.0f} Hz at {step:g} Hz steps holds {expected}; "
                f"the {n_drop} beyond Hz high were dropped"
            )
        else:
            cut = " (a row cut short?)" if n < expected else ""
            warnings.add(
                f"line {line}: {n} values where {low:.0f}–{high:.0f} Hz at {step:g} Hz steps holds {expected}{cut}; "
                "they were kept at Hz low + k·step"
            )
    hop = _Hop(line, order, low, high, float(spacing), samples, layout, freqs.astype(np.float64), values)
    return hop, n_bad, None


def _stitch(key: str, hops: list[_Hop], warnings: _Warnings) -> tuple[NDArray[np.float64], NDArray[np.float32], float]:
    """Sort the hops of one sweep, merge coinciding bins; (freqs, power, smallest spacing)."""
    hops = sorted(hops, key=lambda h: (h.low, h.order))
    min_spacing = min(h.spacing for h in hops)
    tol = MERGE_FRACTION * min_spacing
    for a, b in zip(hops, hops[1:]):
        if abs(a.low - b.low) < tol and abs(a.high - b.high) < tol:
            warnings.add(
                f"{key}: the hop {a.low:.0f}–{a.high:.0f} Hz appears again on line {b.line}; "
                "the later row's values are kept"
            )
    freqs = np.concatenate([h.freqs for h in hops])
    values = np.concatenate([h.values for h in hops])
    rank = np.concatenate([np.full(h.freqs.size, i) for i, h in enumerate(hops)])
    order = np.argsort(freqs, kind="stable")
    freqs, values, rank = freqs[order], values[order], rank[order]
    n = freqs.size
    new = np.ones(n, dtype=bool)
    new[1:] = np.diff(freqs) >= tol
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, n - 1)
    pick = ends.copy()
    for c in np.flatnonzero(ends > starts):
        members = np.arange(starts[c], ends[c] + 1)
        finite = members[np.isfinite(values[members])]
        pool = finite if finite.size else members
        # the later hop (the one that starts here); within a hop, the later bin
        pick[c] = pool[np.lexsort((pool, rank[pool]))[-1]]
    return freqs[pick], values[pick].astype(np.float32), min_spacing


def read_sweeps(path: str | PathLike[str], *, tz: str | tzinfo = "UTC") -> SweepFile:
    """Read an rtl_power / soapy_power / hackrf_sweep CSV file as one spectrum per sweep.

    Parameters
    ----------
    path : str or path-like
        The CSV file (see the module docstring for its layout).
    tz : str or tzinfo, default "UTC"
        Zone of timestamps written without one (rtl_power writes the recorder's local time): an
        IANA name such as ``"Asia/Shanghai"``, ``"UTC"``, or a :class:`~datetime.tzinfo`.
        Timestamps that carry an offset keep it. Ambiguous local times (the repeated hour when
        daylight saving ends) resolve to the first occurrence.

    Returns
    -------
    SweepFile
        ``spectra`` holds one :class:`~detector.core.types.Spectrum` per distinct ``date, time`` string,
        sorted by time, with:

        * ``freqs_hz`` — every hop's bins (Hz) stitched and sorted, coinciding bins merged
          (:data:`MERGE_FRACTION`), strictly increasing;
        * ``power`` — the file's dB values (float32, ``unit="dBFS"``, uncalibrated), NaN where a
          value was missing or bad;
        * ``rbw_hz`` — the bin spacing (Hz) of the hop with the most bins: the ``Hz step`` column,
          recomputed from ``Hz low``/``Hz high`` to undo its 0.01 Hz rounding;
        * ``start`` — tz-aware UTC; ``offset_s`` — seconds since the first sweep; ``duration_s`` —
          seconds to the next sweep, 0 for the last;
        * ``n_looks`` — the ``samples`` column (rtl_power's count of summed FFT frames, an upper
          bound on the looks when it downsampled), the smallest over the sweep's hops; 1 for
          hackrf_sweep-layout rows, whose column is the FFT size of a single FFT;
        * ``center_hz=None``; ``meta`` with ``hops``, ``samples`` (mean of the column),
          ``layout``, ``bad_values`` and ``first_line``.

    Raises
    ------
    InputError
        A missing or unreadable file, an empty file, a file without one usable row, an unknown
        ``tz``.

    Notes
    -----
    Rows are grouped by their timestamp, wherever they are in the file. A row whose value count
    fits neither layout is kept at ``Hz low + k·Hz step`` and values above ``Hz high`` are dropped
    (a warning names the line). When the hops of one sweep have different spacings, ``rbw_hz`` is
    that of the hop with the most bins and a warning says so.
    """
    path = Path(path)
    zone = _resolve_tz(tz)
    if not path.exists():
        raise InputError(f"{path}: no such sweep file")
    if not path.is_file():
        raise InputError(f"{path}: not a file (expected an rtl_power CSV sweep file)")
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the sweep file ({exc.strerror or exc})") from exc
    text = text.lstrip("\ufeff")

    warnings = _Warnings()
    groups: dict[str, tuple[datetime, list[_Hop]]] = {}
    n_rows = skipped = bad_values = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        n_rows += 1
        fields = [f.strip() for f in line.split(",")]
        while fields and not fields[-1]:
            fields.pop()  # rtl_power forks and hackrf_sweep variants end rows with ", "
        if len(fields) < _N_HEAD + 1:
            skipped += 1
            warnings.add(f"line {line_no}: {len(fields)} fields, fewer than the 7 of a sweep row; skipped")
            continue
        try:
            start = _parse_time(fields[0], fields[1], zone)
        except ValueError:
            skipped += 1
            warnings.add(f"line {line_no}: {fields[0]!r} {fields[1]!r} is not a date and time; skipped")
            continue
        key = f"{fields[0]} {fields[1]}"
        entry = groups.setdefault(key, (start, []))
        hop, n_bad, reason = _hop_from_row(fields, line_no, len(entry[1]), warnings)
        if hop is None:
            skipped += 1
            warnings.add(f"line {line_no}: {reason}; skipped")
            if not entry[1]:
                del groups[key]
            continue
        bad_values += n_bad
        entry[1].append(hop)

    if n_rows == 0:
        raise InputError(f"{path}: the sweep file is empty")
    groups = {k: v for k, v in groups.items() if v[1]}
    if not groups:
        raise InputError(
            f"{path}: none of its {n_rows} lines is an rtl_power sweep row "
            "('date, time, Hz low, Hz high, Hz step, samples, dB, ...')"
        )
    if bad_values:
        warnings.add(f"{bad_values} value was nan, inf or unparseable and is NaN" if bad_values == 1 else
                     f"{bad_values} values were nan, inf or unparseable and are NaN")

    ordered = sorted(groups.items(), key=lambda item: item[1][0])
    first = ordered[0][1][0]
    spectra: list[Spectrum] = []
    for i, (key, (start, hops)) in enumerate(ordered):
        freqs, power, _ = _stitch(key, hops, warnings)
        widest = max(hops, key=lambda h: h.freqs.size)
        spacings = np.array([h.spacing for h in hops])
        if np.ptp(spacings) > 1e-6 * widest.spacing:
            warnings.add(
                f"{key}: hops have bin spacings from {spacings.min():g} to {spacings.max():g} Hz; "
                f"rbw_hz is {widest.spacing:g} Hz, that of the widest hop"
            )
        looks = [1.0 if h.layout == _LAYOUT_HACKRF else max(h.samples, 1.0) for h in hops]
        layouts = sorted({h.layout for h in hops})
        duration = (ordered[i + 1][1][0] - start).total_seconds() if i + 1 < len(ordered) else 0.0
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
                },
            )
        )
    return SweepFile(spectra, path, n_rows, skipped, bad_values, warnings.result())


def iter_sweeps(path: str | PathLike[str], *, tz: str | tzinfo = "UTC") -> Iterator[Spectrum]:
    """Yield the spectra of :func:`read_sweeps` one by one (the file is read whole at the first step).

    Errors are those of :func:`read_sweeps`, raised when iteration starts.
    """
    yield from read_sweeps(path, tz=tz).spectra


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
        A spectrum without ``start`` or without bins, two spectra with the same timestamp (they
        would read back as one sweep), a non-positive ``hop_hz``.

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
