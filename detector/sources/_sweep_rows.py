"""Rows of a sweep CSV: one row's frequency columns and values (a *hop*), and the stitching of a sweep's hops.

See :mod:`detector.sources.sweep` for the layouts (rtl_power's inclusive hops, hackrf_sweep's
half-open ones) and the quirks survived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MERGE_FRACTION", "N_HEAD", "LAYOUT_HACKRF", "Hop", "Warnings", "hop_from_row", "stitch"]

#: Bins of one sweep closer than this fraction of the (smallest) bin spacing are one bin: the
#: shared edge of two rtl_power hops, or a hop repeated within one sweep. The reader keeps the
#: value of the later hop in frequency order (the one that starts at that frequency; for a repeated
#: hop, the later row in the file), unless that value is NaN and an earlier one is not.
MERGE_FRACTION = 0.1

N_HEAD = 6  # date, time, Hz low, Hz high, Hz step, samples
_MAX_WARNINGS = 50
_LAYOUT_RTL = "rtl_power"
LAYOUT_HACKRF = "hackrf_sweep"
_LAYOUT_IRREGULAR = "irregular"


@dataclass
class Hop:
    line: int  # 1-based line number in the file
    order: int  # position among the sweep's rows in file order
    low: float
    high: float
    spacing: float  # bin spacing used for the frequencies (Hz)
    samples: float
    layout: str
    freqs: NDArray[np.float64]
    values: NDArray[np.float64]


class Warnings:
    """The reader's warnings: per-line ones capped at 50 (with a count of the rest), summaries always kept."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.summary: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < _MAX_WARNINGS:
            self.items.append(message)
        else:
            self.dropped += 1

    def add_summary(self, message: str) -> None:
        self.summary.append(message)

    def result(self) -> list[str]:
        more = [f"{self.dropped} more warnings not shown"] if self.dropped else []
        return [*self.items, *more, *self.summary]


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


def hop_from_row(
    fields: list[str], line: int, order: int, warnings: Warnings
) -> tuple[Hop | None, int, str | None]:
    """Parse the frequency columns and values of one row; (hop, bad values, reason if skipped)."""
    try:
        low, high, step, samples = (float(f) for f in fields[2:N_HEAD])
    except ValueError:
        return None, 0, "a non-numeric Hz low/Hz high/Hz step/samples field"
    if not all(math.isfinite(x) for x in (low, high, step, samples)):
        return None, 0, "a non-finite Hz low/Hz high/Hz step/samples field"
    if step <= 0 or high < low:
        return None, 0, f"Hz step {step:g} ≤ 0 or Hz high {high:g} below Hz low {low:g}"
    values, n_bad = _parse_values(fields[N_HEAD:])
    n = values.size
    span = high - low
    ratio = span / step
    tol = min(0.45, 0.05 + 0.01 * n / step)  # the printed step is rounded to 0.01 Hz
    if abs(ratio - (n - 1)) <= tol:
        layout = _LAYOUT_RTL
        spacing = span / (n - 1) if n > 1 else step
        freqs = np.linspace(low, high, n) if n > 1 else np.array([low])
    elif abs(ratio - n) <= tol:
        layout = LAYOUT_HACKRF
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
    hop = Hop(line, order, low, high, float(spacing), samples, layout, freqs.astype(np.float64), values)
    return hop, n_bad, None


def stitch(key: str, hops: list[Hop], warnings: Warnings) -> tuple[NDArray[np.float64], NDArray[np.float32], float]:
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
