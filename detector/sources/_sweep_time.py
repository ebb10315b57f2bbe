"""Sweep CSV timestamps: local wall times → UTC with the zone's rules (the repeated and the missing hour).

rtl_power writes the recorder's local time with no zone. :class:`LocalClock` converts the rows'
``date, time`` in file order:

* a wall time the zone never shows (the hour skipped when daylight saving starts, e.g.
  2024-03-31 02:00–03:00 in Europe/Berlin) is read with the offset in force before the jump
  (02:30 → 01:30 UTC, the time a clock that was not yet moved forward would show) and flagged;
* a wall time the zone shows twice (the hour repeated when daylight saving ends, e.g.
  2024-10-27 02:00–03:00 in Europe/Berlin) is resolved by the rows' order: the first pass until
  the wall time goes backwards within that hour, then the second pass (PEP 495 ``fold=1``); both
  are flagged.

:meth:`LocalClock.warnings` names each such span (first and last wall time, how many rows, which
lines). Timestamps that carry an offset keep it and are never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from detector.core.errors import InputError

__all__ = ["LocalClock", "resolve_tz", "line_runs", "REPEATED_FIRST", "REPEATED_SECOND", "NONEXISTENT"]

#: Flags of a row's local time (``Spectrum.meta["local_time"]`` of the sweep it starts).
REPEATED_FIRST = "repeated hour, first pass"
REPEATED_SECOND = "repeated hour, second pass"
NONEXISTENT = "non-existent hour"


def resolve_tz(tz: str | tzinfo | None) -> tzinfo:
    """The zone of ``--tz``: an IANA name, ``"UTC"``/``"Z"``/None, or a :class:`~datetime.tzinfo`."""
    if isinstance(tz, tzinfo):
        return tz
    if tz is None or str(tz).upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(str(tz))
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise InputError(f"unknown time zone {tz!r}: give an IANA name such as 'Asia/Shanghai', or 'UTC'") from exc


def _offset(delta: timedelta | None) -> str:
    if delta is None:
        return "UTC"
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass
class _Span:
    """Rows of one repeated or missing hour, in file order."""

    kind: str  # "repeated" or "nonexistent"
    offsets: tuple[timedelta | None, timedelta | None]  # (fold=0, fold=1) UTC offsets
    lines: list[int] = field(default_factory=list)
    walls: list[datetime] = field(default_factory=list)
    folds: list[int] = field(default_factory=list)
    second: bool = False  # the wall time went backwards: later rows are the second pass


def line_runs(lines: list[int], limit: int = 4) -> str:
    """``3–7, 9, 12–20`` for sorted line numbers (at most ``limit`` runs, then ``…``)."""
    runs: list[tuple[int, int]] = []
    for n in lines:
        if runs and n <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(n, runs[-1][1]))
        else:
            runs.append((n, n))
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:limit])
    return text + (", …" if len(runs) > limit else "")


class LocalClock:
    """Converts the rows' timestamps, in file order, to UTC; remembers the flagged ones.

    Parameters
    ----------
    zone : tzinfo
        Zone of timestamps written without an offset (from :func:`resolve_tz`).
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._spans: dict[tuple[object, ...], _Span] = {}
        self._name = getattr(zone, "key", None) or str(zone)

    def utc(self, date: str, time: str, line: int) -> tuple[datetime, str | None]:
        """UTC of a row's ``date``, ``time`` (tz-aware) and its flag (None for an ordinary time).

        Raises
        ------
        ValueError
            An empty or unparseable date or time.
        """
        if not date or not time:
            raise ValueError("empty date or time")
        wall = datetime.fromisoformat(f"{date}T{time}")
        if wall.tzinfo is not None:
            return wall.astimezone(timezone.utc), None
        zone = self.zone
        off0 = wall.replace(fold=0, tzinfo=zone).utcoffset()
        off1 = wall.replace(fold=1, tzinfo=zone).utcoffset()
        if off0 == off1:
            return wall.replace(tzinfo=zone).astimezone(timezone.utc), None
        first = wall.replace(fold=0, tzinfo=zone).astimezone(timezone.utc)
        if first.astimezone(zone).replace(tzinfo=None) != wall:
            # no such wall time: the hour the clocks skip; read with the offset before the jump
            span = self._span("nonexistent", wall, off0, off1)
            span.lines.append(line)
            span.walls.append(wall)
            span.folds.append(0)
            return first, NONEXISTENT
        span = self._span("repeated", wall, off0, off1)
        if span.walls and not span.second and wall < span.walls[-1]:
            span.second = True  # the time went backwards inside the repeated hour: the second pass
        fold = 1 if span.second else 0
        span.lines.append(line)
        span.walls.append(wall)
        span.folds.append(fold)
        stamp = wall.replace(fold=fold, tzinfo=zone).astimezone(timezone.utc)
        return stamp, REPEATED_SECOND if fold else REPEATED_FIRST

    def _span(self, kind: str, wall: datetime, off0: timedelta | None, off1: timedelta | None) -> _Span:
        key = (kind, wall.date(), off0, off1)
        span = self._spans.get(key)
        if span is None:
            span = self._spans[key] = _Span(kind, (off0, off1))
        return span

    @property
    def n_repeated(self) -> int:
        """Rows whose wall time falls in a repeated hour."""
        return sum(len(s.lines) for s in self._spans.values() if s.kind == "repeated")

    @property
    def n_nonexistent(self) -> int:
        """Rows whose wall time does not exist in the zone."""
        return sum(len(s.lines) for s in self._spans.values() if s.kind == "nonexistent")

    def warnings(self) -> list[str]:
        """One sentence per repeated or missing hour met, naming its span."""
        out = []
        for span in self._spans.values():
            lo, hi = min(span.walls), max(span.walls)
            n = len(span.lines)
            rows = f"{n} row{'s' if n != 1 else ''} (lines {line_runs(sorted(span.lines))})"
            when = f"{lo:%Y-%m-%d %H:%M:%S}–{hi:%H:%M:%S}" if lo.date() == hi.date() else f"{lo}–{hi}"
            if span.kind == "nonexistent":
                out.append(
                    f"{rows} carry local times {when} that do not exist in {self._name} (the clocks "
                    f"went forward); read with the offset before the jump ({_offset(span.offsets[0])}) and flagged"
                )
                continue
            n2 = sum(span.folds)
            out.append(
                f"{rows} carry local times {when} of the hour {self._name} repeats (the clocks went back); "
                f"resolved by their order: {n - n2} as the first pass ({_offset(span.offsets[0])}), "
                f"{n2} as the second ({_offset(span.offsets[1])}), and flagged"
            )
        return out
