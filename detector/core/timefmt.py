"""UTC times as examwatch writes and reads them: ISO 8601 with a ``Z`` (``2026-06-07T09:00:00.5Z``).

Every JSON time of the CLI, the store, the API, the push messages and the exports is made by
:func:`utc_iso` and read by :func:`parse_utc`; naive datetimes are taken as UTC (SQLite hands
back naive UTC).
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["to_utc", "utc_iso", "parse_utc", "utc_now_iso"]


def to_utc(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime (a naive one is taken as UTC)."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def utc_iso(t: datetime) -> str:
    """``t`` in UTC as ISO 8601 with a ``Z`` suffix instead of ``+00:00``."""
    return to_utc(t).isoformat().replace("+00:00", "Z")


def utc_now_iso() -> str:
    """The current time as :func:`utc_iso` writes it."""
    return utc_iso(datetime.now(timezone.utc))


def parse_utc(v: str | datetime) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (``Z`` or an offset; naive = UTC) or a datetime.

    Raises ``ValueError`` for a string that is no ISO 8601 time, ``TypeError`` for another type."""
    if isinstance(v, datetime):
        return to_utc(v)
    if not isinstance(v, str):
        raise TypeError(f"not a time: {v!r}")
    return to_utc(datetime.fromisoformat(v.replace("Z", "+00:00")))
